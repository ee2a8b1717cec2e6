// Preemption as the cycle applies it: when a waiting job may preempt, the
// plan PreemptionPlanner makes for it, and its side effects (victims asked
// to stop, the room they leave reserved for the preemptor).
#include "core/scheduler.h"

#include <bit>

namespace trainyard::scheduler {

void Scheduler::reserve_for_plan(const QueueEntry& e, const PreemptionPlan& plan) {
  // Nothing may take the room its victims leave: the reservation starts now.
  Reservation r;
  r.job = e.id;
  r.partition = e.shape.partition;
  r.pool_type = e.shape.gpu_type;
  r.type = plan.type;
  r.start_ns = now_ns_;
  r.for_preemption = true;
  for (NodeIdx n : plan.nodes) {
    if (book_.holds(n)) continue;
    uint64_t mask = cluster_.type_mask(n, plan.type);
    uint32_t avail = static_cast<uint32_t>(std::popcount(cluster_.free_mask(n) & mask));
    for (JobId v : plan.victims) {
      const Job* vj = job(v);
      if (!vj || !vj->preempt_requested) continue;
      for (size_t rank = 0; rank < vj->nodes.size(); ++rank) {
        if (cluster_.find_node(vj->nodes[rank]) != n) continue;
        for (uint32_t i = 0; i < vj->shape.gpus; ++i) {
          size_t at = rank * vj->shape.gpus + i;
          if (at < vj->gpu_indices.size() && vj->gpu_indices[at] < 64 && (mask >> vj->gpu_indices[at]) & 1) ++avail;
        }
      }
    }
    r.nodes.push_back(n);
    r.need.push_back(e.shape.gpus);
    r.avail.push_back(avail);
  }
  add_reservation(std::move(r));
}

bool Scheduler::preemption_possible(const QueueEntry& e) const {
  if (e.shape.gpus == 0 || preemptors_tried_ >= config_.max_preemptors_per_cycle) return false;
  // The planner chooses victims by GPUs, not by node names or labels: a job
  // with a placement rule (--nodelist, --constraint...) waits instead.
  if (e.shape.where != 0) return false;
  bool tiers = config_.preemption.tiers && !active_tiers_.empty() && active_tiers_.begin()->first < e.tier;
  bool reclaim = planner().reclaims(e);
  if (!tiers && !reclaim) return false;
  uint32_t who = reclaim ? e.account : UINT32_MAX;
  for (auto& f : failed_preempt_) {
    if (f.tier == e.tier && f.account == who && f.shape == e.shape) return false;
  }
  return true;
}

bool Scheduler::preempt_for(const QueueEntry& e) {
  ++preemptors_tried_;
  PreemptionPlanner planner = this->planner();
  bool reclaim = planner.reclaims(e);
  std::optional<PreemptionPlan> plan;
  // While every active job is still being allocated there is nothing to
  // preempt yet.
  if (active_.size() > allocating_count_) plan = planner.plan(e, active_, now_ns_);
  if (!plan) {
    if (failed_preempt_.size() < 64) {
      failed_preempt_.push_back(FailedPreempt{e.shape, e.tier, reclaim ? e.account : UINT32_MAX});
    }
    return false;
  }
  if (plan->victims.empty()) return false;  // it fits without victims: CPUs or memory hold it back
  for (JobId id : plan->victims) {
    Job& v = *find(id);
    bool by_tier = config_.preemption.tiers && v.tier < e.tier;
    v.preempt_requested = true;
    v.preempted_for = e.id;
    v.reason = "preempted by job " + std::to_string(e.id) +
               (by_tier ? " of a higher tier (" + std::to_string(e.job->tier) + " > " + std::to_string(v.tier) + ")"
                        : " (account '" + usage_.names()[e.account] + "' reclaims its guaranteed GPUs)");
    mark_dirty(v);
    release_leases(v, 0, v.reason);
    ++draining_for_[e.id];
    ++stats_.preempt_requests;
  }
  reserve_for_plan(e, *plan);
  plans_[e.id] = std::move(*plan);
  return true;
}

}  // namespace trainyard::scheduler

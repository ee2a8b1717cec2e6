// The placement cycle: waiting jobs offered to the cluster in policy order,
// started where they fit (best fit, gangs all or none), and otherwise held
// back, given a backfill reservation, or handed to preemption
// (scheduler_preemption.cc).
#include "core/scheduler.h"

#include <algorithm>
#include <bit>

namespace trainyard::scheduler {

// --- the cycle ---------------------------------------------------------------

void Scheduler::tick(int64_t now_ns) {
  // Runs may have ended before their limits: look for earlier starts.
  book_.recompute();
  if (policy_->refresh(now_ns)) full_ = true;
  // Jobs whose begin time has come (an entry of a job since cancelled, or
  // offered again already, is dropped).
  while (!not_before_.empty() && not_before_.begin()->first <= now_ns) {
    Job* j = find(not_before_.begin()->second);
    not_before_.erase(not_before_.begin());
    if (j && j->state == JobState::Pending && j->wait == WaitReason::kBeginTime && !j->queued && !j->allocating) {
      make_ready(*j, now_ns);
    }
  }
  if (backoff_.empty()) return;
  std::vector<JobId> later;
  for (JobId id : backoff_) {
    Job* j = find(id);
    if (!j || j->state != JobState::Pending || j->allocating || j->queued) continue;
    if (j->retry_after_ns > now_ns) {
      later.push_back(id);
      continue;
    }
    make_ready(*j, now_ns);
  }
  backoff_ = std::move(later);
}

bool Scheduler::array_full(JobId array_job_id) const {
  auto it = arrays_.find(array_job_id);
  return it != arrays_.end() && it->second.max_running && it->second.active >= it->second.max_running;
}

void Scheduler::add_reservation(Reservation r) {
  if (r.nodes.empty()) return;
  if (Job* j = find(r.job); j && (j->expected_start_ns == 0 || r.start_ns < j->expected_start_ns)) {
    j->expected_start_ns = r.start_ns;
    with_expected_start_.push_back(j->id);
  }
  book_.add(std::move(r));
}

bool Scheduler::reserve(const QueueEntry& e) {
  bool reused = false;
  std::optional<Reservation> r = book_.find(e, now_ns_, &reused);
  if (!r) return false;
  if (!reused) ++stats_.reservations;
  add_reservation(std::move(*r));
  return true;
}

void Scheduler::begin_full_cycle() {
  book_.begin_cycle();
  strict_blockers_.clear();
  failed_preempt_.clear();
  preemptors_tried_ = 0;
  for (JobId id : with_expected_start_) {
    if (Job* j = find(id)) j->expected_start_ns = 0;
  }
  with_expected_start_.clear();
  // Room being made by preemption is kept for its preemptor first, before
  // any job is tried (jobs ahead of it in the order included).
  std::vector<JobId> preemptors;
  for (auto& [id, plan] : plans_) preemptors.push_back(id);
  std::sort(preemptors.begin(), preemptors.end());
  for (JobId id : preemptors) {
    Job* j = find(id);
    if (j && j->queued) reserve_for_plan(entry(*j), plans_[id]);
  }
}

Scheduler::Placed Scheduler::try_place(const QueueEntry& e) {
  Placed placed = try_place_in(e, e.shape);
  const Job& j = *e.job;
  if (placed == Placed::kStarted || placed == Placed::kQuota || j.other_partitions.empty()) return placed;
  // "-p a,b": it starts wherever it can first (its reservation, if any, is
  // in its first partition).
  for (uint16_t p : j.other_partitions) {
    if (p == e.shape.partition) continue;
    Shape s = e.shape;
    s.partition = p;
    Placed there = try_place_in(e, s);
    if (there == Placed::kStarted || there == Placed::kQuota) return there;
  }
  return placed;
}

Scheduler::Placed Scheduler::try_place_in(const QueueEntry& e, const Shape& shape) {
  // Hot path: a job that cannot start is passed over reading only its entry.
  if (!cluster_.may_fit(shape)) return Placed::kNoRoom;
  for (auto& f : failed_shapes_) {
    if (f == shape) return Placed::kNoRoom;
  }
  Job& j = *e.job;
  const NodeFilter* filter = nullptr;
  uint64_t limit_s = j.spec->time_limit_s;
  if (book_.holds_any_node()) {
    filter = book_.filter_for(j.id, now_ns_ + limit_ns(j));
    if (!plans_.count(j.id)) {  // a preemptor's own reservation does not hold it back
      for (auto& [f, l] : failed_filtered_) {
        if (l == limit_s && f == shape) return Placed::kReserved;
      }
    }
  }
  if (!cluster_.place(shape, &picks_, filter)) {
    if (filter && cluster_.place(shape, &picks_)) {
      // It fits, but only on GPUs reserved for a job ahead of it.
      if (failed_filtered_.size() < 256 && !plans_.count(j.id)) failed_filtered_.emplace_back(shape, limit_s);
      picks_.clear();
      return Placed::kReserved;
    }
    if (failed_shapes_.size() < 256) failed_shapes_.push_back(shape);
    return Placed::kNoRoom;
  }
  if (usage_.any_quota() && shape.gpu_type == 0 && shape.gpus > 0) {
    // "Any" type: the quota of the type it landed on.
    uint16_t t = cluster_.gpu_type_at(picks_[0].node, static_cast<uint32_t>(std::countr_zero(picks_[0].gpus)));
    if (over_quota(e, t)) return Placed::kQuota;
  }
  int64_t end = now_ns_ + limit_ns(j);
  if (!book_.empty()) {
    ++stats_.backfilled;
    // A job that outlives a reservation's start takes from what it keeps.
    book_.charge(picks_, j.id, end);
  }
  start(j, shape, end);
  return Placed::kStarted;
}

void Scheduler::start(Job& j, const Shape& shape, int64_t end_ns) {
  AllocateRequest req{j.id, j.attempt, {}, {}};
  if (!j.other_partitions.empty()) req.partition = cluster_.partition(shape.partition).name;
  j.run_partition = req.partition;
  req.nodes.reserve(picks_.size());
  j.nodes.clear();
  j.gpu_indices.clear();
  for (auto& p : picks_) {
    Hold h{p.gpus, shape.cpus, shape.memory_mb, end_ns, j.spec->exclusive};
    cluster_.add_tentative(j.id, p.node, h);
    auto gpus = gpu_list(p.gpus);
    j.nodes.push_back(cluster_.node_name(p.node));
    j.gpu_indices.insert(j.gpu_indices.end(), gpus.begin(), gpus.end());
    req.nodes.push_back(NodeGrant{cluster_.node_name(p.node), std::move(gpus), shape.cpus, shape.memory_mb});
  }
  out_.allocations.push_back(std::move(req));
  set_allocating(j, true);
  j.wait = WaitReason::kAllocating;
  ++stats_.placed;
}

bool Scheduler::offer(const QueueEntry& e) {
  ++stats_.tried;
  Job& j = *e.job;
  if (usage_.blocked(e.account)) return false;
  if (e.array_job_id && array_full(e.array_job_id)) return false;
  if (config_.backfill == Backfill::kOff) {
    for (auto& [p, b] : strict_blockers_) {
      if (p == e.shape.partition && b.id != e.id && policy_->before(b, e)) {
        j.wait = WaitReason::kPriority;
        return false;
      }
    }
  }
  if (usage_.any_quota() && over_quota(e, e.shape.gpu_type)) {
    j.wait = WaitReason::kQuota;
    return false;
  }
  Placed placed = try_place(e);
  if (placed == Placed::kStarted) return true;
  if (placed == Placed::kQuota) {
    j.wait = WaitReason::kQuota;
    return false;
  }
  // It waits. Victims already make room for it: keep that room for it.
  if (draining_for_.count(e.id)) {
    if (auto p = plans_.find(e.id); p != plans_.end()) reserve_for_plan(e, p->second);
    j.wait = WaitReason::kPreempting;
    return false;
  }
  if (placed == Placed::kNoRoom && preemption_possible(e) && preempt_for(e)) {
    j.wait = WaitReason::kPreempting;
    return false;
  }
  wait_by_backfill(e, placed);
  return false;
}

void Scheduler::wait_by_backfill(const QueueEntry& e, Placed placed) {
  Job& j = *e.job;
  switch (config_.backfill) {
    case Backfill::kOff: {
      // Strict order: the first job that waits holds back its partition.
      auto it = std::find_if(strict_blockers_.begin(), strict_blockers_.end(),
                             [&](auto& pb) { return pb.first == e.shape.partition; });
      if (it == strict_blockers_.end()) {
        strict_blockers_.emplace_back(e.shape.partition, e);
      } else if (policy_->before(e, it->second)) {
        it->second = e;
      }
      j.wait = WaitReason::kResources;
      return;
    }
    case Backfill::kEasy: {
      // Reservations are made over a pool's nodes, not the nodes a
      // placement rule allows: such a job waits without one.
      if (e.shape.where != 0) {
        j.wait = WaitReason::kResources;
        return;
      }
      const Reservation* holder = nullptr;
      for (auto& r : book_.all()) {
        if (r.partition != e.shape.partition || r.pool_type != e.shape.gpu_type) continue;
        const Job* h = job(r.job);
        if (h && h->queued) holder = &r;  // (one that started in this cycle holds nothing back)
      }
      if (holder) {
        // A fresh job ahead of the pool's reservation: the next cycle
        // reorders the reservations.
        if (!full_) {
          if (Job* h = find(holder->job); h && h->queued && policy_->before(e, entry(*h))) {
            rerun_full_ = true;
          }
        }
        j.wait = WaitReason::kPriority;
        return;
      }
      if (book_.size() < config_.max_reservations && !book_.pool_reserved(e.shape.partition, e.shape.gpu_type)) {
        reserve(e);
      }
      j.wait = placed == Placed::kReserved && j.expected_start_ns == 0 ? WaitReason::kPriority : WaitReason::kResources;
      return;
    }
    case Backfill::kGreedy:
      break;
  }
  j.wait = placed == Placed::kReserved ? WaitReason::kPriority : WaitReason::kResources;
}

// What a cycle may still do once no GPU is free and every waiting job wants
// one: preempt (by tier, or to reclaim a guarantee), or give the first
// waiting job of a pool its reservation (and users its expected start).
struct Scheduler::CyclePass {
  explicit CyclePass(Scheduler& sched) : s(sched) {
    // Accounts under their guarantee with jobs waiting: the only ones that
    // may reclaim; their waiting jobs are counted down as they are seen.
    if (s.usage_.any_guarantee() && s.config_.preemption.reclaim) reclaim_left = s.usage_.reclaimers(&reclaimer);
  }
  // Nothing can start except by preemption.
  bool exhausted() const { return s.cluster_.free_gpus() == 0 && s.cpu_only_queued_ == 0; }
  bool reservation_left() const {
    return s.config_.backfill == Backfill::kEasy && s.book_.size() < s.config_.max_reservations;
  }
  bool needs_reservation(const QueueEntry& e) const {
    return reservation_left() && e.shape.gpus > 0 && !s.book_.pool_reserved(e.shape.partition, e.shape.gpu_type);
  }
  bool every_pool_reserved() const {
    for (auto& [pool, n] : s.queued_pools_) {
      if (!s.book_.pool_reserved(pool.first, pool.second)) return false;
    }
    return true;
  }
  bool may_preempt() const { return s.preemptors_tried_ < s.config_.max_preemptors_per_cycle; }
  // In tier order, once the tiers are no higher than every running job's
  // nothing after can preempt.
  bool tier_may_preempt(const QueueEntry& e) const {
    return s.config_.preemption.tiers && !s.active_tiers_.empty() &&
           (!s.policy_->tier_first() || e.tier > s.active_tiers_.begin()->first);
  }
  bool only_preemption_left(const QueueEntry& e) {
    if (!may_preempt()) return false;
    if (reclaim_left > 0 && e.account < reclaimer.size() && reclaimer[e.account]) {
      --reclaim_left;
      return true;
    }
    return tier_may_preempt(e);
  }
  // Worth offering `e` on an exhausted cluster.
  bool worth_offering(const QueueEntry& e) { return only_preemption_left(e) || needs_reservation(e); }
  // No later job can do anything either.
  bool nothing_more(const QueueEntry& e) const {
    if (may_preempt() && (reclaim_left > 0 || tier_may_preempt(e))) return false;
    return !reservation_left() || every_pool_reserved();
  }

  Scheduler& s;
  size_t reclaim_left = 0;
  std::vector<bool> reclaimer;
};

size_t Scheduler::cycle(int64_t now_ns) {
  if (!wants_cycle()) return 0;
  ++stats_.cycles;
  now_ns_ = now_ns;
  failed_shapes_.clear();
  failed_filtered_.clear();
  size_t placed = 0;
  CyclePass pass(*this);
  if (full_) {
    full_cycle(pass, &placed);
  } else {
    fresh_cycle(pass, &placed);
  }
  full_ = rerun_full_;
  rerun_full_ = false;
  fresh_.clear();
  return placed;
}

void Scheduler::full_cycle(CyclePass& pass, size_t* placed) {
  ++stats_.full_cycles;
  begin_full_cycle();
  policy_->visit([&](const QueueEntry& e) {
    // Only preemption, or a reservation for a pool that has none yet, is
    // left to do.
    if (pass.exhausted() && !pass.worth_offering(e)) return pass.nothing_more(e) ? Visit::kStop : Visit::kNext;
    if (!offer(e)) return Visit::kNext;
    ++*placed;
    left_queue(*e.job);
    return Visit::kTake;
  });
}

void Scheduler::fresh_cycle(CyclePass& pass, size_t* placed) {
  // Only the jobs queued since the last cycle: the others did not fit and
  // nothing was freed since.
  std::vector<QueueEntry> fresh;
  fresh.reserve(fresh_.size());
  for (JobId id : fresh_) {
    Job* j = find(id);
    if (j && j->queued) fresh.push_back(entry(*j));
  }
  std::sort(fresh.begin(), fresh.end(), [&](auto& a, auto& b) { return policy_->before(a, b); });
  fresh.erase(std::unique(fresh.begin(), fresh.end(), [](auto& a, auto& b) { return a.id == b.id; }), fresh.end());
  for (auto& e : fresh) {
    if (pass.exhausted() && !pass.worth_offering(e)) continue;
    if (!offer(e)) continue;
    ++*placed;
    dequeue(*e.job);
  }
}

}  // namespace trainyard::scheduler

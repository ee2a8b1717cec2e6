// The scheduler core's job table: construction, queries, the state
// machine's one transition function, and the queue bookkeeping every other
// part (submit, events, cycle, restore: scheduler_*.cc) goes through.
#include "core/scheduler.h"

#include <algorithm>

namespace trainyard::scheduler {

Scheduler::Scheduler(SchedulerConfig config, std::unique_ptr<QueuePolicy> policy)
    : config_(std::move(config)),
      policy_(policy ? std::move(policy) : std::make_unique<PriorityFifoPolicy>()),
      cluster_(config_.partitions),
      usage_(config_.quotas, cluster_),
      book_(cluster_) {
  for (auto& t : config_.gpu_types) cluster_.intern_gpu_type(t);
  for (auto& [account, q] : config_.quotas) {
    for (auto& [t, n] : q.max_gpus) cluster_.intern_gpu_type(t);
    for (auto& [t, n] : q.guaranteed_gpus) cluster_.intern_gpu_type(t);
  }
  policy_->attach(PolicyContext{&usage_.names(), &cluster_.capacity()});
}

int64_t Scheduler::tier_for(const fb::JobSpecT& spec, const Shape& shape) const {
  int32_t pt = shape.partition < cluster_.partition_count() ? cluster_.partition(shape.partition).priority_tier : 0;
  return tier_of(pt, spec.priority);
}

int64_t Scheduler::limit_ns(const Job& j) const {
  uint64_t s = j.spec ? j.spec->time_limit_s : 0;
  if (s == 0) return kNever / 4;
  return static_cast<int64_t>(std::min<uint64_t>(s, uint64_t{1} << 32)) * 1'000'000'000;
}

void Scheduler::set_lease_ends(Job& j, int64_t end_ns) {
  for (uint64_t l : j.lease_ids) {
    if (l) cluster_.set_lease_end(l, end_ns);
  }
}

Job* Scheduler::find(JobId id) {
  auto it = jobs_.find(id);
  return it == jobs_.end() ? nullptr : &it->second;
}

const Job* Scheduler::job(JobId id) const {
  auto it = jobs_.find(id);
  return it == jobs_.end() ? nullptr : &it->second;
}

const std::vector<JobId>* Scheduler::array_tasks(JobId array_job_id) const {
  auto it = arrays_.find(array_job_id);
  return it == arrays_.end() ? nullptr : &it->second.tasks;
}

void Scheduler::for_each_job(JobId from, const std::function<bool(const Job&)>& fn) const {
  for (auto it = jobs_.lower_bound(from); it != jobs_.end(); ++it) {
    if (!fn(it->second)) break;
  }
}

uint32_t Scheduler::account_gpus(std::string_view account, std::string_view gpu_type) const {
  auto a = usage_.find(account);
  auto t = cluster_.gpu_type_index(gpu_type);
  if (!a || !t) return 0;
  return usage_.used(*a, *t);
}

uint64_t Scheduler::account_preemptions(std::string_view account) const {
  auto a = usage_.find(account);
  return a ? usage_.preemptions(*a) : 0;
}

bool Scheduler::account_is_blocked(std::string_view account) const {
  auto a = usage_.find(account);
  return a && usage_.blocked(*a);
}

std::string Scheduler::reason_of(const Job& j) const {
  if (j.terminal()) return j.reason;
  if (j.state == JobState::Held) return std::string(wait_reason_name(WaitReason::kHeld));
  if (j.state != JobState::Pending) {
    return j.cancel_requested || j.preempt_requested || j.requeue_requested ? j.reason : std::string();
  }
  if (j.queued && usage_.blocked(j.account)) return std::string(wait_reason_name(WaitReason::kAccountBlocked));
  if (j.queued && j.array_job_id && array_full(j.array_job_id)) {
    return std::string(wait_reason_name(WaitReason::kArrayLimit));
  }
  if (j.wait == WaitReason::kBackoff) return std::string(wait_reason_name(j.wait)) + ": " + j.reason;
  if (j.wait == WaitReason::kNone) return std::string(wait_reason_name(WaitReason::kResources));
  if (j.wait == WaitReason::kQuota) {
    uint16_t t = j.shape.gpu_type;
    const std::string& account = usage_.names()[j.account];
    auto q = config_.quotas.find(account);
    std::string what = "GPUs";
    uint32_t max = 0;
    if (q != config_.quotas.end()) {
      auto typed = t ? q->second.max_gpus.find(cluster_.gpu_type_name(t)) : q->second.max_gpus.end();
      auto all = q->second.max_gpus.find("");
      if (typed != q->second.max_gpus.end() &&
          (all == q->second.max_gpus.end() || usage_.used(j.account, t) + j.shape.gpus * j.shape.nodes > typed->second)) {
        what = cluster_.gpu_type_name(t) + " GPUs";
        max = typed->second;
      } else if (all != q->second.max_gpus.end()) {
        max = all->second;
      }
    }
    uint32_t in_use = usage_.used(j.account, what == "GPUs" ? 0 : t);
    return "QuotaExceeded: account '" + account + "' uses " + std::to_string(in_use) + " of its " +
           std::to_string(max) + " " + what;
  }
  return std::string(wait_reason_name(j.wait));
}

Output Scheduler::take_output() {
  Output o = std::move(out_);
  out_ = Output{};
  for (JobId id : o.dirty) {
    if (auto* j = find(id)) j->dirty = false;
  }
  return o;
}

void Scheduler::mark_dirty(Job& j) {
  if (j.dirty) return;
  j.dirty = true;
  out_.dirty.push_back(j.id);
}

void Scheduler::transition(Job& j, JobState to, std::string reason, int64_t now_ns, int32_t exit_code) {
  JobState from = j.state;
  bool was_active = j.active();
  j.state = to;
  j.history.push_back(Transition{to, now_ns, reason});
  if (to == JobState::Running && j.start_time_ns == 0) j.start_time_ns = now_ns;
  if (is_terminal(to)) {
    j.end_time_ns = now_ns;
    j.reason = reason;
    j.exit_code = exit_code;
  }
  out_.changes.push_back(StateChange{j.id, from, to, std::move(reason), j.attempt, exit_code});
  mark_dirty(j);
  // Fair share accrues usage over runs: from run start to run end.
  if (j.usage_open && to != JobState::Running) {
    policy_->on_ended(j, now_ns);
    j.usage_open = false;
  }
  if (to == JobState::Running && !j.usage_open) {
    if (!j.counted) held_changed(j, true);
    policy_->on_started(j, now_ns);
    j.usage_open = true;
  }
  active_changed(j, was_active);
  if (is_terminal(to)) {
    if (!is_terminal(from)) job_ended(j);
    on_terminal(j, now_ns);
  }
}

void Scheduler::set_allocating(Job& j, bool allocating) {
  bool was_active = j.active();
  if (allocating != j.allocating) allocating ? ++allocating_count_ : --allocating_count_;
  j.allocating = allocating;
  active_changed(j, was_active);
}

void Scheduler::held_changed(Job& j, bool now_active) {
  if (now_active == j.counted) return;
  if (now_active) {
    uint16_t t = j.shape.gpu_type;
    if (t == 0 && !j.nodes.empty() && !j.gpu_indices.empty()) {
      if (auto n = cluster_.find_node(j.nodes[0])) t = cluster_.gpu_type_at(*n, j.gpu_indices[0]);
    }
    j.held_type = t;
    j.held_gpus = j.shape.gpus * j.shape.nodes;
  }
  if (now_active) {
    usage_.hold(j.account, j.held_type, j.held_gpus);
    j.active_slot = static_cast<uint32_t>(active_.size());
    active_.push_back(&j);
    if (j.spec->preemptible) ++active_tiers_[j.tier];
  } else {
    usage_.release(j.account, j.held_type, j.held_gpus);
    if (j.active_slot < active_.size() && active_[j.active_slot] == &j) {
      active_[j.active_slot] = active_.back();
      active_[j.active_slot]->active_slot = j.active_slot;
      active_.pop_back();
    }
    if (j.spec->preemptible) {
      auto it = active_tiers_.find(j.tier);
      if (it != active_tiers_.end() && --it->second == 0) active_tiers_.erase(it);
    }
    if (j.preempted_for) {
      auto d = draining_for_.find(j.preempted_for);
      if (d != draining_for_.end() && --d->second == 0) draining_for_.erase(d);
      j.preempted_for = 0;
    }
  }
  j.counted = now_active;
}

void Scheduler::active_changed(Job& j, bool was_active) {
  bool now_active = j.active();
  if (was_active == now_active) return;
  held_changed(j, now_active);
  if (j.array_job_id == 0) return;
  auto it = arrays_.find(j.array_job_id);
  if (it == arrays_.end()) return;
  auto& a = it->second;
  if (now_active) {
    ++a.active;
  } else {
    if (a.active > 0) --a.active;
    if (a.max_running) full_ = true;  // a throttled task may go now
  }
}

void Scheduler::enqueue(Job& j) {
  if (j.queued) return;
  j.queued = true;
  j.wait = WaitReason::kResources;
  policy_->add(entry(j));
  if (j.shape.gpus == 0) ++cpu_only_queued_;
  auto pool = std::find_if(queued_pools_.begin(), queued_pools_.end(), [&](auto& qp) {
    return qp.first.first == j.shape.partition && qp.first.second == j.shape.gpu_type;
  });
  if (pool == queued_pools_.end()) {
    queued_pools_.push_back({{j.shape.partition, j.shape.gpu_type}, 1});
  } else {
    ++pool->second;
  }
  usage_.queued(j.account);
  fresh_.push_back(j.id);
}

void Scheduler::dequeue(Job& j) {
  if (!j.queued) return;
  policy_->remove(entry(j));
  left_queue(j);
}

void Scheduler::left_queue(Job& j) {
  j.queued = false;
  auto pool = std::find_if(queued_pools_.begin(), queued_pools_.end(), [&](auto& qp) {
    return qp.first.first == j.shape.partition && qp.first.second == j.shape.gpu_type;
  });
  if (pool != queued_pools_.end() && --pool->second == 0) queued_pools_.erase(pool);
  usage_.unqueued(j.account);
  j.expected_start_ns = 0;
  plans_.erase(j.id);
  if (j.shape.gpus == 0) --cpu_only_queued_;
}

}  // namespace trainyard::scheduler

#include "core/scheduler.h"

#include <algorithm>
#include <bit>
#include <climits>

#include <tbb/parallel_for.h>

#include "core/array_spec.h"
#include "core/validation.h"

namespace trainyard::scheduler {
namespace {

std::string state_name(JobState s) { return fb::EnumNameJobState(s); }


}  // namespace

Scheduler::Scheduler(SchedulerConfig config, std::unique_ptr<QueuePolicy> policy)
    : config_(std::move(config)),
      policy_(policy ? std::move(policy) : std::make_unique<PriorityFifoPolicy>()),
      cluster_(config_.partitions) {
  for (auto& t : config_.gpu_types) cluster_.intern_gpu_type(t);
  for (auto& [account, q] : config_.quotas) {
    for (auto& [t, n] : q.max_gpus) {
      cluster_.intern_gpu_type(t);
      any_quota_ = true;
    }
    for (auto& [t, n] : q.guaranteed_gpus) {
      cluster_.intern_gpu_type(t);
      if (n) any_guarantee_ = true;
    }
  }
  policy_->attach(PolicyContext{&account_names_, &cluster_.capacity()});
  // Keeps a job that would outlive a reservation's start off the GPUs the
  // reservation needs (EASY backfill, and room made by preemption).
  reservation_filter_ = [this](NodeIdx n, uint64_t gpus) {
    auto it = reserved_.find(n);
    if (it == reserved_.end()) return true;
    const Reservation& r = reservations_[it->second.first];
    if (r.job == candidate_job_ || candidate_end_ns_ <= r.start_ns) return true;
    uint32_t conflict = static_cast<uint32_t>(std::popcount(gpus & cluster_.type_mask(n, r.type)));
    uint32_t slot = it->second.second;
    return r.avail[slot] >= conflict + r.need[slot];
  };
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

uint32_t Scheduler::account_index(std::string_view account) {
  auto [it, fresh] = account_ids_.emplace(std::string(account), static_cast<uint32_t>(account_names_.size()));
  if (fresh) {
    account_names_.emplace_back(account);
    blocked_.push_back(false);
    used_.emplace_back();
    preempted_by_account_.push_back(0);
  }
  return it->second;
}

uint32_t Scheduler::account_gpus(std::string_view account, std::string_view gpu_type) const {
  auto it = account_ids_.find(std::string(account));
  auto t = cluster_.gpu_type_index(gpu_type);
  if (it == account_ids_.end() || !t) return 0;
  return used(it->second, *t);
}

uint64_t Scheduler::account_preemptions(std::string_view account) const {
  auto it = account_ids_.find(std::string(account));
  return it == account_ids_.end() ? 0 : preempted_by_account_[it->second];
}

uint32_t Scheduler::used(uint32_t account, uint16_t type) const {
  if (account >= used_.size() || type >= used_[account].size()) return 0;
  return used_[account][type];
}

const Scheduler::Limits& Scheduler::limits(uint32_t account) {
  size_t types = cluster_.gpu_type_count();
  if (limits_types_ != types || limits_.size() != account_names_.size()) {
    limits_.assign(account_names_.size(), Limits{});
    for (size_t a = 0; a < account_names_.size(); ++a) {
      auto& l = limits_[a];
      l.max.assign(types, UINT32_MAX);
      l.guaranteed.assign(types, 0);
      auto q = config_.quotas.find(account_names_[a]);
      if (q == config_.quotas.end()) continue;
      for (auto& [t, n] : q->second.max_gpus) {
        if (auto ti = cluster_.gpu_type_index(t)) l.max[*ti] = n;
        l.any = true;
      }
      for (auto& [t, n] : q->second.guaranteed_gpus) {
        if (auto ti = cluster_.gpu_type_index(t)) l.guaranteed[*ti] = n;
        l.any = true;
      }
    }
    limits_types_ = types;
  }
  return limits_[account];
}

bool Scheduler::over_quota(const QueueEntry& e, uint16_t type) {
  const Limits& l = limits(e.account);
  if (!l.any) return false;
  uint64_t want = uint64_t{e.shape.gpus} * e.shape.nodes;
  if (used(e.account, 0) + want > l.max[0]) return true;
  return type != 0 && used(e.account, type) + want > l.max[type];
}

bool Scheduler::borrowing(uint32_t account, uint16_t type) {
  const Limits& l = limits(account);
  // Above its guarantee of the type, or of all types together.
  if (type != 0 && used(account, type) > l.guaranteed[type]) {
    return l.guaranteed[0] == 0 || used(account, 0) > l.guaranteed[0];
  }
  return type == 0 && used(account, 0) > l.guaranteed[0];
}

bool Scheduler::can_reclaim(const QueueEntry& e) {
  if (!any_guarantee_ || !config_.preemption.reclaim) return false;
  const Limits& l = limits(e.account);
  uint64_t want = uint64_t{e.shape.gpus} * e.shape.nodes;
  uint16_t t = e.shape.gpu_type;
  if (t != 0 && l.guaranteed[t] > 0) return used(e.account, t) + want <= l.guaranteed[t];
  return l.guaranteed[0] > 0 && used(e.account, 0) + want <= l.guaranteed[0];
}

std::vector<bool>::reference Scheduler::blocked(uint32_t account) { return blocked_[account]; }

bool Scheduler::account_is_blocked(std::string_view account) const {
  auto it = account_ids_.find(std::string(account));
  return it != account_ids_.end() && blocked_at(it->second);
}

std::string Scheduler::reason_of(const Job& j) const {
  if (j.terminal()) return j.reason;
  if (j.state == JobState::Held) return std::string(wait_reason_name(WaitReason::kHeld));
  if (j.state != JobState::Pending) return j.cancel_requested || j.preempt_requested ? j.reason : std::string();
  if (j.queued && blocked_at(j.account)) return std::string(wait_reason_name(WaitReason::kAccountBlocked));
  if (j.queued && j.array_job_id && array_full(j.array_job_id)) {
    return std::string(wait_reason_name(WaitReason::kArrayLimit));
  }
  if (j.wait == WaitReason::kBackoff) return std::string(wait_reason_name(j.wait)) + ": " + j.reason;
  if (j.wait == WaitReason::kNone) return std::string(wait_reason_name(WaitReason::kResources));
  if (j.wait == WaitReason::kQuota) {
    uint16_t t = j.shape.gpu_type;
    auto q = config_.quotas.find(account_names_[j.account]);
    std::string what = "GPUs";
    uint32_t max = 0;
    if (q != config_.quotas.end()) {
      auto typed = t ? q->second.max_gpus.find(cluster_.gpu_type_name(t)) : q->second.max_gpus.end();
      auto all = q->second.max_gpus.find("");
      if (typed != q->second.max_gpus.end() &&
          (all == q->second.max_gpus.end() || used(j.account, t) + j.shape.gpus * j.shape.nodes > typed->second)) {
        what = cluster_.gpu_type_name(t) + " GPUs";
        max = typed->second;
      } else if (all != q->second.max_gpus.end()) {
        max = all->second;
      }
    }
    uint32_t in_use = what == "GPUs" ? used(j.account, 0) : used(j.account, t);
    return "QuotaExceeded: account '" + account_names_[j.account] + "' uses " + std::to_string(in_use) + " of its " +
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
  auto& u = used_[j.account];
  if (u.size() <= j.held_type) u.resize(j.held_type + 1, 0);
  if (now_active) {
    u[0] += j.held_gpus;
    if (j.held_type) u[j.held_type] += j.held_gpus;
    j.active_slot = static_cast<uint32_t>(active_.size());
    active_.push_back(&j);
    if (j.spec->preemptible) ++active_tiers_[j.tier];
  } else {
    u[0] -= std::min(u[0], j.held_gpus);
    if (j.held_type) u[j.held_type] -= std::min(u[j.held_type], j.held_gpus);
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
  if (queued_by_account_.size() <= j.account) queued_by_account_.resize(j.account + 1, 0);
  ++queued_by_account_[j.account];
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
  if (j.account < queued_by_account_.size() && queued_by_account_[j.account] > 0) --queued_by_account_[j.account];
  j.expected_start_ns = 0;
  plans_.erase(j.id);
  if (j.shape.gpus == 0) --cpu_only_queued_;
}

// --- submissions ---------------------------------------------------------

Result<SubmitResult> Scheduler::submit(const fb::JobSpecT& in, int64_t now_ns) {
  if (!in.client_token.empty()) {
    auto it = tokens_.find(token_key(in.user, in.client_token));
    if (it != tokens_.end()) {
      SubmitResult r = it->second;
      r.duplicate = true;
      return r;
    }
  }
  auto spec = std::make_shared<fb::JobSpecT>(in);
  if (auto s = normalize_spec(*spec, config_, cluster_); !s) return s;
  ArraySpec array;
  if (!spec->array.empty()) {
    auto parsed = parse_array(spec->array, config_.max_array_size);
    if (!parsed) return parsed.status();
    array = std::move(parsed).value();
  }
  for (size_t i = 0; i < spec->dependencies.size(); ++i) {
    auto& d = spec->dependencies[i];
    if (!d) return Status::invalid("dependencies[" + std::to_string(i) + "]: empty");
    if (!jobs_.count(d->job_id) && !arrays_.count(d->job_id)) {
      return Status::invalid("dependencies[" + std::to_string(i) + "].job_id: job " + std::to_string(d->job_id) +
                             (was_purged(d->job_id) ? " was purged after the retention period" : " does not exist"));
    }
  }
  if (auto s = check_user_limit(*spec, spec->array.empty() ? 1 : array.indices.size()); !s) return s;

  SubmitResult result;
  Shape shape = shape_of(*spec, cluster_);
  uint32_t account = account_index(spec->account);
  std::shared_ptr<const fb::JobSpecT> shared = spec;
  std::vector<int32_t> indices = array.indices;
  if (spec->array.empty()) {
    indices = {-1};
  } else {
    result.array_job_id = next_id_++;
    auto& info = arrays_[result.array_job_id];
    info.max_running = array.max_running;
  }
  for (int32_t index : indices) {
    JobId id = next_id_++;
    auto& j = jobs_[id];
    j.id = id;
    j.spec = shared;
    j.state = JobState::Pending;
    j.array_job_id = result.array_job_id;
    j.array_index = index;
    j.submit_time_ns = now_ns;
    j.shape = shape;
    j.tier = tier_for(*spec, shape);
    j.account = account;
    j.history.push_back(Transition{JobState::Pending, now_ns, "submitted"});
    result.job_ids.push_back(id);
    if (result.array_job_id) arrays_[result.array_job_id].tasks.push_back(id);
    out_.submitted.push_back(id);
    out_.changes.push_back(StateChange{id, JobState::Pending, JobState::Pending, "submitted", 1, 0});
    mark_dirty(j);
    for (auto& d : spec->dependencies) dependents_[d->job_id].push_back(id);
    make_ready(j, now_ns);
  }
  if (!in.client_token.empty()) tokens_[token_key(in.user, in.client_token)] = result;
  unfinished_by_user_[spec->user] += static_cast<uint32_t>(result.job_ids.size());
  return result;
}

Scheduler::DepStatus Scheduler::dependency_status(const fb::DependencyT& d, std::string* why) const {
  auto judge = [&](const Job& t) -> DepStatus {
    if (!t.terminal()) return DepStatus::kWaiting;
    bool ok = t.state == JobState::Succeeded;
    switch (d.kind) {
      case fb::DependencyKind::AfterOk:
        if (ok) return DepStatus::kSatisfied;
        *why = "afterok:" + std::to_string(d.job_id) + " (job " + std::to_string(t.id) + " ended " +
               state_name(t.state) + ")";
        return DepStatus::kNever;
      case fb::DependencyKind::AfterNotOk:
        if (!ok) return DepStatus::kSatisfied;
        *why = "afternotok:" + std::to_string(d.job_id) + " (job " + std::to_string(t.id) + " succeeded)";
        return DepStatus::kNever;
      case fb::DependencyKind::AfterAny:
        return DepStatus::kSatisfied;
    }
    return DepStatus::kSatisfied;
  };
  if (auto a = arrays_.find(d.job_id); a != arrays_.end()) {
    // An array: afterok needs every task ok; afternotok any task not ok.
    bool waiting = false, any_not_ok = false;
    std::string not_ok_why;
    for (JobId t : a->second.tasks) {
      const Job* tj = job(t);
      if (!tj) continue;
      if (!tj->terminal()) {
        waiting = true;
        continue;
      }
      if (tj->state != JobState::Succeeded && !any_not_ok) {
        any_not_ok = true;
        not_ok_why = "job " + std::to_string(t) + " ended " + state_name(tj->state);
      }
    }
    if (d.kind == fb::DependencyKind::AfterOk && any_not_ok) {
      *why = "afterok:" + std::to_string(d.job_id) + " (" + not_ok_why + ")";
      return DepStatus::kNever;
    }
    if (waiting) return DepStatus::kWaiting;
    if (d.kind == fb::DependencyKind::AfterNotOk && !any_not_ok) {
      *why = "afternotok:" + std::to_string(d.job_id) + " (every task succeeded)";
      return DepStatus::kNever;
    }
    return DepStatus::kSatisfied;
  }
  const Job* t = job(d.job_id);
  if (!t) {
    *why = "job " + std::to_string(d.job_id) + " is unknown";
    return DepStatus::kNever;
  }
  return judge(*t);
}

Scheduler::DepStatus Scheduler::dependencies_of(const Job& j, std::string* why) const {
  DepStatus all = DepStatus::kSatisfied;
  for (auto& d : j.spec->dependencies) {
    auto s = dependency_status(*d, why);
    if (s == DepStatus::kNever) return s;
    if (s == DepStatus::kWaiting) all = DepStatus::kWaiting;
  }
  return all;
}

void Scheduler::make_ready(Job& j, int64_t now_ns) {
  if (j.state != JobState::Pending) return;
  if (!j.spec->dependencies.empty()) {
    std::string why;
    auto s = dependencies_of(j, &why);
    if (s == DepStatus::kNever) {
      dequeue(j);
      transition(j, JobState::Cancelled, "DependencyNeverSatisfied: " + why, now_ns);
      return;
    }
    if (s == DepStatus::kWaiting) {
      dequeue(j);
      j.wait = WaitReason::kDependency;
      return;
    }
  }
  enqueue(j);
}

void Scheduler::on_terminal(Job& j, int64_t now_ns) {
  dequeue(j);
  cluster_.remove_tentatives(j.id);
  if (j.allocating) set_allocating(j, false);
  // Wake (or cancel) the jobs that depend on this one or on its array.
  auto wake = [&](JobId target) {
    auto it = dependents_.find(target);
    if (it == dependents_.end()) return;
    std::vector<JobId> waiting = it->second;
    for (JobId w : waiting) {
      Job* dj = find(w);
      if (dj && dj->state == JobState::Pending && !dj->queued) make_ready(*dj, now_ns);
    }
    // Drop the entries of dependents that are settled.
    auto& v = dependents_[target];
    v.erase(std::remove_if(v.begin(), v.end(),
                           [&](JobId w) {
                             const Job* dj = job(w);
                             return !dj || dj->terminal() || dj->queued;
                           }),
            v.end());
    if (v.empty()) dependents_.erase(target);
  };
  wake(j.id);
  if (j.array_job_id) wake(j.array_job_id);
}

// --- user actions ----------------------------------------------------------

Status Scheduler::cancel(JobId id, std::string_view reason, int64_t now_ns) {
  std::string why = reason.empty() ? std::string("cancelled by user") : std::string(reason);
  if (auto a = arrays_.find(id); a != arrays_.end()) {
    auto tasks = a->second.tasks;
    for (JobId t : tasks) {
      if (Job* j = find(t); j && !j->terminal()) cancel_one(*j, why, now_ns);
    }
    return Status::ok();
  }
  Job* j = find(id);
  if (!j) return Status::not_found("job " + std::to_string(id) + " does not exist");
  if (j->terminal()) {
    return Status::failed_precondition("job " + std::to_string(id) + " already ended " + state_name(j->state));
  }
  cancel_one(*j, why, now_ns);
  return Status::ok();
}

void Scheduler::cancel_one(Job& j, std::string_view reason, int64_t now_ns) {
  if (j.cancel_requested) return;
  if (j.state == JobState::Pending || j.state == JobState::Held) {
    // An Allocate may be out: whatever lease it brings is released when
    // it shows up (the job is terminal by then).
    transition(j, JobState::Cancelled, std::string(reason), now_ns);
    return;
  }
  j.cancel_requested = true;
  j.reason = std::string(reason);
  mark_dirty(j);
  release_leases(j, 0, reason);
}

void Scheduler::release_leases(Job& j, uint64_t except, std::string_view reason) {
  for (uint64_t l : j.lease_ids) {
    if (l == 0 || l == except) continue;
    out_.releases.push_back(ReleaseRequest{l, j.id, true, std::string(reason), j.spec->grace_s});
  }
}

void Scheduler::resend_releases() {
  for (auto& [id, j] : jobs_) {
    if ((j.cancel_requested || j.preempt_requested) && !j.terminal()) release_leases(j, 0, j.reason);
  }
}

Status Scheduler::hold(JobId id, int64_t now_ns) {
  if (auto a = arrays_.find(id); a != arrays_.end()) {
    for (JobId t : a->second.tasks) {
      Job* j = find(t);
      if (j && j->state == JobState::Pending && !j->allocating) {
        dequeue(*j);
        transition(*j, JobState::Held, "held by user", now_ns);
      }
    }
    return Status::ok();
  }
  Job* j = find(id);
  if (!j) return Status::not_found("job " + std::to_string(id) + " does not exist");
  if (j->state == JobState::Held) return Status::ok();
  if (j->state != JobState::Pending) {
    return Status::failed_precondition("job " + std::to_string(id) + " is " + state_name(j->state) +
                                       "; only pending jobs can be held");
  }
  if (j->allocating) {
    return Status::failed_precondition("job " + std::to_string(id) + " is being started; cancel it instead");
  }
  dequeue(*j);
  transition(*j, JobState::Held, "held by user", now_ns);
  return Status::ok();
}

Status Scheduler::release(JobId id, int64_t now_ns) {
  auto release_one = [&](Job& j) {
    transition(j, JobState::Pending, "released by user", now_ns);
    make_ready(j, now_ns);
  };
  if (auto a = arrays_.find(id); a != arrays_.end()) {
    for (JobId t : a->second.tasks) {
      if (Job* j = find(t); j && j->state == JobState::Held) release_one(*j);
    }
    return Status::ok();
  }
  Job* j = find(id);
  if (!j) return Status::not_found("job " + std::to_string(id) + " does not exist");
  if (j->state == JobState::Pending) return Status::ok();
  if (j->state != JobState::Held) {
    return Status::failed_precondition("job " + std::to_string(id) + " is " + state_name(j->state) +
                                       "; only held jobs can be released");
  }
  release_one(*j);
  return Status::ok();
}

// --- node and lease events -------------------------------------------------

void Scheduler::node_up(const fb::NodeInfoT& info) {
  cluster_.upsert(info);
  full_ = true;
}

void Scheduler::restore_node(const fb::NodeInfoT& info, bool up, bool drained) {
  cluster_.upsert(info);
  if (!up) cluster_.set_up(info.name, false);
  if (drained) cluster_.set_drained(info.name, true);
}

void Scheduler::node_down(std::string_view name) { cluster_.set_up(name, false); }

void Scheduler::node_drained(std::string_view name, bool drained) {
  cluster_.set_drained(name, drained);
  if (!drained) full_ = true;
}

void Scheduler::place_rank(Job& j, uint32_t rank, const std::string& node, const std::vector<uint32_t>& gpus) {
  uint32_t n = j.shape.nodes;
  if (rank >= n) return;
  if (j.nodes.size() != n) j.nodes.resize(n);
  j.nodes[rank] = node;
  uint32_t g = j.shape.gpus;
  if (j.gpu_indices.size() != static_cast<size_t>(n) * g) j.gpu_indices.assign(static_cast<size_t>(n) * g, 0);
  for (uint32_t i = 0; i < g && i < gpus.size(); ++i) j.gpu_indices[rank * g + i] = gpus[i];
}

void Scheduler::lease_granted(const Grant& g, int64_t now_ns) {
  Job* j = find(g.job);
  int64_t end = kNever;
  if (j && !j->terminal()) end = (j->state == JobState::Running ? j->start_time_ns : now_ns) + limit_ns(*j);
  cluster_.add_lease(g.lease_id, g.node, g.gpus, g.cpus, g.memory_mb, g.job, g.attempt, end);
  if (auto n = cluster_.find_node(g.node)) cluster_.remove_tentative(g.job, *n);
  if (!j) return;  // another scheduler's job: only its resources matter here
  if (g.attempt != j->attempt || j->terminal() || j->cancel_requested) {
    // A lease this job no longer wants: a cancelled job's, or an older
    // attempt's that the broker granted after a lost reply.
    out_.releases.push_back(ReleaseRequest{g.lease_id, j->id, true,
                                           j->terminal() || j->cancel_requested
                                               ? "job " + std::to_string(j->id) + " was cancelled"
                                               : "lease of an earlier attempt of job " + std::to_string(j->id),
                                           j->spec->grace_s});
    return;
  }
  if (j->lease_ids.size() != j->shape.nodes) j->lease_ids.resize(j->shape.nodes, 0);
  if (g.node_rank < j->lease_ids.size()) j->lease_ids[g.node_rank] = g.lease_id;
  place_rank(*j, g.node_rank, g.node, g.gpus);
  if (j->state == JobState::Pending || j->state == JobState::Held) {
    // The grant can come before the broker's reply (or instead of it, when
    // the reply was lost in a crash): it is the truth.
    dequeue(*j);
    set_allocating(*j, false);
    transition(*j, JobState::Scheduled, "lease " + std::to_string(g.lease_id) + " on " + g.node, now_ns);
  } else {
    mark_dirty(*j);
  }
}

void Scheduler::lease_released(uint64_t lease_id, JobId job_id, int64_t now_ns) {
  cluster_.remove_lease(lease_id);
  full_ = true;
  Job* j = find(job_id);
  if (!j || j->terminal() || !(j->cancel_requested || j->preempt_requested)) return;
  if (std::find(j->lease_ids.begin(), j->lease_ids.end(), lease_id) == j->lease_ids.end()) return;
  release_leases(*j, lease_id, j->reason);
  if (j->cancel_requested) {
    transition(*j, JobState::Cancelled, j->reason, now_ns);
  } else {
    requeue_preempted(*j, now_ns);
  }
}

void Scheduler::lease_lost(uint64_t lease_id, JobId job_id, uint32_t attempt, std::string_view reason, int64_t now_ns) {
  cluster_.remove_lease(lease_id);
  full_ = true;
  Job* j = find(job_id);
  if (!j || j->terminal() || attempt != j->attempt) return;
  if (j->state != JobState::Scheduled && j->state != JobState::Running && !j->allocating) return;
  release_leases(*j, lease_id, "another node of the job was lost");
  if (j->cancel_requested) {
    transition(*j, JobState::Cancelled, j->reason, now_ns);
    return;
  }
  std::string node = "its node";
  for (size_t r = 0; r < j->lease_ids.size() && r < j->nodes.size(); ++r) {
    if (j->lease_ids[r] == lease_id) node = "node " + j->nodes[r];
  }
  requeue_or_end(*j, JobState::NodeFailure,
                 "lease " + std::to_string(lease_id) + " lost: " + node + " failed" +
                     (reason.empty() ? std::string() : " (" + std::string(reason) + ")"),
                 now_ns);
}

void Scheduler::requeue_or_end(Job& j, JobState final_state, std::string reason, int64_t now_ns) {
  cluster_.remove_tentatives(j.id);
  j.preempt_requested = false;
  if (j.attempt <= j.spec->max_retries) {
    ++stats_.requeued;
    uint32_t next = j.attempt + 1;
    std::string why = "requeued (attempt " + std::to_string(next) + " of " +
                      std::to_string(j.spec->max_retries + 1) + "): " + reason;
    j.reason = why;
    if (j.allocating) set_allocating(j, false);
    j.attempt = next;
    j.lease_ids.clear();
    j.nodes.clear();
    j.gpu_indices.clear();
    j.start_time_ns = 0;
    transition(j, JobState::Pending, why, now_ns);
    make_ready(j, now_ns);
    return;
  }
  transition(j, final_state, reason, now_ns, j.exit_code);
}

// --- run events ------------------------------------------------------------

void Scheduler::run_started(JobId job_id, uint32_t attempt, uint64_t lease_id, int64_t start_ns, int64_t now_ns) {
  Job* j = find(job_id);
  if (!j || j->terminal() || attempt != j->attempt) return;
  if (j->state == JobState::Running) return;
  if (j->state == JobState::Pending || j->state == JobState::Held) {
    dequeue(*j);
    set_allocating(*j, false);
  }
  if (lease_id && std::find(j->lease_ids.begin(), j->lease_ids.end(), lease_id) == j->lease_ids.end()) {
    if (j->lease_ids.empty()) j->lease_ids.resize(j->shape.nodes, 0);
    if (j->lease_ids[0] == 0) j->lease_ids[0] = lease_id;
  }
  j->start_time_ns = start_ns ? start_ns : now_ns;
  set_lease_ends(*j, j->start_time_ns + limit_ns(*j));
  transition(*j, JobState::Running, "", now_ns);
}

void Scheduler::run_finished(const RunEnd& e, int64_t now_ns) {
  Job* j = find(e.job);
  if (!j || j->terminal() || e.attempt != j->attempt) return;  // an older attempt's run
  if (j->state == JobState::Pending && !j->allocating) return;  // requeued already
  bool gang = j->shape.nodes > 1;
  bool rank0 = !gang || j->lease_ids.empty() || j->lease_ids[0] == e.lease_id;
  // A gang ends with its rank 0 (as a batch script ends a Slurm job), or
  // with the first rank that fails.
  if (gang && !rank0 && e.outcome == fb::RunOutcome::Succeeded) return;
  if (gang) release_leases(*j, e.lease_id, rank0 ? "rank 0 of the job ended" : "a rank of the job failed");
  if (j->allocating) set_allocating(*j, false);
  dequeue(*j);
  j->exit_code = e.exit_code;
  std::string sig = e.signal ? " (signal " + std::to_string(e.signal) + ")" : std::string();
  std::string detail = e.reason.empty() ? std::string() : ": " + e.reason;
  if (j->cancel_requested) {
    transition(*j, JobState::Cancelled, j->reason, now_ns, e.exit_code);
    return;
  }
  if (j->preempt_requested && e.outcome != fb::RunOutcome::Succeeded) {
    requeue_preempted(*j, now_ns);
    return;
  }
  switch (e.outcome) {
    case fb::RunOutcome::Succeeded:
      transition(*j, JobState::Succeeded, "exit code 0", now_ns, e.exit_code);
      return;
    case fb::RunOutcome::Failed:
      requeue_or_end(*j, JobState::Failed,
                     "attempt " + std::to_string(j->attempt) + " failed with exit code " + std::to_string(e.exit_code) +
                         sig + detail,
                     now_ns);
      return;
    case fb::RunOutcome::Cancelled:
      transition(*j, JobState::Cancelled, "cancelled on its node" + detail, now_ns, e.exit_code);
      return;
    case fb::RunOutcome::TimedOut:
      transition(*j, JobState::TimedOut,
                 "time limit of " + std::to_string(j->spec->time_limit_s) + " s reached" + detail, now_ns,
                 e.exit_code);
      return;
    case fb::RunOutcome::Lost:
      requeue_or_end(*j, JobState::NodeFailure, "run lost on its node" + detail, now_ns);
      return;
    case fb::RunOutcome::Preempted:
      requeue_preempted(*j, now_ns);
      return;
  }
}

void Scheduler::requeue_preempted(Job& j, int64_t now_ns) {
  // Preemption is not the job's fault: it does not spend a retry.
  ++stats_.requeued;
  ++stats_.preemptions;
  ++j.preemptions;
  ++preempted_by_account_[j.account];
  cluster_.remove_tentatives(j.id);
  if (j.allocating) set_allocating(j, false);
  std::string why = j.preempt_requested ? j.reason : std::string("preempted on its node");
  j.preempt_requested = false;
  transition(j, JobState::Preempted, why, now_ns);
  j.attempt += 1;
  j.lease_ids.clear();
  j.nodes.clear();
  j.gpu_indices.clear();
  j.start_time_ns = 0;
  j.reason = "requeued after preemption (" + std::to_string(j.preemptions) + " so far): " + why;
  transition(j, JobState::Pending, j.reason, now_ns);
  make_ready(j, now_ns);
}

void Scheduler::account_blocked(std::string_view account, bool is_blocked, bool stop_running, int64_t now_ns) {
  uint32_t a = account_index(account);
  blocked(a) = is_blocked;
  if (!is_blocked) {
    full_ = true;
    return;
  }
  if (!stop_running) return;
  std::vector<JobId> stop;
  for (auto& [id, j] : jobs_) {
    if (j.account == a && j.active()) stop.push_back(id);
  }
  for (JobId id : stop) {
    if (Job* j = find(id)) cancel_one(*j, "AccountBlocked: the account's budget is spent", now_ns);
  }
}

// --- broker replies --------------------------------------------------------

void Scheduler::allocated(JobId job_id, uint32_t attempt, const std::vector<uint64_t>& lease_ids, int64_t now_ns) {
  Job* j = find(job_id);
  if (!j || attempt != j->attempt || j->terminal() || j->cancel_requested) {
    if (j && attempt == j->attempt) cluster_.remove_tentatives(job_id);
    for (uint64_t l : lease_ids) {
      out_.releases.push_back(ReleaseRequest{l, job_id, true, "job " + std::to_string(job_id) + " no longer wants it",
                                             j ? j->spec->grace_s : 0});
    }
    return;
  }
  if (j->lease_ids.size() != j->shape.nodes) j->lease_ids.resize(j->shape.nodes, 0);
  for (size_t r = 0; r < lease_ids.size() && r < j->lease_ids.size(); ++r) {
    if (j->lease_ids[r] == 0) j->lease_ids[r] = lease_ids[r];
  }
  if (j->state == JobState::Pending && j->allocating) {
    set_allocating(*j, false);
    transition(*j, JobState::Scheduled, "lease " + std::to_string(lease_ids.empty() ? 0 : lease_ids[0]) +
                                            (j->nodes.empty() ? std::string() : " on " + j->nodes[0]),
               now_ns);
  } else {
    mark_dirty(*j);
  }
}

void Scheduler::allocate_failed(JobId job_id, uint32_t attempt, const Status& why, int64_t now_ns) {
  Job* j = find(job_id);
  if (!j || attempt != j->attempt || !j->allocating) return;
  ++stats_.conflicts;
  cluster_.remove_tentatives(job_id);
  set_allocating(*j, false);
  if (j->state != JobState::Pending) return;
  // The replica was behind the broker (Conflict) or the broker is away:
  // try again a little later rather than spin on it.
  int64_t delay_ms = why.code() == ErrorCode::Conflict ? 100 : 1000;
  j->retry_after_ns = now_ns + delay_ms * 1'000'000;
  j->wait = WaitReason::kBackoff;
  j->reason = why.message();
  j->nodes.clear();
  j->gpu_indices.clear();
  backoff_.push_back(job_id);
}

// --- the cycle ---------------------------------------------------------------

void Scheduler::tick(int64_t now_ns) {
  // Runs may have ended before their limits: look for earlier starts.
  recompute_reservations_ = true;
  if (policy_->refresh(now_ns)) full_ = true;
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

bool Scheduler::pool_reserved(uint16_t partition, uint16_t type) const {
  // Reserved, or tried in this cycle without finding a start.
  for (auto& [p, t] : pools_tried_) {
    if (p == partition && t == type) return true;
  }
  return false;
}

void Scheduler::add_reservation(Reservation r) {
  if (r.nodes.empty()) return;
  uint32_t idx = static_cast<uint32_t>(reservations_.size());
  for (uint32_t i = 0; i < r.nodes.size(); ++i) reserved_[r.nodes[i]] = {idx, i};
  if (Job* j = find(r.job); j && (j->expected_start_ns == 0 || r.start_ns < j->expected_start_ns)) {
    j->expected_start_ns = r.start_ns;
    with_expected_start_.push_back(j->id);
  }
  reservations_.push_back(std::move(r));
}

void Scheduler::begin_full_cycle() {
  kept_.clear();
  if (!recompute_reservations_) {
    for (auto& r : reservations_) {
      if (!r.for_preemption) kept_.push_back(std::move(r));
    }
  }
  recompute_reservations_ = false;
  reservations_.clear();
  reserved_.clear();
  pools_tried_.clear();
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
  // Hot path: a job that cannot start is passed over reading only its entry.
  if (!cluster_.may_fit(e.shape)) return Placed::kNoRoom;
  for (auto& f : failed_shapes_) {
    if (f == e.shape) return Placed::kNoRoom;
  }
  Job& j = *e.job;
  const NodeFilter* filter = nullptr;
  uint64_t limit_s = j.spec->time_limit_s;
  if (!reserved_.empty()) {
    candidate_end_ns_ = now_ns_ + limit_ns(j);
    candidate_job_ = j.id;
    filter = &reservation_filter_;
    if (!plans_.count(j.id)) {  // a preemptor's own reservation does not hold it back
      for (auto& [f, l] : failed_filtered_) {
        if (l == limit_s && f == e.shape) return Placed::kReserved;
      }
    }
  }
  if (!cluster_.place(e.shape, &picks_, filter)) {
    if (filter && cluster_.place(e.shape, &picks_)) {
      // It fits, but only on GPUs reserved for a job ahead of it.
      if (failed_filtered_.size() < 256 && !plans_.count(j.id)) failed_filtered_.emplace_back(e.shape, limit_s);
      picks_.clear();
      return Placed::kReserved;
    }
    if (failed_shapes_.size() < 256) failed_shapes_.push_back(e.shape);
    return Placed::kNoRoom;
  }
  if (any_quota_ && e.shape.gpu_type == 0 && e.shape.gpus > 0) {
    // "Any" type: the quota of the type it landed on.
    uint16_t t = cluster_.gpu_type_at(picks_[0].node, static_cast<uint32_t>(std::countr_zero(picks_[0].gpus)));
    if (over_quota(e, t)) return Placed::kQuota;
  }
  int64_t end = now_ns_ + limit_ns(j);
  if (!reservations_.empty()) {
    ++stats_.backfilled;
    // A job that outlives a reservation's start takes from what it keeps.
    for (auto& p : picks_) {
      auto it = reserved_.find(p.node);
      if (it == reserved_.end()) continue;
      Reservation& r = reservations_[it->second.first];
      if (r.job == j.id || end <= r.start_ns) continue;
      uint32_t conflict = static_cast<uint32_t>(std::popcount(p.gpus & cluster_.type_mask(p.node, r.type)));
      auto& avail = r.avail[it->second.second];
      avail -= std::min(avail, conflict);
    }
  }
  AllocateRequest req{j.id, j.attempt, {}};
  req.nodes.reserve(picks_.size());
  j.nodes.clear();
  j.gpu_indices.clear();
  for (auto& p : picks_) {
    Hold h{p.gpus, e.shape.cpus, e.shape.memory_mb, end};
    cluster_.add_tentative(j.id, p.node, h);
    auto gpus = gpu_list(p.gpus);
    j.nodes.push_back(cluster_.node_name(p.node));
    j.gpu_indices.insert(j.gpu_indices.end(), gpus.begin(), gpus.end());
    req.nodes.push_back(NodeGrant{cluster_.node_name(p.node), std::move(gpus), e.shape.cpus, e.shape.memory_mb});
  }
  out_.allocations.push_back(std::move(req));
  set_allocating(j, true);
  j.wait = WaitReason::kAllocating;
  ++stats_.placed;
  return Placed::kStarted;
}

bool Scheduler::offer(const QueueEntry& e) {
  ++stats_.tried;
  Job& j = *e.job;
  if (blocked_at(e.account)) return false;
  if (e.array_job_id && array_full(e.array_job_id)) return false;
  if (config_.backfill == Backfill::kOff) {
    for (auto& [p, b] : strict_blockers_) {
      if (p == e.shape.partition && b.id != e.id && policy_->before(b, e)) {
        j.wait = WaitReason::kPriority;
        return false;
      }
    }
  }
  if (any_quota_ && over_quota(e, e.shape.gpu_type)) {
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
      return false;
    }
    case Backfill::kEasy: {
      const Reservation* holder = nullptr;
      for (auto& r : reservations_) {
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
        return false;
      }
      if (reservations_.size() < config_.max_reservations && !pool_reserved(e.shape.partition, e.shape.gpu_type)) {
        reserve(e);
      }
      j.wait = placed == Placed::kReserved && j.expected_start_ns == 0 ? WaitReason::kPriority : WaitReason::kResources;
      return false;
    }
    case Backfill::kGreedy:
      break;
  }
  j.wait = placed == Placed::kReserved ? WaitReason::kPriority : WaitReason::kResources;
  return false;
}

bool Scheduler::reserve(const QueueEntry& e) {
  uint16_t p = e.shape.partition;
  uint32_t g = e.shape.gpus, k = e.shape.nodes;
  if (g == 0 || p >= cluster_.partition_count()) return false;
  pools_tried_.emplace_back(p, e.shape.gpu_type);
  // The reservation it had in the last cycle, if it still holds: its nodes
  // free of other reservations and still due to have room at its start.
  for (auto& kept : kept_) {
    if (kept.job != e.id || kept.start_ns < now_ns_) continue;
    bool holds = true;
    for (size_t i = 0; i < kept.nodes.size() && holds; ++i) {
      NodeIdx n = kept.nodes[i];
      holds = !reserved_.count(n) && cluster_.schedulable(n);
      if (holds) {
        kept.avail[i] = cluster_.free_at(n, kept.type, kept.start_ns);
        holds = kept.avail[i] >= kept.need[i];
      }
    }
    if (!holds) break;
    add_reservation(std::move(kept));
    kept.job = 0;
    return true;
  }
  // "Any" type: the type where it starts soonest.
  std::vector<uint16_t> types;
  if (e.shape.gpu_type) {
    types.push_back(e.shape.gpu_type);
  } else {
    const auto& lim = cluster_.limits(p);
    for (size_t t = 1; t < lim.max_gpus.size(); ++t) {
      if (lim.max_gpus[t] >= g) types.push_back(static_cast<uint16_t>(t));
    }
    if (types.empty()) types.push_back(0);
  }
  int64_t best_start = kNever;
  uint16_t best_type = 0;
  std::vector<NodeIdx> best_nodes;
  for (uint16_t t : types) {
    std::vector<NodeIdx> nodes = cluster_.pool_nodes(p, t);
    nodes.erase(std::remove_if(nodes.begin(), nodes.end(),
                               [&](NodeIdx n) {
                                 return reserved_.count(n) ||
                                        static_cast<uint32_t>(std::popcount(cluster_.type_mask(n, t))) < g;
                               }),
                nodes.end());
    if (nodes.size() < k) continue;
    // When each node can hold it, as running jobs end at their limits:
    // independent per node, so scored in parallel on large pools.
    std::vector<int64_t> at(nodes.size());
    auto score = [&](size_t i) { at[i] = cluster_.earliest_free(nodes[i], t, g, now_ns_, nullptr); };
    if (nodes.size() >= 2048) {
      tbb::parallel_for(tbb::blocked_range<size_t>(0, nodes.size(), 512), [&](const tbb::blocked_range<size_t>& r) {
        for (size_t i = r.begin(); i != r.end(); ++i) score(i);
      });
    } else {
      for (size_t i = 0; i < nodes.size(); ++i) score(i);
    }
    std::vector<uint32_t> order(nodes.size());
    for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
    auto earlier = [&](uint32_t a, uint32_t b) { return at[a] != at[b] ? at[a] < at[b] : nodes[a] < nodes[b]; };
    std::nth_element(order.begin(), order.begin() + (k - 1), order.end(), earlier);
    std::sort(order.begin(), order.begin() + k, earlier);
    int64_t start = at[order[k - 1]];
    if (start < best_start) {
      best_start = start;
      best_type = t;
      best_nodes.clear();
      for (uint32_t i = 0; i < k; ++i) best_nodes.push_back(nodes[order[i]]);
    }
  }
  if (best_start == kNever) return false;
  Reservation r;
  r.job = e.id;
  r.partition = p;
  r.pool_type = e.shape.gpu_type;
  r.type = best_type;
  r.start_ns = best_start;
  r.nodes = best_nodes;
  r.need.assign(k, g);
  for (NodeIdx n : best_nodes) r.avail.push_back(cluster_.free_at(n, best_type, best_start));
  ++stats_.reservations;
  add_reservation(std::move(r));
  return true;
}

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
    if (reserved_.count(n)) continue;
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

bool Scheduler::preemption_possible(const QueueEntry& e) {
  if (e.shape.gpus == 0 || preemptors_tried_ >= config_.max_preemptors_per_cycle) return false;
  bool tiers = config_.preemption.tiers && !active_tiers_.empty() && active_tiers_.begin()->first < e.tier;
  bool reclaim = can_reclaim(e);
  if (!tiers && !reclaim) return false;
  uint32_t who = reclaim ? e.account : UINT32_MAX;
  for (auto& f : failed_preempt_) {
    if (f.tier == e.tier && f.account == who && f.shape == e.shape) return false;
  }
  return true;
}

bool Scheduler::preempt_for(const QueueEntry& e) {
  ++preemptors_tried_;
  bool tiers = config_.preemption.tiers;
  bool reclaim = can_reclaim(e);
  uint16_t p = e.shape.partition, t = e.shape.gpu_type;
  uint32_t g = e.shape.gpus, k = e.shape.nodes;
  uint16_t reclaim_type = 0;
  if (reclaim) {
    const Limits& l = limits(e.account);
    if (t != 0 && l.guaranteed[t] > 0) reclaim_type = t;
  }
  int64_t young = now_ns_ - static_cast<int64_t>(config_.preemption.min_runtime_s) * 1'000'000'000;
  if (active_.size() <= allocating_count_) {
    // Every active job is still being allocated: nothing to preempt yet.
    if (failed_preempt_.size() < 64) failed_preempt_.push_back(FailedPreempt{e.shape, e.tier, reclaim ? e.account : UINT32_MAX});
    return false;
  }
  struct Candidate {
    NodeIdx node;
    uint32_t gpus;
    int64_t tier;
    int64_t start;
    JobId id;
  };
  std::vector<Candidate> cands;
  std::vector<JobId> eligible;
  for (Job* v : active_) {
    JobId id = v->id;
    // Cheapest tests first: this loop sees every active job.
    if (v->allocating || v->preempt_requested || v->cancel_requested || v->id == e.id) continue;
    if (v->state != JobState::Scheduled && v->state != JobState::Running) continue;
    bool by_tier = tiers && v->tier < e.tier;
    bool by_reclaim = !by_tier && reclaim && v->account != e.account && borrowing(v->account, reclaim_type);
    if (!by_tier && !by_reclaim) continue;
    if (!v->spec->preemptible) continue;
    if (config_.preemption.min_runtime_s && v->state == JobState::Running && v->start_time_ns > young) continue;
    for (size_t rank = 0; rank < v->nodes.size(); ++rank) {
      auto n = cluster_.find_node(v->nodes[rank]);
      if (!n || !cluster_.schedulable(*n) || !cluster_.in_partition(*n, p)) continue;
      uint64_t mask = 0;
      for (uint32_t i = 0; i < v->shape.gpus; ++i) {
        size_t at = rank * v->shape.gpus + i;
        if (at < v->gpu_indices.size() && v->gpu_indices[at] < 64) mask |= uint64_t{1} << v->gpu_indices[at];
      }
      mask &= cluster_.type_mask(*n, t);
      if (mask) cands.push_back(Candidate{*n, static_cast<uint32_t>(std::popcount(mask)), v->tier, v->start_time_ns, id});
    }
  }
  // Per node, the lowest victims first (lower tier, then the latest
  // started: it loses the least work), until the job fits there.
  std::sort(cands.begin(), cands.end(), [](const Candidate& a, const Candidate& b) {
    if (a.node != b.node) return a.node < b.node;
    if (a.tier != b.tier) return a.tier < b.tier;
    if (a.start != b.start) return a.start > b.start;
    return a.id > b.id;
  });
  struct Choice {
    uint32_t victim_gpus;
    int64_t top_tier;
    NodeIdx node;
    size_t first, count;
  };
  std::vector<Choice> choices;
  for (size_t i = 0; i < cands.size();) {
    size_t j = i;
    while (j < cands.size() && cands[j].node == cands[i].node) ++j;
    NodeIdx n = cands[i].node;
    uint32_t f = static_cast<uint32_t>(std::popcount(cluster_.free_mask(n) & cluster_.type_mask(n, t)));
    uint32_t taken = 0;
    int64_t top = INT64_MIN;
    size_t c = i;
    while (f < g && c < j) {
      f += cands[c].gpus;
      taken += cands[c].gpus;
      top = std::max(top, cands[c].tier);
      ++c;
    }
    if (f >= g) choices.push_back(Choice{taken, top, n, i, c - i});
    i = j;
  }
  // A gang also takes nodes that hold it already.
  if (k > 1) {
    for (NodeIdx n : cluster_.pool_nodes(p, t)) {
      if (std::popcount(cluster_.free_mask(n) & cluster_.type_mask(n, t)) >= static_cast<int>(g) &&
          cluster_.fits_cpu_memory(n, e.shape)) {
        choices.push_back(Choice{0, INT64_MIN, n, 0, 0});
      }
    }
  }
  if (choices.size() < k) {
    if (failed_preempt_.size() < 64) failed_preempt_.push_back(FailedPreempt{e.shape, e.tier, reclaim ? e.account : UINT32_MAX});
    return false;
  }
  std::sort(choices.begin(), choices.end(), [](const Choice& a, const Choice& b) {
    if (a.victim_gpus != b.victim_gpus) return a.victim_gpus < b.victim_gpus;
    if (a.top_tier != b.top_tier) return a.top_tier < b.top_tier;
    return a.node < b.node;
  });
  PreemptionPlan plan;
  plan.type = t;
  for (uint32_t c = 0; c < k; ++c) {
    plan.nodes.push_back(choices[c].node);
    for (size_t v = choices[c].first; v < choices[c].first + choices[c].count; ++v) {
      if (std::find(plan.victims.begin(), plan.victims.end(), cands[v].id) == plan.victims.end()) {
        plan.victims.push_back(cands[v].id);
      }
    }
  }
  if (plan.victims.empty()) return false;  // it fits without victims: CPUs or memory hold it back
  Job& preemptor = *e.job;
  for (JobId id : plan.victims) {
    Job& v = *find(id);
    bool by_tier = tiers && v.tier < e.tier;
    v.preempt_requested = true;
    v.preempted_for = e.id;
    v.reason = "preempted by job " + std::to_string(e.id) +
               (by_tier ? " of a higher tier (" + std::to_string(preemptor.tier) + " > " + std::to_string(v.tier) + ")"
                        : " (account '" + account_names_[e.account] + "' reclaims its guaranteed GPUs)");
    mark_dirty(v);
    release_leases(v, 0, v.reason);
    ++draining_for_[e.id];
    ++stats_.preempt_requests;
  }
  reserve_for_plan(e, plan);
  plans_[e.id] = std::move(plan);
  return true;
}

size_t Scheduler::cycle(int64_t now_ns) {
  if (!wants_cycle()) return 0;
  ++stats_.cycles;
  now_ns_ = now_ns;
  failed_shapes_.clear();
  failed_filtered_.clear();
  size_t placed = 0;
  // Nothing can start when no GPU is free and every waiting job wants one,
  // except by preemption.
  auto exhausted = [&] { return cluster_.free_gpus() == 0 && cpu_only_queued_ == 0; };
  bool reclaim = any_guarantee_ && config_.preemption.reclaim;
  // On a full cluster the first waiting job of each pool still gets its
  // reservation (and users its expected start).
  auto reservation_left = [&] {
    return config_.backfill == Backfill::kEasy && reservations_.size() < config_.max_reservations;
  };
  auto needs_reservation = [&](const QueueEntry& e) {
    return reservation_left() && e.shape.gpus > 0 && !pool_reserved(e.shape.partition, e.shape.gpu_type);
  };
  auto every_pool_reserved = [&] {
    for (auto& [pool, n] : queued_pools_) {
      if (!pool_reserved(pool.first, pool.second)) return false;
    }
    return true;
  };
  // Accounts under their guarantee with jobs waiting: the only ones that
  // may reclaim; their waiting jobs are counted down as they are seen.
  size_t reclaim_left = 0;
  std::vector<bool> reclaimer;
  if (reclaim) {
    reclaimer.assign(account_names_.size(), false);
    for (uint32_t a = 0; a < queued_by_account_.size(); ++a) {
      uint32_t n = queued_by_account_[a];
      if (n == 0) continue;
      const Limits& l = limits(a);
      bool under = false;
      for (size_t t = 0; t < l.guaranteed.size(); ++t) under = under || used(a, static_cast<uint16_t>(t)) < l.guaranteed[t];
      if (under) {
        reclaimer[a] = true;
        reclaim_left += n;
      }
    }
  }
  auto only_preemption_left = [&](const QueueEntry& e) {
    if (preemptors_tried_ >= config_.max_preemptors_per_cycle) return false;
    if (reclaim_left > 0 && e.account < reclaimer.size() && reclaimer[e.account]) {
      --reclaim_left;
      return true;
    }
    if (!config_.preemption.tiers || active_tiers_.empty()) return false;
    // In tier order, once the tiers are no higher than every running job's
    // nothing after can preempt.
    return !policy_->tier_first() || e.tier > active_tiers_.begin()->first;
  };
  auto nothing_more = [&](const QueueEntry& e) {
    bool may_preempt = preemptors_tried_ < config_.max_preemptors_per_cycle;
    if (may_preempt && reclaim_left > 0) return false;
    if (may_preempt && config_.preemption.tiers && !active_tiers_.empty() &&
        (!policy_->tier_first() || e.tier > active_tiers_.begin()->first)) {
      return false;
    }
    return !reservation_left() || every_pool_reserved();
  };
  if (full_) {
    ++stats_.full_cycles;
    begin_full_cycle();
    policy_->visit([&](const QueueEntry& e) {
      if (exhausted()) {
        // Only preemption, or a reservation for a pool that has none yet,
        // is left to do.
        if (!only_preemption_left(e) && !needs_reservation(e)) {
          return nothing_more(e) ? Visit::kStop : Visit::kNext;
        }
      }
      if (!offer(e)) return Visit::kNext;
      ++placed;
      left_queue(*e.job);
      return Visit::kTake;
    });
  } else {
    std::vector<QueueEntry> fresh;
    fresh.reserve(fresh_.size());
    for (JobId id : fresh_) {
      Job* j = find(id);
      if (j && j->queued) fresh.push_back(entry(*j));
    }
    std::sort(fresh.begin(), fresh.end(), [&](auto& a, auto& b) { return policy_->before(a, b); });
    fresh.erase(std::unique(fresh.begin(), fresh.end(), [](auto& a, auto& b) { return a.id == b.id; }), fresh.end());
    for (auto& e : fresh) {
      if (exhausted() && !only_preemption_left(e) && !needs_reservation(e)) continue;
      if (!offer(e)) continue;
      ++placed;
      dequeue(*e.job);
    }
  }
  full_ = rerun_full_;
  rerun_full_ = false;
  fresh_.clear();
  return placed;
}

// --- restore -----------------------------------------------------------------

void Scheduler::restore_job(Job job) {
  JobId id = job.id;
  next_id_ = std::max(next_id_, id + 1);
  if (job.array_job_id) next_id_ = std::max(next_id_, job.array_job_id + 1);
  jobs_[id] = std::move(job);
}

void Scheduler::finish_restore(int64_t now_ns) {
  // Derived state first, for every job, then queue what waits.
  for (auto& [id, j] : jobs_) {
    j.shape = shape_of(*j.spec, cluster_);
    j.tier = tier_for(*j.spec, j.shape);
    j.account = account_index(j.spec->account);
    j.dirty = false;
    j.queued = false;
    j.allocating = false;
    if (j.array_job_id) {
      auto& a = arrays_[j.array_job_id];
      a.tasks.push_back(id);
      if (a.tasks.size() == 1 && !j.spec->array.empty()) {
        auto parsed = parse_array(j.spec->array, UINT32_MAX);
        if (parsed) a.max_running = parsed->max_running;
      }
      if (j.active()) ++a.active;
    }
    if (!j.spec->client_token.empty()) {
      auto& r = tokens_[token_key(j.spec->user, j.spec->client_token)];
      r.array_job_id = j.array_job_id;
      r.job_ids.push_back(id);
    }
    if (!j.terminal()) {
      for (auto& d : j.spec->dependencies) dependents_[d->job_id].push_back(id);
      ++unfinished_by_user_[j.spec->user];
    } else {
      ended_.emplace(j.end_time_ns, id);
    }
  }
  // What active jobs hold, and when they are due to end.
  for (auto& [id, j] : jobs_) {
    if (!j.active()) continue;
    held_changed(j, true);
    int64_t start = j.state == JobState::Running && j.start_time_ns ? j.start_time_ns : now_ns;
    set_lease_ends(j, start + limit_ns(j));
  }
  // Fair-share history: every run in the jobs' histories, replayed in time
  // order into the policy (usage of runs whose GPU type is not recorded
  // counts as the job's type, or as any type).
  struct RunEdge {
    int64_t time;
    bool start;
    JobId job;
  };
  std::vector<RunEdge> edges;
  for (auto& [id, j] : jobs_) {
    for (size_t h = 0; h < j.history.size(); ++h) {
      if (j.history[h].to != JobState::Running) continue;
      edges.push_back(RunEdge{j.history[h].time_ns, true, id});
      if (h + 1 < j.history.size()) edges.push_back(RunEdge{j.history[h + 1].time_ns, false, id});
    }
  }
  std::sort(edges.begin(), edges.end(), [](const RunEdge& a, const RunEdge& b) {
    if (a.time != b.time) return a.time < b.time;
    if (a.start != b.start) return !a.start;  // ends first
    return a.job < b.job;
  });
  for (auto& edge : edges) {
    Job& j = jobs_[edge.job];
    if (!j.counted) {
      j.held_type = j.shape.gpu_type;
      j.held_gpus = j.shape.gpus * j.shape.nodes;
    }
    if (edge.start) {
      policy_->on_started(j, std::min(edge.time, now_ns));
    } else {
      policy_->on_ended(j, std::min(edge.time, now_ns));
    }
  }
  for (auto& [id, j] : jobs_) j.usage_open = j.state == JobState::Running;
  policy_->refresh(now_ns);
  for (auto& [id, j] : jobs_) {
    if (j.state == JobState::Pending) make_ready(j, now_ns);
  }
  resend_releases();
  full_ = true;
}

}  // namespace trainyard::scheduler

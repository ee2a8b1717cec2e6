#include "core/scheduler.h"

#include <algorithm>

#include "core/array_spec.h"
#include "core/validation.h"

namespace trainyard::scheduler {
namespace {

std::string state_name(JobState s) { return fb::EnumNameJobState(s); }

std::string token_key(const std::string& user, const std::string& token) { return user + '\0' + token; }

}  // namespace

Scheduler::Scheduler(SchedulerConfig config, std::unique_ptr<QueuePolicy> policy)
    : config_(std::move(config)),
      policy_(policy ? std::move(policy) : std::make_unique<PriorityFifoPolicy>()),
      cluster_(config_.partitions) {
  for (auto& t : config_.gpu_types) cluster_.intern_gpu_type(t);
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
  }
  return it->second;
}

std::vector<bool>::reference Scheduler::blocked(uint32_t account) { return blocked_[account]; }

bool Scheduler::account_is_blocked(std::string_view account) const {
  auto it = account_ids_.find(std::string(account));
  return it != account_ids_.end() && blocked_at(it->second);
}

std::string Scheduler::reason_of(const Job& j) const {
  if (j.terminal()) return j.reason;
  if (j.state == JobState::Held) return std::string(wait_reason_name(WaitReason::kHeld));
  if (j.state != JobState::Pending) return j.cancel_requested ? j.reason : std::string();
  if (j.queued && blocked_at(j.account)) return std::string(wait_reason_name(WaitReason::kAccountBlocked));
  if (j.queued && j.array_job_id && array_full(j.array_job_id)) {
    return std::string(wait_reason_name(WaitReason::kArrayLimit));
  }
  if (j.wait == WaitReason::kBackoff) return std::string(wait_reason_name(j.wait)) + ": " + j.reason;
  if (j.wait == WaitReason::kNone) return std::string(wait_reason_name(WaitReason::kResources));
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
  active_changed(j, was_active);
  if (is_terminal(to)) on_terminal(j, now_ns);
}

void Scheduler::set_allocating(Job& j, bool allocating) {
  bool was_active = j.active();
  j.allocating = allocating;
  active_changed(j, was_active);
}

void Scheduler::active_changed(Job& j, bool was_active) {
  bool now_active = j.active();
  if (was_active == now_active || j.array_job_id == 0) return;
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
  fresh_.push_back(j.id);
}

void Scheduler::dequeue(Job& j) {
  if (!j.queued) return;
  policy_->remove(entry(j));
  left_queue(j);
}

void Scheduler::left_queue(Job& j) {
  j.queued = false;
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
                             " does not exist");
    }
  }

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
  policy_->on_ended(j, now_ns);
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
    if (j.cancel_requested && !j.terminal()) release_leases(j, 0, j.reason);
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
  cluster_.add_lease(g.lease_id, g.node, g.gpus, g.cpus, g.memory_mb, g.job, g.attempt);
  if (auto n = cluster_.find_node(g.node)) cluster_.remove_tentative(g.job, *n);
  Job* j = find(g.job);
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
  if (!j || j->terminal() || !j->cancel_requested) return;
  if (std::find(j->lease_ids.begin(), j->lease_ids.end(), lease_id) == j->lease_ids.end()) return;
  release_leases(*j, lease_id, j->reason);
  transition(*j, JobState::Cancelled, j->reason, now_ns);
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
  transition(*j, JobState::Running, "", now_ns);
  policy_->on_started(*j, now_ns);
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
    case fb::RunOutcome::Preempted: {
      // Preemption is not the job's fault: it does not spend a retry.
      ++stats_.requeued;
      j->attempt += 1;
      j->lease_ids.clear();
      j->nodes.clear();
      j->gpu_indices.clear();
      transition(*j, JobState::Pending, "requeued after preemption" + detail, now_ns);
      make_ready(*j, now_ns);
      return;
    }
  }
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

bool Scheduler::try_place(const QueueEntry& e) {
  // Hot path: a job that cannot start is passed over reading only its entry.
  ++stats_.tried;
  if (blocked_at(e.account)) return false;
  if (e.array_job_id && array_full(e.array_job_id)) return false;
  if (!cluster_.may_fit(e.shape)) return false;
  for (auto& f : failed_shapes_) {
    if (f == e.shape) return false;
  }
  if (!cluster_.place(e.shape, &picks_)) {
    if (failed_shapes_.size() < 256) failed_shapes_.push_back(e.shape);
    return false;
  }
  Job& j = *e.job;
  AllocateRequest req{j.id, j.attempt, {}};
  req.nodes.reserve(picks_.size());
  j.nodes.clear();
  j.gpu_indices.clear();
  for (auto& p : picks_) {
    Hold h{p.gpus, e.shape.cpus, e.shape.memory_mb};
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
  return true;
}

size_t Scheduler::cycle(int64_t /*now_ns*/) {
  if (!wants_cycle()) return 0;
  ++stats_.cycles;
  failed_shapes_.clear();
  size_t placed = 0;
  // Nothing can start when no GPU is free and every waiting job wants one.
  auto exhausted = [&] { return cluster_.free_gpus() == 0 && cpu_only_queued_ == 0; };
  if (full_) {
    ++stats_.full_cycles;
    policy_->visit([&](const QueueEntry& e) {
      if (exhausted()) return Visit::kStop;
      if (!try_place(e)) return Visit::kNext;
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
      if (exhausted()) break;
      if (!try_place(e)) continue;
      ++placed;
      dequeue(*e.job);
    }
  }
  full_ = false;
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
    }
  }
  for (auto& [id, j] : jobs_) {
    if (j.state == JobState::Pending) make_ready(j, now_ns);
  }
  resend_releases();
  full_ = true;
}

}  // namespace trainyard::scheduler

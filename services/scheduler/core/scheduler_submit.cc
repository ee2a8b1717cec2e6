// Submissions and user actions: submit (arrays, dependencies, idempotency
// tokens), cancel, hold and release, and the dependency rules that decide
// when a waiting job may queue.
#include "core/scheduler.h"

#include <algorithm>

#include "core/array_spec.h"
#include "core/validation.h"

namespace trainyard::scheduler {

namespace {

std::string state_name(JobState s) { return fb::EnumNameJobState(s); }

}  // namespace

// --- submissions ---------------------------------------------------------

Result<SubmitResult> Scheduler::submit(const fb::JobSpecT& in, int64_t now_ns, bool held) {
  if (!in.client_token.empty()) {
    auto it = tokens_.find(token_key(in.user, in.client_token));
    if (it != tokens_.end()) {
      SubmitResult r = it->second;
      r.duplicate = true;
      return r;
    }
  }
  auto spec = std::make_shared<fb::JobSpecT>(in);
  ArraySpec array;
  if (auto s = check_submission(*spec, &array); !s) return s;

  SubmitResult result;
  Shape shape = shape_of(*spec, cluster_);
  std::vector<uint16_t> others = other_partitions(*spec, cluster_);
  uint32_t account = usage_.index(spec->account);
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
    j.other_partitions = others;
    j.tier = tier_for(*spec, shape);
    j.account = account;
    j.history.push_back(Transition{JobState::Pending, now_ns, "submitted"});
    result.job_ids.push_back(id);
    if (result.array_job_id) arrays_[result.array_job_id].tasks.push_back(id);
    out_.submitted.push_back(id);
    out_.changes.push_back(StateChange{id, JobState::Pending, JobState::Pending, "submitted", 1, 0});
    mark_dirty(j);
    for (auto& d : spec->dependencies) dependents_[d->job_id].push_back(id);
    if (held) {
      transition(j, JobState::Held, "held by user (submitted held)", now_ns);
    } else {
      make_ready(j, now_ns);
    }
  }
  if (!in.client_token.empty()) tokens_[token_key(in.user, in.client_token)] = result;
  count_unfinished(*spec, static_cast<int64_t>(result.job_ids.size()));
  return result;
}

Status Scheduler::check_submission(fb::JobSpecT& spec, ArraySpec* array) const {
  if (auto s = normalize_spec(spec, config_, cluster_); !s) return s;
  if (!spec.array.empty()) {
    auto parsed = parse_array(spec.array, config_.max_array_size);
    if (!parsed) return parsed.status();
    *array = std::move(parsed).value();
  }
  for (size_t i = 0; i < spec.dependencies.size(); ++i) {
    auto& d = spec.dependencies[i];
    if (!d) return Status::invalid("dependencies[" + std::to_string(i) + "]: empty");
    if (!jobs_.count(d->job_id) && !arrays_.count(d->job_id)) {
      return Status::invalid("dependencies[" + std::to_string(i) + "].job_id: job " + std::to_string(d->job_id) +
                             (was_purged(d->job_id) ? " was purged after the retention period" : " does not exist"));
    }
  }
  return check_user_limit(spec, spec.array.empty() ? 1 : array->indices.size());
}

Scheduler::DepVerdict Scheduler::dependency_status(const fb::DependencyT& d) const {
  auto never = [](std::string why) { return DepVerdict{DepStatus::kNever, std::move(why)}; };
  auto judge = [&](const Job& t) -> DepVerdict {
    if (!t.terminal()) return {DepStatus::kWaiting, {}};
    bool ok = t.state == JobState::Succeeded;
    switch (d.kind) {
      case fb::DependencyKind::AfterOk:
        if (ok) return {};
        return never("afterok:" + std::to_string(d.job_id) + " (job " + std::to_string(t.id) + " ended " +
                     state_name(t.state) + ")");
      case fb::DependencyKind::AfterNotOk:
        if (!ok) return {};
        return never("afternotok:" + std::to_string(d.job_id) + " (job " + std::to_string(t.id) + " succeeded)");
      case fb::DependencyKind::AfterAny:
        return {};
    }
    return {};
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
      return never("afterok:" + std::to_string(d.job_id) + " (" + not_ok_why + ")");
    }
    if (waiting) return {DepStatus::kWaiting, {}};
    if (d.kind == fb::DependencyKind::AfterNotOk && !any_not_ok) {
      return never("afternotok:" + std::to_string(d.job_id) + " (every task succeeded)");
    }
    return {};
  }
  const Job* t = job(d.job_id);
  if (!t) return never("job " + std::to_string(d.job_id) + " is unknown");
  return judge(*t);
}

Scheduler::DepVerdict Scheduler::dependencies_of(const Job& j) const {
  DepVerdict all;
  for (auto& d : j.spec->dependencies) {
    auto v = dependency_status(*d);
    if (v.status == DepStatus::kNever) return v;
    if (v.status == DepStatus::kWaiting) all.status = DepStatus::kWaiting;
  }
  return all;
}

void Scheduler::make_ready(Job& j, int64_t now_ns) {
  if (j.state != JobState::Pending) return;
  if (!j.spec->dependencies.empty()) {
    auto deps = dependencies_of(j);
    if (deps.status == DepStatus::kNever) {
      dequeue(j);
      transition(j, JobState::Cancelled, "DependencyNeverSatisfied: " + deps.why, now_ns);
      return;
    }
    if (deps.status == DepStatus::kWaiting) {
      dequeue(j);
      j.wait = WaitReason::kDependency;
      return;
    }
  }
  if (j.spec->begin_ns > now_ns) {
    dequeue(j);
    j.wait = WaitReason::kBeginTime;
    not_before_.emplace(j.spec->begin_ns, j.id);  // tick() offers it again then
    return;
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
    return Status::success();
  }
  Job* j = find(id);
  if (!j) return Status::not_found("job " + std::to_string(id) + " does not exist");
  if (j->terminal()) {
    return Status::failed_precondition("job " + std::to_string(id) + " already ended " + state_name(j->state));
  }
  cancel_one(*j, why, now_ns);
  return Status::success();
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
    out_.releases.push_back(ReleaseRequest{l, j.id, true, std::string(reason), j.spec->grace_s,
                                           j.preempt_requested ? fb::RevokeCause::Preemption : fb::RevokeCause::Other});
  }
}

void Scheduler::resend_releases() {
  for (auto& [id, j] : jobs_) {
    if ((j.cancel_requested || j.preempt_requested || j.requeue_requested) && !j.terminal()) {
      release_leases(j, 0, j.reason);
    }
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
    return Status::success();
  }
  Job* j = find(id);
  if (!j) return Status::not_found("job " + std::to_string(id) + " does not exist");
  if (j->state == JobState::Held) return Status::success();
  if (j->state != JobState::Pending) {
    return Status::failed_precondition("job " + std::to_string(id) + " is " + state_name(j->state) +
                                       "; only pending jobs can be held");
  }
  if (j->allocating) {
    return Status::failed_precondition("job " + std::to_string(id) + " is being started; cancel it instead");
  }
  dequeue(*j);
  transition(*j, JobState::Held, "held by user", now_ns);
  return Status::success();
}

Status Scheduler::requeue(JobId id, const std::string& reason) {
  auto requeue_one = [&](Job& j) -> Status {
    if (j.state != JobState::Scheduled && j.state != JobState::Running) {
      return Status::failed_precondition("job " + std::to_string(j.id) + " is " + state_name(j.state) +
                                         "; only a started job can be requeued");
    }
    if (j.cancel_requested || j.preempt_requested || j.requeue_requested) {
      return Status::failed_precondition("job " + std::to_string(j.id) + " is being stopped already");
    }
    j.requeue_requested = true;
    j.reason = reason;
    mark_dirty(j);
    release_leases(j, 0, reason);
    return Status::success();
  };
  if (auto a = arrays_.find(id); a != arrays_.end()) {
    for (JobId t : a->second.tasks) {
      Job* j = find(t);
      if (j && (j->state == JobState::Scheduled || j->state == JobState::Running)) (void)requeue_one(*j);
    }
    return Status::success();
  }
  Job* j = find(id);
  if (!j) return Status::not_found("job " + std::to_string(id) + " does not exist");
  return requeue_one(*j);
}

void Scheduler::requeue_by_user(Job& j, int64_t now_ns) {
  // Asked by its user: it spends no retry, as a preemption.
  ++stats_.requeued;
  cluster_.remove_tentatives(j.id);
  if (j.allocating) set_allocating(j, false);
  j.requeue_requested = false;
  begin_new_attempt(j);
  j.reason += " (attempt " + std::to_string(j.attempt) + ")";
  transition(j, JobState::Pending, j.reason, now_ns);
  make_ready(j, now_ns);
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
    return Status::success();
  }
  Job* j = find(id);
  if (!j) return Status::not_found("job " + std::to_string(id) + " does not exist");
  if (j->state == JobState::Pending) return Status::success();
  if (j->state != JobState::Held) {
    return Status::failed_precondition("job " + std::to_string(id) + " is " + state_name(j->state) +
                                       "; only held jobs can be released");
  }
  release_one(*j);
  return Status::success();
}

}  // namespace trainyard::scheduler

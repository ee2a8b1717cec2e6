// What the cluster tells the core: node, lease and run events, account
// blocks, and the broker's replies to Allocate; each moves jobs through
// their state machine (requeue, retries, preemption ends).
#include "core/scheduler.h"

#include <algorithm>
#include <string>
#include <utility>

namespace trainyard::scheduler {

// --- node and lease events -------------------------------------------------

void Scheduler::node_up(const fb::NodeInfoT& info) {
  cluster_.upsert(info);
  full_ = true;
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
  cluster_.add_lease(g.lease_id, g.node, g.gpus, g.cpus, g.memory_mb, g.job, g.attempt, end,
                     j && !j->terminal() && j->spec->exclusive);
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
  if (!j || j->terminal() || !(j->cancel_requested || j->preempt_requested || j->requeue_requested)) return;
  if (std::find(j->lease_ids.begin(), j->lease_ids.end(), lease_id) == j->lease_ids.end()) return;
  release_leases(*j, lease_id, j->reason);
  if (j->cancel_requested) {
    transition(*j, JobState::Cancelled, j->reason, now_ns);
  } else if (j->requeue_requested) {
    requeue_by_user(*j, now_ns);
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

void Scheduler::begin_new_attempt(Job& j) {
  j.attempt += 1;
  j.lease_ids.clear();
  j.ranks_ended.clear();
  j.run_partition.clear();
  j.nodes.clear();
  j.gpu_indices.clear();
  j.start_time_ns = 0;
}

void Scheduler::requeue_or_end(Job& j, JobState final_state, std::string reason, int64_t now_ns) {
  cluster_.remove_tentatives(j.id);
  j.preempt_requested = false;
  j.requeue_requested = false;
  if (j.attempt <= j.spec->max_retries) {
    ++stats_.requeued;
    uint32_t next = j.attempt + 1;
    std::string why = "requeued (attempt " + std::to_string(next) + " of " +
                      std::to_string(j.spec->max_retries + 1) + "): " + reason;
    j.reason = why;
    if (j.allocating) set_allocating(j, false);
    begin_new_attempt(j);
    transition(j, JobState::Pending, why, now_ns);
    make_ready(j, now_ns);
    return;
  }
  transition(j, final_state, reason, now_ns, j.exit_code);
}

// --- run events ------------------------------------------------------------

namespace {

// What a run's outcome does to its job when nothing else was asked of it
// (no cancel, preemption or requeue under way): the state it ends in, or
// the state it fails towards when no retry is left, and why.
struct RunVerdict {
  enum Step { kNone, kEnd, kRetryOrEnd, kRequeuePreempted } step = kNone;
  JobState state = JobState::Pending;
  std::string reason;
};

RunVerdict verdict_of(const Job& j, const RunEnd& e) {
  std::string sig = e.signal ? " (signal " + std::to_string(e.signal) + ")" : std::string();
  std::string detail = e.reason.empty() ? std::string() : ": " + e.reason;
  switch (e.outcome) {
    case fb::RunOutcome::Succeeded:
      return {RunVerdict::kEnd, JobState::Succeeded, "exit code 0"};
    case fb::RunOutcome::Failed:
      return {RunVerdict::kRetryOrEnd, JobState::Failed,
              "attempt " + std::to_string(j.attempt) + " failed with exit code " + std::to_string(e.exit_code) + sig +
                  detail};
    case fb::RunOutcome::Cancelled:
      return {RunVerdict::kEnd, JobState::Cancelled, "cancelled on its node" + detail};
    case fb::RunOutcome::TimedOut:
      return {RunVerdict::kEnd, JobState::TimedOut,
              "time limit of " + std::to_string(j.spec->time_limit_s) + " s reached" + detail};
    case fb::RunOutcome::Lost:
      return {RunVerdict::kRetryOrEnd, JobState::NodeFailure, "run lost on its node" + detail};
    case fb::RunOutcome::Preempted:
      // Why, as its node was told (a spot notice, a move to owned nodes).
      return {RunVerdict::kRequeuePreempted, JobState::Preempted, "preempted on its node" + detail};
  }
  return {};
}

}  // namespace

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
  // A gang ends when every node's run has ended with exit code 0 (as srun
  // on the batch node waits for every node's tasks), or with the first
  // node's run that does not: the other nodes' leases are released then.
  if (gang && e.outcome == fb::RunOutcome::Succeeded && !j->cancel_requested && !j->preempt_requested &&
      !j->requeue_requested) {
    if (std::find(j->ranks_ended.begin(), j->ranks_ended.end(), e.lease_id) == j->ranks_ended.end()) {
      j->ranks_ended.push_back(e.lease_id);
      mark_dirty(*j);
    }
    if (j->ranks_ended.size() < j->shape.nodes) return;
  }
  if (gang) {
    release_leases(*j, e.lease_id,
                   e.outcome == fb::RunOutcome::Succeeded ? "every node of the job ended its run"
                                                          : "a node's run of the job ended: " +
                                                                std::string(fb::EnumNameRunOutcome(e.outcome)));
  }
  if (j->allocating) set_allocating(*j, false);
  dequeue(*j);
  j->exit_code = e.exit_code;
  if (j->cancel_requested) {
    transition(*j, JobState::Cancelled, j->reason, now_ns, e.exit_code);
    return;
  }
  if (j->preempt_requested && e.outcome != fb::RunOutcome::Succeeded) {
    requeue_preempted(*j, now_ns);
    return;
  }
  if (j->requeue_requested && e.outcome != fb::RunOutcome::Succeeded) {
    requeue_by_user(*j, now_ns);
    return;
  }
  RunVerdict v = verdict_of(*j, e);
  switch (v.step) {
    case RunVerdict::kEnd:
      transition(*j, v.state, std::move(v.reason), now_ns, e.exit_code);
      return;
    case RunVerdict::kRetryOrEnd:
      requeue_or_end(*j, v.state, std::move(v.reason), now_ns);
      return;
    case RunVerdict::kRequeuePreempted:
      requeue_preempted(*j, now_ns, std::move(v.reason));
      return;
    case RunVerdict::kNone:
      return;
  }
}

void Scheduler::requeue_preempted(Job& j, int64_t now_ns, std::string on_node) {
  // Preemption is not the job's fault: it does not spend a retry.
  ++stats_.requeued;
  ++stats_.preemptions;
  ++j.preemptions;
  usage_.preempted(j.account);
  cluster_.remove_tentatives(j.id);
  if (j.allocating) set_allocating(j, false);
  std::string why = j.preempt_requested ? j.reason : on_node.empty() ? "preempted on its node" : std::move(on_node);
  j.preempt_requested = false;
  transition(j, JobState::Preempted, why, now_ns);
  begin_new_attempt(j);
  j.reason = "requeued after preemption (" + std::to_string(j.preemptions) + " so far): " + why;
  transition(j, JobState::Pending, j.reason, now_ns);
  make_ready(j, now_ns);
}

void Scheduler::account_blocked(std::string_view account, bool is_blocked, bool stop_running, int64_t now_ns) {
  uint32_t a = usage_.index(account);
  usage_.set_blocked(a, is_blocked);
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
  j->run_partition.clear();
  backoff_.push_back(job_id);
}

}  // namespace trainyard::scheduler

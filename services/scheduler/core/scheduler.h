// The scheduler's pure core: the job table and its state machine, arrays
// and dependencies, requeue and retries, and the placement cycle. Requests
// and events go in as calls (with the time they happen); what the shell
// must do comes out in Output: events to publish, jobs to store, requests
// for the broker. No sockets, no clock, no disk: tests and the trace
// simulator drive it directly.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/array_spec.h"
#include "core/backfill.h"
#include "core/cluster.h"
#include "core/config.h"
#include "core/job.h"
#include "core/policy.h"
#include "core/preemption.h"
#include "core/quotas.h"
#include "trainyard/fb/nodes_generated.h"
#include "trainyard/fb/runs_generated.h"
#include "util/status.h"

namespace trainyard::scheduler {

// job.state: one transition.
struct StateChange {
  JobId job = 0;
  JobState from = JobState::Pending;
  JobState to = JobState::Pending;
  std::string reason;
  uint32_t attempt = 1;
  int32_t exit_code = 0;
};

// One node of an Allocate.
struct NodeGrant {
  std::string node;
  std::vector<uint32_t> gpus;
  uint32_t cpus = 0;
  uint64_t memory_mb = 0;
};

// Ask the broker for a lease (a gang when nodes.size() > 1: all or none).
struct AllocateRequest {
  JobId job = 0;
  uint32_t attempt = 1;
  std::vector<NodeGrant> nodes;
  std::string partition;  // "-p a,b": the one it starts in (the run's SLURM_JOB_PARTITION); empty: its spec's
};

// Ask the broker to end a lease (kill: stop the run first, after grace_s).
struct ReleaseRequest {
  uint64_t lease_id = 0;
  JobId job = 0;
  bool kill = true;
  std::string reason;
  uint32_t grace_s = 0;
  fb::RevokeCause cause = fb::RevokeCause::Other;  // Preemption: the job is requeued, no retry spent
};

// What the shell must do after calls into the core, in order.
struct Output {
  std::vector<JobId> submitted;           // job.submitted
  std::vector<StateChange> changes;       // job.state
  std::vector<AllocateRequest> allocations;
  std::vector<ReleaseRequest> releases;
  std::vector<JobId> dirty;               // jobs whose stored record is stale
  std::vector<JobId> purged;              // ended jobs past retention: delete their records
  std::vector<JobId> purged_arrays;       // arrays whose last task was purged: delete their spec
  bool carried_usage_changed = false;     // Scheduler::carried_usage(): store it again
  bool empty() const {
    return submitted.empty() && changes.empty() && allocations.empty() && releases.empty() && dirty.empty() &&
           purged.empty() && purged_arrays.empty() && !carried_usage_changed;
  }
};

// The fair-share usage of jobs purged after retention: their records go,
// their usage must not (Slurm, too, keeps usage apart from job records).
// GPU-seconds as the fair-share policy counts them, decayed to as_of_ns.
struct CarriedUsage {
  double gpu_s = 0;
  int64_t as_of_ns = 0;
};
using CarriedUsageMap = std::map<std::pair<std::string, std::string>, CarriedUsage>;  // (account, GPU type)

struct SubmitResult {
  std::vector<JobId> job_ids;
  JobId array_job_id = 0;
  bool duplicate = false;  // a retry of a submission already taken (client_token)
};

// lease.<node>.granted, as the core needs it.
struct Grant {
  uint64_t lease_id = 0;
  JobId job = 0;
  uint32_t attempt = 0;
  std::string node;
  std::vector<uint32_t> gpus;
  uint32_t cpus = 0;
  uint64_t memory_mb = 0;
  uint32_t node_rank = 0;
};

// run.finished, as the core needs it.
struct RunEnd {
  JobId job = 0;
  uint32_t attempt = 0;
  uint64_t lease_id = 0;
  fb::RunOutcome outcome = fb::RunOutcome::Succeeded;
  int32_t exit_code = 0;
  int32_t signal = 0;
  std::string reason;
};

struct SchedulerStats {
  uint64_t cycles = 0;
  uint64_t full_cycles = 0;
  uint64_t tried = 0;       // placement attempts (jobs offered to the cluster)
  uint64_t placed = 0;
  uint64_t requeued = 0;
  uint64_t conflicts = 0;   // Allocates the broker refused or did not answer
  uint64_t backfilled = 0;  // started while a higher job held a reservation
  uint64_t reservations = 0;
  uint64_t preemptions = 0; // runs ended by preemption and requeued
  uint64_t preempt_requests = 0;
};

class Scheduler {
 public:
  explicit Scheduler(SchedulerConfig config, std::unique_ptr<QueuePolicy> policy = nullptr);

  // --- requests ---
  // Validates and takes a job (or one job per array index). The same
  // spec.client_token from the same user returns the first submission's ids.
  // `held`: every job starts Held (sbatch -H) and waits for release().
  Result<SubmitResult> submit(const fb::JobSpecT& spec, int64_t now_ns, bool held = false);
  // Pending/held: cancelled now. Scheduled/running: the broker is asked to
  // stop it; it ends Cancelled when the run ends. An array id acts on
  // every task.
  Status cancel(JobId id, std::string_view reason, int64_t now_ns);
  Status hold(JobId id, int64_t now_ns);
  Status release(JobId id, int64_t now_ns);
  // scontrol requeue: a started job's leases are released (its run stopped)
  // and, once its run has ended (requeue_by_user, at that time), it waits
  // again as a new attempt.
  Status requeue(JobId id, const std::string& reason);

  // --- queries ---
  const Job* job(JobId id) const;
  // Task ids of an array (nullptr: not an array id).
  const std::vector<JobId>* array_tasks(JobId array_job_id) const;
  // Calls fn for jobs in id order from `from` until it returns false.
  void for_each_job(JobId from, const std::function<bool(const Job&)>& fn) const;
  // Why the job waits (pending, held) or why it ended.
  std::string reason_of(const Job& job) const;
  double score(const Job& job) const { return policy_->score(job); }
  PriorityFactors factors(const Job& job) const { return policy_->factors(job); }
  // GPUs the account's active jobs hold (type 0: all types).
  uint32_t account_gpus(std::string_view account, std::string_view gpu_type = "") const;
  // Runs of the account's jobs ended by preemption.
  uint64_t account_preemptions(std::string_view account) const;
  const std::vector<std::string>& account_names() const { return usage_.names(); }
  // The reservations of the last full cycle.
  const std::vector<Reservation>& reservations() const { return book_.all(); }
  size_t job_count() const { return jobs_.size(); }
  // True when `id` was a job or an array that was purged after the
  // retention period (ids are handed out in order and only purging
  // removes one, so a missing id below the next one was purged).
  bool was_purged(JobId id) const;
  // Jobs of `user` that have not ended (what max_submit_jobs_per_user counts).
  uint32_t unfinished_jobs_of(const std::string& user) const;

  // --- retention (core/retention.cc) ---
  // Forgets jobs that ended at least config().job_retention_s before
  // `now_ns`, oldest first, at most max_purge_per_tick of them; their ids
  // (and arrays left without tasks) go to output(). Returns jobs purged.
  size_t purge_ended(int64_t now_ns);
  size_t queued() const { return policy_->size(); }

  // --- events (node.*, lease.*, run.*, account.*) ---
  void node_up(const fb::NodeInfoT& info);
  void node_down(std::string_view name);
  void node_drained(std::string_view name, bool drained);
  void lease_granted(const Grant& g, int64_t now_ns);
  void lease_released(uint64_t lease_id, JobId job, int64_t now_ns);
  void lease_lost(uint64_t lease_id, JobId job, uint32_t attempt, std::string_view reason, int64_t now_ns);
  void run_started(JobId job, uint32_t attempt, uint64_t lease_id, int64_t start_ns, int64_t now_ns);
  void run_finished(const RunEnd& end, int64_t now_ns);
  void account_blocked(std::string_view account, bool blocked, bool stop_running, int64_t now_ns);
  bool account_is_blocked(std::string_view account) const;

  // --- broker replies ---
  void allocated(JobId job, uint32_t attempt, const std::vector<uint64_t>& lease_ids, int64_t now_ns);
  void allocate_failed(JobId job, uint32_t attempt, const Status& why, int64_t now_ns);
  // Asks the broker again to stop every job whose cancel is under way (at
  // start, and after a ReleaseLease the broker did not take).
  void resend_releases();

  // --- the cycle ---
  // True when something changed that may let a job start.
  bool wants_cycle() const { return full_ || !fresh_.empty(); }
  // Places waiting jobs in policy order (best fit, gangs all or none) and
  // emits an Allocate for each. After a change that freed resources every
  // waiting job is tried; after submissions only, only the new ones (the
  // others did not fit and nothing was freed since). Returns jobs placed.
  size_t cycle(int64_t now_ns);
  // Periodic: jobs whose broker retry time has come wait again; the policy
  // may re-rank.
  void tick(int64_t now_ns);
  // The next cycle tries every waiting job.
  void force_full() { full_ = true; }

  // --- restore (from storage, before serving) ---
  void set_next_job_id(JobId next) { next_id_ = std::max(next_id_, next); }
  JobId next_job_id() const { return next_id_; }
  void restore_node(const fb::NodeInfoT& info, bool up, bool drained);
  void restore_lease(const Grant& g) {
    cluster_.add_lease(g.lease_id, g.node, g.gpus, g.cpus, g.memory_mb, g.job, g.attempt);
  }
  void restore_blocked(std::string_view account) { usage_.set_blocked(usage_.index(account), true); }
  void restore_job(Job job);
  void restore_carried_usage(std::string account, std::string gpu_type, CarriedUsage u) {
    carried_usage_[{std::move(account), std::move(gpu_type)}] = u;
  }
  const CarriedUsageMap& carried_usage() const { return carried_usage_; }
  // Rebuilds what is derived (queue, arrays, dependencies, tokens) and asks
  // again for the releases of cancels under way.
  void finish_restore(int64_t now_ns);

  // --- output ---
  Output& output() { return out_; }
  Output take_output();

  const Cluster& cluster() const { return cluster_; }
  Cluster& cluster() { return cluster_; }
  const SchedulerConfig& config() const { return config_; }
  const SchedulerStats& stats() const { return stats_; }
  const QueuePolicy& policy() const { return *policy_; }

 private:
  struct ArrayInfo {
    uint32_t max_running = 0;
    uint32_t active = 0;
    std::vector<JobId> tasks;
  };
  enum class DepStatus { kWaiting, kSatisfied, kNever };
  // A dependency's verdict; `why` says what made it kNever.
  struct DepVerdict {
    DepStatus status = DepStatus::kSatisfied;
    std::string why;
  };

  // The cycle under way: what is left to try once no GPU is free
  // (scheduler_cycle.cc).
  struct CyclePass;

  Job* find(JobId id);
  QueueEntry entry(Job& j) const {
    return QueueEntry{j.id, j.tier, j.submit_time_ns, j.account, j.array_job_id, j.shape, &j};
  }
  int64_t tier_for(const fb::JobSpecT& spec, const Shape& shape) const;
  // Normalizes and checks a submission (spec, array, dependencies, the
  // user's limit); `array` gets the parsed array.
  Status check_submission(fb::JobSpecT& spec, ArraySpec* array) const;
  void mark_dirty(Job& j);
  void transition(Job& j, JobState to, std::string reason, int64_t now_ns, int32_t exit_code = 0);
  void set_allocating(Job& j, bool allocating);
  void active_changed(Job& j, bool was_active);
  void enqueue(Job& j);
  void dequeue(Job& j);
  void left_queue(Job& j);  // bookkeeping of a job whose entry is gone
  // A job that is (again) Pending: queue it, or wait for its dependencies.
  void make_ready(Job& j, int64_t now_ns);
  DepVerdict dependency_status(const fb::DependencyT& d) const;
  DepVerdict dependencies_of(const Job& j) const;
  void on_terminal(Job& j, int64_t now_ns);
  void release_leases(Job& j, uint64_t except, std::string_view reason);
  void requeue_or_end(Job& j, JobState final_state, std::string reason, int64_t now_ns);
  void cancel_one(Job& j, std::string_view reason, int64_t now_ns);
  void place_rank(Job& j, uint32_t rank, const std::string& node, const std::vector<uint32_t>& gpus);
  enum class Placed { kStarted, kNoRoom, kReserved, kQuota };
  Placed try_place(const QueueEntry& e);
  Placed try_place_in(const QueueEntry& e, const Shape& shape);  // in shape.partition
  // Asks the broker for the picked nodes (picks_) and marks the job allocating.
  void start(Job& j, const Shape& shape, int64_t end_ns);
  bool array_full(JobId array_job_id) const;
  // The cycle's treatment of one waiting job: start it, or say why it
  // waits (and reserve, block or preempt for it). True when it starts.
  bool offer(const QueueEntry& e);
  // A job the cycle could not start waits: as the backfill mode says, it
  // holds back its partition, reserves its earliest start, or is passed over.
  void wait_by_backfill(const QueueEntry& e, Placed placed);
  void begin_full_cycle();
  void full_cycle(CyclePass& pass, size_t* placed);
  void fresh_cycle(CyclePass& pass, size_t* placed);
  int64_t limit_ns(const Job& j) const;
  void set_lease_ends(Job& j, int64_t end_ns);
  void held_changed(Job& j, bool now_active);
  // Quotas.
  bool over_quota(const QueueEntry& e, uint16_t type) const {
    return usage_.over_quota(e.account, uint64_t{e.shape.gpus} * e.shape.nodes, type);
  }
  // Backfill.
  bool reserve(const QueueEntry& e);
  void reserve_for_plan(const QueueEntry& e, const PreemptionPlan& plan);
  void add_reservation(Reservation r);
  // Restore (scheduler_restore.cc).
  void derive(JobId id, Job& j);
  void replay_fair_share(int64_t now_ns);
  // Preemption.
  PreemptionPlanner planner() const { return PreemptionPlanner(cluster_, usage_, config_.preemption); }
  bool preemption_possible(const QueueEntry& e) const;
  bool preempt_for(const QueueEntry& e);
  // on_node: why its node ended the run, when the scheduler did not ask.
  void requeue_preempted(Job& j, int64_t now_ns, std::string on_node = {});
  void requeue_by_user(Job& j, int64_t now_ns);
  // The next attempt: its number, and nothing of the last one's placement.
  void begin_new_attempt(Job& j);
  // Retention and per-user counts (core/retention.cc).
  Status check_user_limit(const fb::JobSpecT& spec, size_t new_jobs) const;
  // Unfinished jobs by user, and by user in a QOS: +n at submit, -1 at the end.
  void count_unfinished(const fb::JobSpecT& spec, int64_t delta);
  void job_ended(const Job& j);    // a job reached a terminal state
  void forget(Job& j, std::unordered_map<JobId, std::vector<JobId>>& gone_from_arrays);
  // Adds the runs of `j`, about to be purged, to carried_usage_.
  void carry_usage(const Job& j, int64_t now_ns);

  SchedulerConfig config_;
  std::unique_ptr<QueuePolicy> policy_;
  Cluster cluster_;
  std::map<JobId, Job> jobs_;
  JobId next_id_ = 1;
  std::unordered_map<JobId, ArrayInfo> arrays_;
  std::unordered_map<JobId, std::vector<JobId>> dependents_;  // target (job or array) -> waiting jobs
  std::unordered_map<std::string, SubmitResult> tokens_;      // user '\0' token -> ids
  AccountUsage usage_;  // accounts: usage, quotas, blocks
  std::vector<JobId> fresh_;    // queued since the last cycle
  std::vector<JobId> backoff_;  // waiting for their broker retry time
  std::multimap<int64_t, JobId> not_before_;  // waiting for their begin time (--begin), by that time
  bool full_ = true;
  size_t cpu_only_queued_ = 0;
  std::vector<NodePick> picks_;
  std::vector<Shape> failed_shapes_;
  std::vector<std::pair<Shape, uint64_t>> failed_filtered_;  // (shape, time limit) refused by reservations
  int64_t now_ns_ = 0;                                       // the time of the cycle under way
  // Backfill.
  Reservations book_;
  std::vector<JobId> with_expected_start_;
  std::vector<std::pair<uint16_t, QueueEntry>> strict_blockers_;  // (partition, first job that waits)
  bool rerun_full_ = false;
  // Preemption.
  std::vector<Job*> active_;  // jobs holding (or about to hold) resources (Job::active_slot)
  std::vector<std::pair<std::pair<uint16_t, uint16_t>, uint32_t>> queued_pools_;  // (partition, type) -> waiting jobs
  std::map<int64_t, uint32_t> active_tiers_;  // preemptible active jobs by tier
  std::unordered_map<JobId, PreemptionPlan> plans_;
  std::unordered_map<JobId, uint32_t> draining_for_;  // preemptor -> victims not yet ended
  uint32_t preemptors_tried_ = 0;
  size_t allocating_count_ = 0;  // active jobs whose Allocate is still out
  struct FailedPreempt {
    Shape shape;
    int64_t tier;
    uint32_t account;  // UINT32_MAX: by tier alone
  };
  std::vector<FailedPreempt> failed_preempt_;
  // Retention.
  std::set<std::pair<int64_t, JobId>> ended_;               // (end time, job) of ended jobs
  CarriedUsageMap carried_usage_;                           // usage of purged jobs
  std::unordered_map<std::string, uint32_t> unfinished_by_user_;  // by user, and by user '\0' QOS
  Output out_;
  SchedulerStats stats_;
};

}  // namespace trainyard::scheduler

// A job as the scheduler core keeps it: its (normalised) spec, its state and
// history, where it runs, and the derived values the cycle reads often.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "trainyard/fb/jobs_generated.h"
#include "trainyard/fb/rpc_generated.h"

namespace trainyard::scheduler {

using JobId = uint64_t;
using JobState = fb::JobState;

// What a job asks of each node, in the cluster's own indices: what the
// placement cycle compares, kept flat so it reads fast.
struct Shape {
  uint16_t partition = 0;
  uint16_t gpu_type = 0;  // 0: any type
  uint32_t gpus = 0;      // per node
  uint32_t nodes = 1;
  uint32_t cpus = 1;      // per node
  uint64_t memory_mb = 0; // per node
  uint32_t where = 0;     // where else it must or must not run (Cluster::Placement); 0: anywhere
  bool operator==(const Shape&) const = default;
};

// Why a pending job is not running yet (shown as its reason).
enum class WaitReason : uint8_t {
  kNone,
  kResources,       // no node has room for it now
  kDependency,      // waits for the jobs it depends on
  kHeld,            // held by its user
  kBeginTime,       // --begin: not before its begin time
  kArrayLimit,      // its array already runs "%N" tasks
  kAccountBlocked,  // its account's budget is spent
  kAllocating,      // placed; the broker has not answered yet
  kBackoff,         // the broker refused or did not answer; tried again soon
  kPriority,        // it would fit, but starting it would delay a higher job (backfill / strict order)
  kQuota,           // its account is at its GPU quota
  kPreempting,      // lower jobs are being preempted to make room for it
};
std::string_view wait_reason_name(WaitReason r);

struct Transition {
  JobState to;
  int64_t time_ns;
  std::string reason;
};

struct Job {
  JobId id = 0;
  std::shared_ptr<const fb::JobSpecT> spec;  // array tasks share one
  JobState state = JobState::Pending;
  std::string reason;          // why it ended (terminal), or the last requeue
  uint32_t attempt = 1;        // 1-based; +1 on every requeue
  JobId array_job_id = 0;
  int32_t array_index = -1;
  int64_t submit_time_ns = 0;
  int64_t start_time_ns = 0;
  int64_t end_time_ns = 0;
  int32_t exit_code = 0;
  std::vector<std::string> nodes;      // rank order
  std::vector<uint32_t> gpu_indices;   // every node's, in rank order
  std::vector<uint64_t> lease_ids;     // rank order; 0 while unknown
  std::vector<uint64_t> ranks_ended;   // a running gang: leases whose run ended with exit code 0
  std::string run_partition;           // started with -p a,b: the partition it got ("" otherwise)
  std::vector<Transition> history;
  bool cancel_requested = false;       // cancel sent to the broker; ends as Cancelled
  bool preempt_requested = false;      // preemption sent to the broker; requeued when the run ends
  bool requeue_requested = false;      // a user's requeue sent to the broker; requeued when the run ends
  uint32_t preemptions = 0;            // times preempted (and requeued)

  // Derived (rebuilt on restore, never stored).
  Shape shape;                         // in its first partition (or the one it started in)
  std::vector<uint16_t> other_partitions;  // "-p a,b": every partition it may start in (empty: one)
  uint32_t account = 0;                // index into the core's account names
  WaitReason wait = WaitReason::kNone;
  bool queued = false;                 // in the policy's queue
  bool allocating = false;             // an Allocate is out for this attempt
  bool dirty = false;                  // changed since the shell last stored it
  uint32_t unmet_dependencies = 0;
  int64_t retry_after_ns = 0;
  int64_t tier = 0;                    // partition tier, then spec priority (higher first)
  uint16_t held_type = 0;              // while active: the GPU type it holds (0: unknown / none)
  uint32_t held_gpus = 0;              // while active: GPUs it holds on all its nodes
  bool counted = false;                // held_* are counted in the account's usage
  uint32_t active_slot = 0;            // while counted: its place in the core's list of active jobs
  bool usage_open = false;             // the policy was told it started (and not yet that it ended)
  int64_t expected_start_ns = 0;       // pending with a backfill reservation: its reserved start
  JobId preempted_for = 0;             // while preempt_requested: the job it makes room for

  bool terminal() const;
  // Holds (or is about to hold) resources: counts against an array's "%N".
  bool active() const { return allocating || state == JobState::Scheduled || state == JobState::Running; }
};

bool is_terminal(JobState s);

// The tier of a job: its partition's tier first, then its own priority.
int64_t tier_of(int32_t partition_tier, int32_t priority);

// The key of a (user, client_token) pair in the core's token map.
inline std::string token_key(const std::string& user, const std::string& token) { return user + '\0' + token; }

// The JobRecord of `job` (queries and storage). `reason` is the text to
// show; `score` the policy's priority score.
void to_record(const Job& job, std::string_view reason, double score, fb::JobRecordT* out);
// A Job from a stored JobRecord; derived fields are left for the core.
Job from_record(const fb::JobRecordT& rec);

}  // namespace trainyard::scheduler

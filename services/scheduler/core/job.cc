#include "core/job.h"

#include <algorithm>

namespace trainyard::scheduler {

std::string_view wait_reason_name(WaitReason r) {
  switch (r) {
    case WaitReason::kNone: return "";
    case WaitReason::kResources: return "Resources";
    case WaitReason::kDependency: return "Dependency";
    case WaitReason::kHeld: return "JobHeldUser";
    case WaitReason::kBeginTime: return "BeginTime";
    case WaitReason::kArrayLimit: return "JobArrayTaskLimit";
    case WaitReason::kAccountBlocked: return "AccountBlocked: the account's budget is spent";
    case WaitReason::kAllocating: return "Allocating";
    case WaitReason::kBackoff: return "BrokerRetry";
    case WaitReason::kPriority: return "Priority";
    case WaitReason::kQuota: return "QuotaExceeded";
    case WaitReason::kPreempting: return "Preempting";
  }
  return "";
}

bool is_terminal(JobState s) {
  switch (s) {
    case JobState::Succeeded:
    case JobState::Failed:
    case JobState::Cancelled:
    case JobState::TimedOut:
    case JobState::NodeFailure:
      return true;
    default:
      return false;
  }
}

bool Job::terminal() const { return is_terminal(state); }

int64_t tier_of(int32_t partition_tier, int32_t priority) {
  int64_t pt = std::clamp<int64_t>(partition_tier, -(int64_t{1} << 28), int64_t{1} << 28);
  return pt * (int64_t{1} << 32) + priority;
}

void to_record(const Job& job, std::string_view reason, double score, fb::JobRecordT* out) {
  out->job_id = job.id;
  out->spec = job.spec ? std::make_unique<fb::JobSpecT>(*job.spec) : nullptr;
  out->state = job.state;
  out->reason = std::string(reason);
  out->nodes = job.nodes;
  out->gpu_indices = job.gpu_indices;
  out->exit_code = job.exit_code;
  out->attempt = job.attempt;
  out->array_job_id = job.array_job_id;
  out->array_index = job.array_index;
  out->submit_time_ns = job.submit_time_ns;
  out->start_time_ns = job.start_time_ns;
  out->end_time_ns = job.end_time_ns;
  out->history.clear();
  for (auto& t : job.history) {
    auto jt = std::make_unique<fb::JobTransitionT>();
    jt->to = t.to;
    jt->time_ns = t.time_ns;
    jt->reason = t.reason;
    out->history.push_back(std::move(jt));
  }
  out->lease_ids = job.lease_ids;
  out->ranks_ended = job.ranks_ended;
  out->partition = job.run_partition;
  out->priority_score = score;
  out->preemptions = job.preemptions;
}

Job from_record(const fb::JobRecordT& rec) {
  Job j;
  j.id = rec.job_id;
  j.spec = rec.spec ? std::make_shared<const fb::JobSpecT>(*rec.spec) : std::make_shared<const fb::JobSpecT>();
  j.state = rec.state;
  j.reason = rec.reason;
  j.nodes = rec.nodes;
  j.gpu_indices = rec.gpu_indices;
  j.exit_code = rec.exit_code;
  j.attempt = rec.attempt == 0 ? 1 : rec.attempt;
  j.array_job_id = rec.array_job_id;
  j.array_index = rec.array_index;
  j.submit_time_ns = rec.submit_time_ns;
  j.start_time_ns = rec.start_time_ns;
  j.end_time_ns = rec.end_time_ns;
  for (auto& t : rec.history) {
    if (t) j.history.push_back(Transition{t->to, t->time_ns, t->reason});
  }
  j.lease_ids = rec.lease_ids;
  j.ranks_ended = rec.ranks_ended;
  j.run_partition = rec.partition;
  j.preemptions = rec.preemptions;
  return j;
}

}  // namespace trainyard::scheduler

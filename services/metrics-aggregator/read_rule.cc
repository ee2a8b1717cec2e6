// Who may read a run's metrics: its owner, its account's coordinators and
// admins (and services), as for its command, environment and logs
// (deploy/README.md "Who may do what"). The owner comes from job.submitted.
#include "shell.h"
#include "core/comparison.h"
#include "security/authz.h"
#include "storage/keys.h"

namespace trainyard::metrics {

Status AggregatorShell::may_read(const rpc::Responder& r, uint64_t job) const {
  auto c = security::Caller::of(r.principal(), directory_->current());
  if (!c.enforced() || c.admin()) return Status::ok();
  auto v = store_.get(jobs_, storage::Key().u64(job));
  std::optional<RunInfo> info = v ? decode_run_info(*v) : std::nullopt;
  if (!info || info->user.empty()) return Status::ok();  // owner unknown: stored before owners were kept
  if (c.may_manage_job(info->user, info->account)) return Status::ok();
  return c.refuse("job owner", "read the metrics of job " + std::to_string(job) + " of user:" + info->user);
}

size_t AggregatorShell::keep_readable(const rpc::Responder& r, std::vector<uint64_t>& jobs) const {
  size_t before = jobs.size();
  std::erase_if(jobs, [&](uint64_t j) { return !may_read(r, j).is_ok(); });
  return before - jobs.size();
}

}  // namespace trainyard::metrics

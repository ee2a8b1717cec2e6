// Who may read a run's metrics: its owner, its account's coordinators and
// admins (and services), as for its command, environment and logs
// (deploy/README.md "Who may do what"). The owner comes from job.submitted.
#include "shell.h"
#include "core/comparison.h"
#include "security/authz.h"
#include "storage/keys.h"

namespace trainyard::metrics {

Result<std::optional<RunInfo>> AggregatorShell::run_info(uint64_t job) const {
  auto v = store_.get(jobs_, storage::Key().u64(job));
  if (!v) return v.status();
  return *v ? decode_run_info(**v) : std::nullopt;
}

Status AggregatorShell::may_read(const rpc::Responder& r, uint64_t job) const {
  auto info = run_info(job);
  if (!info) return info.status();
  return may_read(r, job, *info);
}

Status AggregatorShell::may_read(const rpc::Responder& r, uint64_t job, const std::optional<RunInfo>& info) const {
  auto c = security::Caller::of(r.principal(), directory_->current());
  if (!c.enforced() || c.admin()) return Status::success();
  if (!info || info->user.empty()) return Status::success();  // owner unknown: stored before owners were kept
  if (c.may_manage_job(info->user, info->account)) return Status::success();
  return c.refuse("job owner", "read the metrics of job " + std::to_string(job) + " of user:" + info->user);
}

size_t AggregatorShell::keep_readable(const rpc::Responder& r, std::vector<uint64_t>& jobs,
                                      std::vector<std::optional<RunInfo>>& infos) const {
  size_t kept = 0;
  for (size_t i = 0; i < jobs.size(); ++i) {
    if (!may_read(r, jobs[i], infos[i]).ok()) continue;
    if (kept != i) {
      jobs[kept] = jobs[i];
      infos[kept] = std::move(infos[i]);
    }
    ++kept;
  }
  size_t dropped = jobs.size() - kept;
  jobs.resize(kept);
  infos.resize(kept);
  return dropped;
}

}  // namespace trainyard::metrics

// scancel: cancels the jobs its IDs or filters name.
#include <iostream>

#include "slurm_shim.h"

namespace trainyard::ty::slurm {

namespace {

// The jobs the IDs name, each looked up on its own (a bad one is reported and
// skipped, as scancel does); or without IDs every job not yet ended.
Result<std::vector<fb::JobRecordT>> scancel_targets(client::Client& c, const std::vector<std::string>& ids, int* rc) {
  std::vector<fb::JobRecordT> jobs;
  if (ids.empty()) {
    client::JobFilter f;
    f.limit = 1'000'000;
    f.states = {fb::JobState::Pending, fb::JobState::Held, fb::JobState::Scheduled, fb::JobState::Running};
    return c.list(f);
  }
  for (auto& id : ids) {
    auto r = jobs_of_ids(c, {id});
    if (!r) {
      std::cerr << "scancel: error: Kill job error on job id " << id << ": " << r.status().message() << "\n";
      if (r.status().code() == ErrorCode::Unavailable) return r.status();
      *rc = kSlurmError;
      continue;
    }
    for (auto& j : *r) jobs.push_back(std::move(j));
  }
  return jobs;
}

// Cancels each job `m` keeps; returns the exit code.
int cancel_matching(client::Client& c, const std::vector<fb::JobRecordT>& jobs, const Match& m, const Parsed& p, int rc) {
  for (auto& j : jobs) {
    // As scancel: ended jobs (and ended tasks of a named array) are left alone.
    if (client::is_terminal(j.state) || !m(j)) continue;
    auto s = c.cancel(j.job_id, "scancel");
    if (s) {
      if (p.has("verbose")) std::cerr << "scancel: Terminating job " << client::job_name_of(j) << "\n";
      continue;
    }
    if (s.code() == ErrorCode::FailedPrecondition) continue;  // it ended meanwhile
    if (!p.has("quiet")) {
      std::cerr << "scancel: error: Kill job error on job id " << client::job_name_of(j) << ": " << s.message() << "\n";
    }
    rc = s.code() == ErrorCode::Unavailable ? kExitUnavailable : kSlurmError;
  }
  return rc;
}

}  // namespace

int scancel(Context& ctx, const std::vector<std::string>& args) {
  auto p = parse_options(args, {{"user", 'u', true}, {"name", 'n', true}, {"state", 't', true},
                                {"partition", 'p', true}, {"account", 'A', true}, {"me", 0, false},
                                {"quiet", 'Q', false}, {"verbose", 'v', false}, {"help", 0, false},
                                {"signal", 's', true}, {"batch", 'b', false}, {"full", 'f', false},
                                {"interactive", 'i', false}});
  if (!p) return usage_error("scancel", p.status());
  if (p->has("help")) {
    std::cout << "Usage: scancel [-u USER] [-n NAME] [-t STATE] [-p PART] [-A ACCOUNT] [--me] [ID|ID_INDEX...]   "
                 "(Trainyard's scancel; docs/slurm.md)\n";
    return kExitOk;
  }
  if (p->has("signal")) {
    return usage_error("scancel", Status::invalid("--signal is not supported: Trainyard stops jobs with SIGTERM, their "
                                                   "grace period, then SIGKILL"));
  }
  if (p->has("interactive")) return usage_error("scancel", Status::invalid("--interactive is not supported"));
  auto m = match_of(*p, {"user", "partition", "account", "name", "state"});
  if (!m) return usage_error("scancel", m.status());
  if (p->has("me")) m->users.insert(ctx.user);
  std::vector<std::string> ids;
  for (auto& a : p->positionals) {
    for (auto& id : split_list(a)) ids.push_back(id);
  }
  bool filtered = !m->users.empty() || !m->names.empty() || !m->partitions.empty() || !m->accounts.empty() ||
                  !m->states.empty();
  if (ids.empty() && !filtered) {
    return usage_error("scancel", Status::invalid("no job identification provided (give job ids, or -u/-n/-t/-p/-A)"));
  }
  auto* c = ctx.client();
  if (!c) return kExitUsage;
  int rc = kExitOk;
  auto jobs = scancel_targets(*c, ids, &rc);
  if (!jobs && !ids.empty()) return kExitUnavailable;  // already reported, as scancel does
  if (!jobs) return service_error("scancel", jobs.status());
  return cancel_matching(*c, *jobs, *m, *p, rc);
}

}  // namespace trainyard::ty::slurm

// QueryJobs: the jobs that match a filter, in id order, one page at a time.
// A page holds at most the byte budget (the caller's page_bytes, at most
// scheduler.query_page_bytes) and kMaxPageJobs jobs; a truncated page says
// where the next one starts. GetJob's "purged" answer lives here too.
#include <algorithm>

#include "job_store.h"
#include "shell.h"
#include "wire/fb_str.h"

namespace trainyard::scheduler {
namespace {

constexpr uint32_t kMaxPageJobs = 100'000;

// As Slurm's PrivateData=jobs: everyone sees a job's queue line; its
// command, environment and files only its owner, its account's
// coordinators and admins.
bool sees_details(const security::Caller& c, const Job& j) {
  return !c.enforced() || !j.spec || c.may_manage_job(j.spec->user, j.spec->account);
}

}  // namespace

void SchedulerShell::on_query(const fb::Request& req, rpc::Responder& r) {
  auto* q = req.body_as_QueryJobs();
  std::vector<fb::JobState> states;
  if (q->states()) {
    for (auto s : *q->states()) states.push_back(static_cast<fb::JobState>(s));
  }
  std::string user = str(q->user()), account = str(q->account()), experiment = str(q->experiment());
  JobId array = q->array_job_id();
  uint32_t limit = std::min(q->limit() == 0 ? 1000 : q->limit(), kMaxPageJobs);
  uint64_t budget = options_.query_page_bytes;
  if (q->page_bytes() != 0) budget = std::min<uint64_t>(budget, q->page_bytes());
  JobId after = q->after_job_id();
  auto who = caller(r);
  auto match = [&](const Job& j) {
    if (!states.empty() && std::find(states.begin(), states.end(), j.state) == states.end()) return false;
    if (!user.empty() && j.spec->user != user) return false;
    if (!account.empty() && j.spec->account != account) return false;
    if (!experiment.empty() && j.spec->experiment != experiment) return false;
    if (array && j.array_job_id != array) return false;
    return true;
  };
  auto& b = r.builder();
  std::vector<flatbuffers::Offset<fb::JobRecord>> out;
  uint64_t bytes = 64;
  JobId last = 0;
  bool truncated = false;
  // False when the page is full (after `j`, which is not taken).
  auto add = [&](const Job& j) {
    if (j.id <= after || !match(j)) return true;
    uint64_t size = record_bytes(j);
    if (out.size() >= limit || (!out.empty() && bytes + size > budget)) {
      truncated = true;
      return false;
    }
    out.push_back(build_record(b, j, reason_for(j), factors_of(j), true, sees_details(who, j)));
    bytes += size;
    last = j.id;
    return true;
  };
  if (array) {
    if (auto* tasks = core_.array_tasks(array)) {
      for (JobId t : *tasks) {
        const Job* j = core_.job(t);
        if (j && !add(*j)) break;
      }
    }
  } else {
    core_.for_each_job(after + 1, add);
  }
  auto jobs = b.CreateVector(out);
  r.ok(fb::ReplyBody::JobList, fb::CreateJobList(b, jobs, truncated ? last : 0, truncated).Union());
}

void SchedulerShell::on_get(const fb::Request& req, rpc::Responder& r) {
  JobId id = req.body_as_GetJob()->job_id();
  const Job* j = core_.job(id);
  if (!j) {
    std::string n = std::to_string(id);
    if (core_.array_tasks(id)) {
      r.error(Status::not_found("job " + n + " is a job array; name one of its tasks as " + n +
                                "_INDEX (ty status, wait, cancel, hold and release take " + n + " for all of them)"));
    } else if (core_.was_purged(id)) {
      r.error(Status::not_found("job " + n + " was purged after the retention period (ended jobs are kept " +
                                retention_text(options_.core.job_retention_s) + ")"));
    } else {
      r.error(Status::not_found("job " + n + " does not exist"));
    }
    return;
  }
  auto& b = r.builder();
  auto rec = build_record(b, *j, reason_for(*j), factors_of(*j), true, sees_details(caller(r), *j));
  r.ok(fb::ReplyBody::JobRecord, rec.Union());
}

std::string retention_text(uint64_t s) {
  auto plural = [](uint64_t n, const char* unit) { return std::to_string(n) + " " + unit + (n == 1 ? "" : "s"); };
  if (s % 86400 == 0) return plural(s / 86400, "day");
  if (s % 3600 == 0) return plural(s / 3600, "hour");
  if (s % 60 == 0) return plural(s / 60, "minute");
  return plural(s, "second");
}

}  // namespace trainyard::scheduler

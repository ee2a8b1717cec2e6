// The scheduler's requests from users: SubmitJob, CancelJob, HoldJob,
// ReleaseJob, RequeueJob and Ping, and who may make them (GetJob and
// QueryJobs are in query.cc).
#include <string>
#include <vector>

#include "shell.h"
#include "wire/fb_str.h"

namespace trainyard::scheduler {

// --- requests ----------------------------------------------------------------

void SchedulerShell::on_submit(const fb::Request& req, rpc::Responder& r) {
  auto* body = req.body_as_SubmitJob();
  if (!body || !body->spec()) {
    r.error(Status::invalid("spec: missing; SubmitJob needs a job spec"));
    return;
  }
  fb::JobSpecT spec;
  body->spec()->UnPackTo(&spec);
  // A user submits as themselves (as sbatch takes the uid, not a claim),
  // and only to accounts that list them.
  auto who = caller(r);
  if (who.enforced() && who.user()) spec.user = std::string(who.name());
  // A job that names no account goes to the user's default account.
  if (spec.account.empty()) spec.account = directory_->current().default_account(spec.user);
  if (who.enforced() && !who.member_of(spec.account)) {
    r.error(who.refuse("account membership", "submit to account " + spec.account));
    return;
  }
  auto res = core_.submit(spec, clock_.now_ns(), body->hold());
  if (!res) {
    r.error(res.status());
    return;
  }
  // The reply leaves after this iteration's commit: an ack means durable.
  auto& b = r.builder();
  auto ids = b.CreateVector(res->job_ids);
  r.ok(fb::ReplyBody::Submitted, fb::CreateSubmitted(b, ids, res->array_job_id).Union());
}

Status SchedulerShell::may_manage(rpc::Responder& r, JobId id, std::string_view what) const {
  auto c = caller(r);
  if (!c.enforced()) return Status::success();
  std::vector<JobId> ids{id};
  if (auto* tasks = core_.array_tasks(id)) ids = *tasks;
  std::string others;  // jobs of other users the caller acts on (as admin or coordinator)
  for (JobId t : ids) {
    const Job* j = core_.job(t);
    if (!j || !j->spec || (c.user() && c.name() == j->spec->user)) continue;
    if (!c.may_manage_job(j->spec->user, j->spec->account)) {
      return c.refuse("job owner", std::string(what) + " job " + std::to_string(t) + " of user:" + j->spec->user);
    }
    if (c.user() && others.empty()) others = "job " + std::to_string(t) + " of user:" + j->spec->user;
  }
  if (!others.empty()) r.audit(std::string(what) + " " + others + (ids.size() > 1 ? " (array " + std::to_string(id) + ")" : ""));
  return Status::success();
}

void SchedulerShell::on_cancel(const fb::Request& req, rpc::Responder& r) {
  auto* body = req.body_as_CancelJob();
  if (auto s = may_manage(r, body->job_id(), "cancel"); !s) return r.error(s);
  auto s = core_.cancel(body->job_id(), str(body->reason()), clock_.now_ns());
  s ? r.ok(fb::ReplyBody::Empty, fb::CreateEmpty(r.builder()).Union()) : r.error(s);
}

void SchedulerShell::on_hold(const fb::Request& req, rpc::Responder& r) {
  if (auto s = may_manage(r, req.body_as_HoldJob()->job_id(), "hold"); !s) return r.error(s);
  auto s = core_.hold(req.body_as_HoldJob()->job_id(), clock_.now_ns());
  s ? r.ok(fb::ReplyBody::Empty, fb::CreateEmpty(r.builder()).Union()) : r.error(s);
}

void SchedulerShell::on_release(const fb::Request& req, rpc::Responder& r) {
  if (auto s = may_manage(r, req.body_as_ReleaseJob()->job_id(), "release"); !s) return r.error(s);
  auto s = core_.release(req.body_as_ReleaseJob()->job_id(), clock_.now_ns());
  s ? r.ok(fb::ReplyBody::Empty, fb::CreateEmpty(r.builder()).Union()) : r.error(s);
}

void SchedulerShell::on_requeue(const fb::Request& req, rpc::Responder& r) {
  JobId id = req.body_as_RequeueJob()->job_id();
  if (auto s = may_manage(r, id, "requeue"); !s) return r.error(s);
  auto s = core_.requeue(id, "requeued by " + std::string(caller(r).name().empty() ? "user" : caller(r).name()));
  s ? r.ok(fb::ReplyBody::Empty, fb::CreateEmpty(r.builder()).Union()) : r.error(s);
}

PriorityFactors SchedulerShell::factors_of(const Job& j) const {
  // Factors mean something while a job waits; after that only its tier.
  if (j.state == JobState::Pending || j.state == JobState::Held) return core_.factors(j);
  PriorityFactors f;
  f.tier = j.tier;
  f.priority = core_.score(j);
  return f;
}

void SchedulerShell::on_ping(const fb::Request&, rpc::Responder& r) {
  auto& b = r.builder();
  r.ok(fb::ReplyBody::Pong, fb::CreatePongDirect(b, "scheduler", options_.instance.c_str(), "0.1.0").Union());
}

}  // namespace trainyard::scheduler

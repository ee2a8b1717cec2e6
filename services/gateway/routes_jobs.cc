// Routes of /api/v1/jobs: list, one job, submit, cancel/hold/release, and a
// job's metrics and series. (Logs are in sse.cc.)
#include "api.h"

#include <algorithm>
#include <random>

#include <httplib.h>

#include "core/codec.h"
#include "core/job_spec_json.h"
#include "auth.h"
#include "http_util.h"
#include "util/clock.h"

namespace trainyard::gateway {

using httplib::Request;
using httplib::Response;

namespace {

// The optional body of cancel/hold/release: {"reason": "..."}.
std::optional<ApiError> action_reason(const Request& req, std::string* reason) {
  std::optional<ApiError> err;
  auto body = json_body(req, true, err);
  if (!body) return bad_request("", "the body must be empty or JSON like {\"reason\": \"...\"}");
  for (auto& [key, value] : body->items()) {
    if (key != "reason") return bad_request(key, "unknown field '" + key + "': the body may only hold \"reason\"");
    if (value.is_null()) continue;
    if (!value.is_string()) return bad_request("reason", "field 'reason' must be a string");
    if (value.get_ref<const std::string&>().size() > 1024) {
      return bad_request("reason", "field 'reason' must be at most 1024 bytes");
    }
    *reason = value.get<std::string>();
  }
  return std::nullopt;
}

}  // namespace

void Api::jobs(const Request& req, Response& res) {
  std::optional<ApiError> err;
  std::vector<fb::JobState> states;
  for (const auto& s : split(param(req, "state"), ',')) {
    auto st = parse_state(s);
    if (!st) {
      return send_error(res, bad_request("state", "unknown job state '" + s +
                                                      "': use Pending, Held, Scheduled, Running, Succeeded, Failed, "
                                                      "Cancelled, TimedOut, NodeFailure or Preempted"));
    }
    states.push_back(*st);
  }
  auto limit = static_cast<uint32_t>(uint_param(req, "limit", 500, 1, kAllJobs, err));
  auto array = uint_param(req, "array", 0, 0, UINT64_MAX, err);
  if (err) return send_error(res, *err);
  auto r = query_jobs(backends_, states, param(req, "user"), param(req, "account"), param(req, "experiment"), array,
                      limit);
  if (!r) return send_failure(res, r.status(), Service::kScheduler);
  Json list = Json::array();
  if (auto* l = r->body<fb::JobList>(); l && l->jobs()) {
    for (const auto* j : *l->jobs()) list.push_back(job_json(*j, JobView::kSummary));
  }
  std::sort(list.begin(), list.end(),
            [](const Json& a, const Json& b) { return a["job_id"].get<uint64_t>() > b["job_id"].get<uint64_t>(); });
  send_json(res, 200, {{"jobs", list}, {"count", list.size()}});
}

void Api::job(const Request& req, Response& res) {
  auto r = get_job(backends_, id_of(req));
  if (!r) return send_failure(res, r.status(), Service::kScheduler);
  send_json(res, 200, job_json(expect<fb::JobRecord>(*r), JobView::kFull));
}

void Api::submit(const Request& req, Response& res) {
  const Identity* who = Auth::current();
  if (!who || who->user.empty()) return send_error(res, ApiError{401, "who is submitting? Log in first", "", "", "Unauthenticated"});
  const std::string& user = who->user;
  std::optional<ApiError> err;
  auto body = json_body(req, false, err);
  if (!body) return send_error(res, *err);
  bool admin = who->admin;
  fb::JobSpecT spec;
  if (auto e = parse_job_spec(*body, user, admin, &spec)) return send_error(res, *e);
  if (spec.client_token.empty()) {
    // The rpc client retries on a timeout: a token makes that retry return
    // the same job ids instead of submitting twice.
    std::random_device rd;
    spec.client_token = "gw-" + std::to_string(rd()) + std::to_string(rd()) + "-" + std::to_string(SystemClock().now_ns());
  }
  auto r = backends_.call_as(Service::kScheduler, "user:" + user, fb::RequestBody::SubmitJob,
                             [&](flatbuffers::FlatBufferBuilder& fbb) {
                               auto s = fb::JobSpec::Pack(fbb, &spec);
                               return fb::CreateSubmitJob(fbb, s).Union();
                             });
  if (!r) return send_failure(res, r.status(), Service::kScheduler);
  auto* sub = r->body<fb::Submitted>();
  Json ids = Json::array();
  if (sub && sub->job_ids()) {
    for (auto id : *sub->job_ids()) ids.push_back(id);
  }
  res.set_header("Location", ids.empty() ? "/api/v1/jobs" : "/api/v1/jobs/" + ids[0].dump());
  send_json(res, 201, {{"job_ids", ids}, {"array_job_id", sub ? sub->array_job_id() : 0}, {"user", spec.user}});
}

void Api::job_action(const Request& req, Response& res, const std::string& action) {
  const Identity* who = Auth::current();
  if (!who || who->user.empty()) return send_error(res, ApiError{401, "who is asking? Log in first", "", "", "Unauthenticated"});
  const std::string& user = who->user;
  uint64_t id = id_of(req);
  std::string reason = "cancelled by " + user + " through the gateway";
  if (auto e = action_reason(req, &reason)) return send_error(res, *e);
  if (!who->admin) {
    // Users act on their own jobs (the scheduler checks too, under CURVE).
    auto j = get_job(backends_, id);
    if (!j) return send_failure(res, j.status(), Service::kScheduler);
    auto* spec = expect<fb::JobRecord>(*j).spec();
    std::string owner = spec && spec->user() ? spec->user()->str() : "";
    if (!owner.empty() && owner != user) {
      return send_error(res, ApiError{403, "job " + std::to_string(id) + " belongs to '" + owner + "', not '" + user + "'",
                                      "", "", "PermissionDenied"});
    }
  }
  auto principal = "user:" + user;
  Result<rpc::Reply> r = Status::internal("unknown action");
  if (action == "cancel") {
    r = backends_.call_as(Service::kScheduler, principal, fb::RequestBody::CancelJob, [&](auto& fbb) {
      return fb::CreateCancelJobDirect(fbb, id, reason.c_str()).Union();
    });
  } else if (action == "hold") {
    r = backends_.call_as(Service::kScheduler, principal, fb::RequestBody::HoldJob,
                          [&](auto& fbb) { return fb::CreateHoldJob(fbb, id).Union(); });
  } else {
    r = backends_.call_as(Service::kScheduler, principal, fb::RequestBody::ReleaseJob,
                          [&](auto& fbb) { return fb::CreateReleaseJob(fbb, id).Union(); });
  }
  if (!r) return send_failure(res, r.status(), Service::kScheduler);
  send_json(res, 202, {{"job_id", id}, {"action", action}, {"accepted", true}});
}
void Api::job_metrics(const Request& req, Response& res) {
  uint64_t id = id_of(req);
  auto r = backends_.call(Service::kMetrics, fb::RequestBody::ListMetrics,
                          [&](auto& fbb) { return fb::CreateListMetrics(fbb, id).Union(); });
  // A job that reported nothing yet has no metrics: an empty list, not an error.
  if (!r && r.status().code() == ErrorCode::NotFound) {
    return send_json(res, 200, {{"job_id", id}, {"metrics", Json::array()}});
  }
  if (!r) return send_failure(res, r.status(), Service::kMetrics);
  send_json(res, 200, to_json(expect<fb::MetricSummaries>(*r)));
}

void Api::series(const Request& req, Response& res) {
  std::optional<ApiError> err;
  uint64_t id = id_of(req);
  std::string name = param(req, "name");
  if (name.empty()) return send_error(res, bad_request("name", "query parameter 'name' is required: the metric"));
  int64_t from = int_param(req, "from_step", INT64_MIN, err);
  int64_t to = int_param(req, "to_step", INT64_MAX, err);
  auto max_points = static_cast<uint32_t>(uint_param(req, "max_points", 1000, 2, 100'000, err));
  if (err) return send_error(res, *err);
  if (from > to) return send_error(res, bad_request("from_step", "from_step must not be after to_step"));
  auto r = backends_.call(Service::kMetrics, fb::RequestBody::QuerySeries, [&](auto& fbb) {
    return fb::CreateQuerySeriesDirect(fbb, id, name.c_str(), from, to, max_points).Union();
  });
  if (!r) return send_failure(res, r.status(), Service::kMetrics);
  send_json(res, 200, to_json(expect<fb::Series>(*r)));
}

}  // namespace trainyard::gateway

// Routes of experiments and comparisons: the experiment list, one
// experiment with its runs and metric names, and ranked comparisons.
#include "api.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include <httplib.h>

#include "core/codec.h"
#include "http_util.h"
#include "metric/metric_goal.h"

namespace trainyard::gateway {

using httplib::Request;
using httplib::Response;

void Api::experiments(const Request&, Response& res) {
  // From the job table the bus keeps, not from every job record per request.
  Json list;
  auto st = jobs_.read([&](const JobTable& t) { list = t.experiments(); });
  if (!st.ok()) return send_failure(res, st, Service::kScheduler);
  send_json(res, 200, {{"experiments", list}});
}

void Api::experiment(const Request& req, Response& res) {
  std::string name = req.matches[1].str();
  auto r = query_jobs(backends_, {}, "", "", name, 0, kAllJobs);
  if (!r) return send_failure(res, r.status(), Service::kScheduler);
  Json jobs = Json::array();
  std::vector<uint64_t> ids;
  if (auto* l = r->body<fb::JobList>(); l && l->jobs()) {
    for (const auto* j : *l->jobs()) {
      jobs.push_back(job_json(*j, JobView::kSummary));
      ids.push_back(j->job_id());
    }
  }
  if (jobs.empty()) {
    return send_error(res, ApiError{404, "no jobs in experiment '" + name + "'", "", "", "NotFound"});
  }
  // The metric names any of its runs reported (first 50 runs suffice).
  std::set<std::string> names;
  for (size_t i = 0; i < ids.size() && i < 50; ++i) {
    auto m = backends_.call(Service::kMetrics, fb::RequestBody::ListMetrics,
                            [&](auto& fbb) { return fb::CreateListMetrics(fbb, ids[i]).Union(); });
    if (!m) {
      if (m.status().code() == ErrorCode::NotFound) continue;
      return send_failure(res, m.status(), Service::kMetrics);
    }
    if (auto* s = m->body<fb::MetricSummaries>(); s && s->metrics()) {
      for (const auto* x : *s->metrics()) {
        if (x->name()) names.insert(x->name()->str());
      }
    }
  }
  send_json(res, 200, {{"name", name}, {"jobs", jobs}, {"metrics", names}});
}

void Api::compare(const Request& req, Response& res, const std::string& experiment) {
  std::string metric = param(req, "metric");
  if (metric.empty()) return send_error(res, bad_request("metric", "query parameter 'metric' is required (e.g. loss)"));
  auto goal = parse_goal(param(req, "goal", "auto"), metric);
  if (!goal) return send_error(res, bad_request("goal", "query parameter 'goal' must be min, max or auto"));
  bool maximize = *goal == MetricGoal::kMax;
  std::vector<uint64_t> ids;
  for (const auto& s : split(param(req, "jobs"), ',')) {
    if (s.empty() || s.size() > 19 || !std::all_of(s.begin(), s.end(), [](char c) { return std::isdigit(c); })) {
      return send_error(res, bad_request("jobs", "query parameter 'jobs' must be job ids separated by commas"));
    }
    ids.push_back(std::stoull(s));
  }
  if (experiment.empty() && ids.empty()) {
    return send_error(res, bad_request("jobs", "give job ids (?jobs=1,2,3) or compare an experiment"));
  }
  auto r = backends_.call(Service::kMetrics, fb::RequestBody::CompareRuns, [&](flatbuffers::FlatBufferBuilder& fbb) {
    return fb::CreateCompareRunsDirect(fbb, experiment.c_str(), &ids, metric.c_str(), maximize).Union();
  });
  if (!r) return send_failure(res, r.status(), Service::kMetrics);
  Json out = to_json(expect<fb::Comparison>(*r), maximize);
  out["experiment"] = experiment;
  out["goal"] = goal_name(*goal);
  // The runs' parameters and states, from the scheduler; the ranking stands
  // without them when it does not answer.
  std::map<uint64_t, Json> info;
  auto jobs = experiment.empty() ? Result<rpc::Reply>(Status::not_found(""))
                                 : query_jobs(backends_, {}, "", "", experiment, 0, kAllJobs);
  if (jobs) {
    if (auto* l = jobs->body<fb::JobList>(); l && l->jobs()) {
      for (const auto* j : *l->jobs()) info[j->job_id()] = job_json(*j, JobView::kFull);
    }
  } else if (experiment.empty()) {
    for (auto id : ids) {
      if (auto one = get_job(backends_, id)) info[id] = job_json(expect<fb::JobRecord>(*one), JobView::kFull);
    }
  } else {
    out["jobs_error"] = from_status(jobs.status(), service_name(Service::kScheduler)).body();
  }
  for (auto& row : out["rows"]) {
    auto it = info.find(row["job_id"].get<uint64_t>());
    Json params = row["labels"];
    if (it != info.end()) {
      const Json& j = it->second;
      row["state"] = j["state"];
      row["array_index"] = j["array_index"];
      if (row["name"].get<std::string>().empty()) row["name"] = j["name"];
      for (auto& [k, v] : j["spec"]["labels"].items()) params[k] = v;
      for (auto& [k, v] : j["spec"]["env"].items()) {
        if (k.rfind("TY_", 0) != 0 && k != "PATH" && k != "PYTHONPATH" && k != "HOME") params[k] = v;
      }
    }
    row["params"] = params;
  }
  send_json(res, 200, out);
}

}  // namespace trainyard::gateway

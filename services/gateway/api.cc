#include "api.h"

#include <algorithm>
#include <cctype>
#include <ctime>
#include <filesystem>
#include <future>
#include <map>
#include <memory>
#include <random>
#include <set>

#include <httplib.h>
#include <spdlog/spdlog.h>

#include "core/api_error.h"
#include "core/cluster.h"
#include "core/codec.h"
#include "core/job_spec_json.h"
#include "core/prometheus.h"
#include "util/clock.h"

namespace trainyard::gateway {

namespace {

using httplib::Request;
using httplib::Response;
using Json = nlohmann::json;

constexpr uint32_t kAllJobs = 1'000'000;

void send_json(Response& res, int status, const Json& j) {
  res.status = status;
  // Log text and user strings may hold invalid UTF-8: replace, never throw.
  res.set_content(j.dump(-1, ' ', false, Json::error_handler_t::replace), "application/json");
}

void send_error(Response& res, const ApiError& e) { send_json(res, e.http, e.body()); }

// A call's failure as the HTTP error naming the service.
void send_failure(Response& res, const Status& st, Service s) { send_error(res, from_status(st, service_name(s))); }

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    auto end = s.find(sep, start);
    if (end == std::string::npos) end = s.size();
    if (end > start) out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

std::string param(const Request& req, const char* name, const std::string& def = "") {
  return req.has_param(name) ? req.get_param_value(name) : def;
}

// An unsigned query parameter; sets `err` when present but not a number or
// out of [lo, hi].
uint64_t uint_param(const Request& req, const char* name, uint64_t def, uint64_t lo, uint64_t hi,
                    std::optional<ApiError>& err) {
  if (!req.has_param(name)) return def;
  auto s = req.get_param_value(name);
  uint64_t v = 0;
  bool ok = !s.empty() && s.size() <= 19 && std::all_of(s.begin(), s.end(), [](char c) { return std::isdigit(c); });
  if (ok) v = std::stoull(s);
  if (!ok || v < lo || v > hi) {
    if (!err) {
      err = bad_request(name, "query parameter '" + std::string(name) + "' must be an integer from " +
                                  std::to_string(lo) + " to " + std::to_string(hi) + ", not '" + s + "'");
    }
    return def;
  }
  return v;
}

int64_t int_param(const Request& req, const char* name, int64_t def, std::optional<ApiError>& err) {
  if (!req.has_param(name)) return def;
  auto s = req.get_param_value(name);
  try {
    size_t used = 0;
    int64_t v = std::stoll(s, &used);
    if (used == s.size()) return v;
  } catch (const std::exception&) {
  }
  if (!err) err = bad_request(name, "query parameter '" + std::string(name) + "' must be an integer, not '" + s + "'");
  return def;
}

// "1700000000" (Unix seconds) or "2026-01-31" (UTC midnight) -> ns.
int64_t time_param(const Request& req, const char* name, std::optional<ApiError>& err) {
  if (!req.has_param(name)) return 0;
  auto s = req.get_param_value(name);
  if (!s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return std::isdigit(c); }) && s.size() <= 12) {
    return std::stoll(s) * 1'000'000'000LL;
  }
  std::tm tm{};
  if (s.size() == 10 && strptime(s.c_str(), "%Y-%m-%d", &tm) != nullptr) {
    return static_cast<int64_t>(timegm(&tm)) * 1'000'000'000LL;
  }
  if (!err) {
    err = bad_request(name, "query parameter '" + std::string(name) +
                                "' must be Unix seconds or a date YYYY-MM-DD, not '" + s + "'");
  }
  return 0;
}

std::string current_month() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[16];
  std::strftime(buf, sizeof buf, "%Y-%m", &tm);
  return buf;
}

bool valid_month(const std::string& m) {
  return m.size() == 7 && std::isdigit(m[0]) && std::isdigit(m[1]) && std::isdigit(m[2]) && std::isdigit(m[3]) &&
         m[4] == '-' && std::isdigit(m[5]) && std::isdigit(m[6]) && (m[5] == '0' || (m[5] == '1' && m[6] <= '2')) &&
         !(m[5] == '0' && m[6] == '0');
}

bool valid_user(const std::string& u) {
  return !u.empty() && u.size() <= 64 && std::all_of(u.begin(), u.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' || c == '@';
  });
}

// Metric names that are better when larger; the rest are minimised.
bool maximize_by_default(const std::string& metric) {
  std::string m = metric;
  for (auto& c : m) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const char* k : {"acc", "auc", "f1", "precision", "recall", "score", "reward", "bleu", "iou", "map"}) {
    if (m.find(k) != std::string::npos) return true;
  }
  return false;
}

Result<rpc::Reply> query_jobs(Backends& b, const std::vector<fb::JobState>& states, const std::string& user,
                              const std::string& account, const std::string& experiment, uint64_t array_job_id,
                              uint32_t limit) {
  return b.call(Service::kScheduler, fb::RequestBody::QueryJobs, [&](flatbuffers::FlatBufferBuilder& fbb) {
    auto st = fbb.CreateVector(states);
    auto u = fbb.CreateString(user);
    auto a = fbb.CreateString(account);
    auto e = fbb.CreateString(experiment);
    fb::QueryJobsBuilder q(fbb);
    q.add_states(st);
    q.add_user(u);
    q.add_account(a);
    q.add_experiment(e);
    q.add_array_job_id(array_job_id);
    q.add_limit(limit);
    return q.Finish().Union();
  });
}

Result<rpc::Reply> get_job(Backends& b, uint64_t id) {
  return b.call(Service::kScheduler, fb::RequestBody::GetJob,
                [&](flatbuffers::FlatBufferBuilder& fbb) { return fb::CreateGetJob(fbb, id).Union(); });
}

Result<rpc::Reply> list_nodes(Backends& b, bool fresh = false) {
  auto build = [](flatbuffers::FlatBufferBuilder& fbb) { return fb::CreateListNodes(fbb).Union(); };
  return fresh ? b.call_fresh(Service::kBroker, fb::RequestBody::ListNodes, build)
               : b.call(Service::kBroker, fb::RequestBody::ListNodes, build);
}

Result<rpc::Reply> query_usage(Backends& b, const std::string& account, const std::string& user, uint64_t job,
                               int64_t since, int64_t until, const std::string& group_by, bool fresh = false) {
  auto build = [&](flatbuffers::FlatBufferBuilder& fbb) {
    return fb::CreateQueryUsageDirect(fbb, account.c_str(), user.c_str(), job, since, until, group_by.c_str()).Union();
  };
  return fresh ? b.call_fresh(Service::kBilling, fb::RequestBody::QueryUsage, build)
               : b.call(Service::kBilling, fb::RequestBody::QueryUsage, build);
}

// The body of an Ok reply; a service answering with another body type is a
// bug there, reported as a 500 naming it rather than a crash here.
template <typename T>
const T& expect(const rpc::Reply& r) {
  const T* b = r.body<T>();
  if (!b) {
    throw std::runtime_error(std::string("a service answered with an unexpected reply (") +
                             fb::EnumNameReplyBody(r.get().body_type()) + ")");
  }
  return *b;
}

// The path parameter captured by the route's first group.
uint64_t id_of(const Request& req) { return std::stoull(req.matches[1].str()); }

struct StreamSlot {
  EventHub& hub;
  explicit StreamSlot(EventHub& h) : hub(h) { ++hub.streams_open; }
  ~StreamSlot() { --hub.streams_open; }
};

std::string sse_message(uint64_t id, const std::string& event, const std::string& data) {
  std::string m;
  if (id) m += "id: " + std::to_string(id) + "\n";
  m += "event: " + event + "\ndata: " + data + "\n\n";
  return m;
}

void sse_headers(Response& res) {
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
}

}  // namespace

Api::Api(Backends& backends, EventHub& hub, ApiOptions options)
    : backends_(backends), hub_(hub), options_(std::move(options)) {}

void Api::install(httplib::Server& s) {
  auto h = [this](void (Api::*fn)(const Request&, Response&)) {
    return [this, fn](const Request& req, Response& res) { (this->*fn)(req, res); };
  };
  s.Get("/api/v1/cluster", h(&Api::cluster));
  s.Get("/api/v1/nodes", h(&Api::nodes));
  s.Get("/api/v1/jobs", h(&Api::jobs));
  s.Post("/api/v1/jobs", h(&Api::submit));
  s.Get(R"(/api/v1/jobs/(\d{1,19}))", h(&Api::job));
  s.Delete(R"(/api/v1/jobs/(\d{1,19}))",
           [this](const Request& req, Response& res) { job_action(req, res, "cancel"); });
  s.Post(R"(/api/v1/jobs/(\d{1,19})/(cancel|hold|release))",
         [this](const Request& req, Response& res) { job_action(req, res, req.matches[2].str()); });
  s.Get(R"(/api/v1/jobs/(\d{1,19})/logs)", h(&Api::logs));
  s.Get(R"(/api/v1/jobs/(\d{1,19})/metrics)", h(&Api::job_metrics));
  s.Get(R"(/api/v1/jobs/(\d{1,19})/series)", h(&Api::series));
  s.Get("/api/v1/experiments", h(&Api::experiments));
  s.Get(R"(/api/v1/experiments/([^/]+))", h(&Api::experiment));
  s.Get(R"(/api/v1/experiments/([^/]+)/compare)",
        [this](const Request& req, Response& res) { compare(req, res, req.matches[1].str()); });
  s.Get("/api/v1/compare", [this](const Request& req, Response& res) { compare(req, res, ""); });
  s.Get("/api/v1/usage", h(&Api::usage));
  s.Get("/api/v1/accounts", h(&Api::accounts));
  s.Get(R"(/api/v1/accounts/([^/]+)/invoice)",
        [this](const Request& req, Response& res) { invoice(req, res, req.matches[1].str()); });
  s.Get("/api/v1/invoices", [this](const Request& req, Response& res) { invoice(req, res, param(req, "account")); });
  s.Get("/api/v1/events", h(&Api::events));
  s.Get("/api/v1/events/recent", h(&Api::recent_events));
  s.Get("/api/v1/health", h(&Api::health));
  s.Get("/metrics", h(&Api::metrics));

  if (!options_.web_root.empty() && std::filesystem::exists(options_.web_root + "/index.html")) {
    s.set_mount_point("/", options_.web_root);
  } else {
    std::string root = options_.web_root;
    s.Get("/", [root](const Request&, Response& res) {
      res.set_content("<!doctype html><title>Trainyard</title><h1>Trainyard gateway</h1><p>The dashboard is not "
                      "built: no index.html in '" +
                          root +
                          "'. Build it with <code>cmake --build build --target web</code> (needs npm) or set "
                          "<code>gateway.web_root</code>. The REST API is under <a href=\"/api/v1/cluster\">/api/v1</a>.",
                      "text/html");
    });
  }

  s.set_error_handler([](const Request& req, Response& res) {
    if (!res.body.empty()) return;  // a handler's own error body stays
    if (res.status == 404) {
      send_json(res, 404, ApiError{404, "no such resource: " + req.method + " " + req.path + " (see docs/api/openapi.yaml)",
                                   "", "", "NotFound"}
                              .body());
    } else {
      send_json(res, res.status, ApiError{res.status, "request failed with HTTP " + std::to_string(res.status), "", "", ""}
                                     .body());
    }
  });
  s.set_exception_handler([](const Request& req, Response& res, std::exception_ptr ep) {
    std::string what = "unknown error";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    spdlog::error("{} {}: {}", req.method, req.path, what);
    send_json(res, 500, ApiError{500, "internal error in the gateway: " + what, "", "gateway", "Internal"}.body());
  });
  s.set_logger([this](const Request& req, const Response& res) {
    ++hub_.http_requests;
    spdlog::debug("{} {} -> {}", req.method, req.path, res.status);
  });
}

void Api::cluster(const Request&, Response& res) {
  auto n = list_nodes(backends_);
  if (!n) return send_failure(res, n.status(), Service::kBroker);
  auto j = query_jobs(backends_, {}, "", "", "", 0, kAllJobs);
  if (!j) return send_failure(res, j.status(), Service::kScheduler);
  auto ns = node_stats(expect<fb::NodeList>(*n));
  auto js = job_stats(expect<fb::JobList>(*j));
  send_json(res, 200, cluster_summary(ns, js));
}

void Api::nodes(const Request&, Response& res) {
  auto n = list_nodes(backends_);
  if (!n) return send_failure(res, n.status(), Service::kBroker);
  Json list = Json::array();
  if (auto* l = n->body<fb::NodeList>(); l && l->nodes()) {
    for (const auto* node : *l->nodes()) list.push_back(to_json(*node));
  }
  send_json(res, 200, {{"nodes", list}});
}

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
    for (const auto* j : *l->jobs()) list.push_back(to_json(*j, false));
  }
  std::sort(list.begin(), list.end(),
            [](const Json& a, const Json& b) { return a["job_id"].get<uint64_t>() > b["job_id"].get<uint64_t>(); });
  send_json(res, 200, {{"jobs", list}, {"count", list.size()}});
}

void Api::job(const Request& req, Response& res) {
  auto r = get_job(backends_, id_of(req));
  if (!r) return send_failure(res, r.status(), Service::kScheduler);
  send_json(res, 200, to_json(expect<fb::JobRecord>(*r), true));
}

void Api::submit(const Request& req, Response& res) {
  std::string user = options_.default_user;
  if (options_.trust_user_header && req.has_header("X-Trainyard-User")) user = req.get_header_value("X-Trainyard-User");
  if (user.empty()) {
    return send_error(res, ApiError{401, "who is submitting? Set the X-Trainyard-User header to your user name",
                                    "X-Trainyard-User", "", "PermissionDenied"});
  }
  if (!valid_user(user)) {
    return send_error(res, bad_request("X-Trainyard-User", "'" + user + "' is not a valid user name"));
  }
  Json body;
  try {
    body = Json::parse(req.body);
  } catch (const Json::parse_error& e) {
    return send_error(res, bad_request("", std::string("the body is not valid JSON: ") + e.what()));
  }
  bool admin = std::find(options_.admins.begin(), options_.admins.end(), user) != options_.admins.end();
  fb::JobSpecT spec;
  if (auto e = parse_job_spec(body, user, admin, &spec)) return send_error(res, *e);
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
  std::string user = options_.default_user;
  if (options_.trust_user_header && req.has_header("X-Trainyard-User")) user = req.get_header_value("X-Trainyard-User");
  if (user.empty()) {
    return send_error(res, ApiError{401, "who is asking? Set the X-Trainyard-User header to your user name",
                                    "X-Trainyard-User", "", "PermissionDenied"});
  }
  if (!valid_user(user)) return send_error(res, bad_request("X-Trainyard-User", "'" + user + "' is not a valid user name"));
  uint64_t id = id_of(req);
  std::string reason = "cancelled by " + user + " through the gateway";
  if (!req.body.empty()) {
    try {
      auto b = Json::parse(req.body);
      if (b.contains("reason") && b["reason"].is_string()) reason = b["reason"].get<std::string>();
    } catch (const Json::parse_error&) {
      return send_error(res, bad_request("", "the body must be empty or JSON like {\"reason\": \"...\"}"));
    }
  }
  bool admin = std::find(options_.admins.begin(), options_.admins.end(), user) != options_.admins.end();
  if (!admin) {
    // Users act on their own jobs (the scheduler checks too, under CURVE).
    auto j = get_job(backends_, id);
    if (!j) return send_failure(res, j.status(), Service::kScheduler);
    auto* spec = expect<fb::JobRecord>(*j).spec();
    std::string owner = spec && spec->user() ? spec->user()->str() : "";
    if (!owner.empty() && owner != user) {
      return send_error(res, ApiError{403, "job " + std::to_string(id) + " belongs to '" + owner + "', not '" + user + "'",
                                      "X-Trainyard-User", "", "PermissionDenied"});
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

void Api::logs(const Request& req, Response& res) {
  std::optional<ApiError> err;
  uint64_t id = id_of(req);
  std::string stream = param(req, "stream", "stdout");
  if (stream != "stdout" && stream != "stderr") {
    return send_error(res, bad_request("stream", "query parameter 'stream' must be stdout or stderr"));
  }
  auto tail = uint_param(req, "tail", 64 * 1024, 0, 4u << 20, err);
  bool has_offset = req.has_param("offset");
  auto offset = uint_param(req, "offset", 0, 0, UINT64_MAX, err);
  auto attempt = static_cast<uint32_t>(uint_param(req, "attempt", 0, 0, UINT32_MAX, err));
  std::string follow = param(req, "follow");
  if (err) return send_error(res, *err);

  // Which node ran it (rank 0 holds the log), and that node's agent.
  auto j = get_job(backends_, id);
  if (!j) return send_failure(res, j.status(), Service::kScheduler);
  auto* rec = &expect<fb::JobRecord>(*j);
  if (!rec->nodes() || rec->nodes()->size() == 0) {
    return send_error(res, ApiError{404, "job " + std::to_string(id) + " is " + state_name(rec->state()) +
                                             " and has not run on any node yet: no logs",
                                    "", "", "NotFound"});
  }
  std::string node = rec->nodes()->Get(0)->str();
  auto n = list_nodes(backends_);
  if (!n) return send_failure(res, n.status(), Service::kBroker);
  std::string endpoint;
  if (auto* l = n->body<fb::NodeList>(); l && l->nodes()) {
    for (const auto* ns : *l->nodes()) {
      if (ns->node() && ns->node()->name() && ns->node()->name()->str() == node && ns->node()->agent_endpoint()) {
        endpoint = ns->node()->agent_endpoint()->str();
      }
    }
  }
  std::string agent = "agent " + node;
  if (endpoint.empty()) {
    return send_error(res, ApiError{503, "the agent of node '" + node + "' (where job " + std::to_string(id) +
                                             " ran) is not registered with the resource broker",
                                    "", agent, "Unavailable"});
  }
  bool is_stderr = stream == "stderr";
  auto read = [this, node, endpoint, id, attempt, is_stderr](uint64_t off, uint32_t max) {
    return backends_.call_agent(node, endpoint, fb::RequestBody::ReadLog, [&](flatbuffers::FlatBufferBuilder& fbb) {
      return fb::CreateReadLog(fbb, id, attempt, is_stderr, off, max).Union();
    });
  };
  // Tail: learn the size, then read the last `tail` bytes.
  uint64_t start = offset;
  if (!has_offset) {
    auto probe = read(0, 1);
    if (!probe) return send_error(res, from_status(probe.status(), agent));
    uint64_t size = expect<fb::LogChunk>(*probe).size();
    start = size > tail ? size - tail : 0;
  }
  if (follow != "1" && follow != "true") {
    auto r = read(start, static_cast<uint32_t>(std::max<uint64_t>(tail, 1)));
    if (!r) return send_error(res, from_status(r.status(), agent));
    auto* c = &expect<fb::LogChunk>(*r);
    std::string data = c->data() ? std::string(reinterpret_cast<const char*>(c->data()->data()), c->data()->size()) : "";
    return send_json(res, 200,
                     {{"job_id", id}, {"node", node}, {"stream", stream}, {"offset", c->offset()}, {"size", c->size()},
                      {"next_offset", c->offset() + data.size()}, {"finished", c->finished()},
                      {"data", data}});
  }
  if (hub_.streams_open >= options_.max_streams) {
    return send_error(res, ApiError{503, "too many live streams are open on this gateway; try again later", "", "gateway",
                                    "Unavailable"});
  }
  // Follow: SSE "log" events {offset, data} as the file grows, then "end".
  struct Follow {
    uint64_t offset;
    bool ended = false;
    int64_t last_write_ms = 0;
    std::shared_ptr<StreamSlot> slot;
  };
  auto st = std::make_shared<Follow>(Follow{start, false, monotonic_ms(), std::make_shared<StreamSlot>(hub_)});
  sse_headers(res);
  res.set_chunked_content_provider(
      "text/event-stream", [this, st, read, agent](size_t, httplib::DataSink& sink) {
        if (st->ended || hub_.stopped()) {
          sink.done();
          return true;
        }
        auto r = read(st->offset, 64 * 1024);
        if (!r) {
          auto e = from_status(r.status(), agent);
          std::string m = sse_message(0, "error", e.body().dump());
          st->ended = true;
          return sink.write(m.data(), m.size());
        }
        auto* c = r->body<fb::LogChunk>();
        if (!c) return false;
        size_t n = c->data() ? c->data()->size() : 0;
        if (n > 0) {
          std::string data(reinterpret_cast<const char*>(c->data()->data()), n);
          Json d{{"offset", c->offset()}, {"data", data}};
          std::string m = sse_message(0, "log", d.dump(-1, ' ', false, Json::error_handler_t::replace));
          st->offset = c->offset() + n;
          st->last_write_ms = monotonic_ms();
          return sink.write(m.data(), m.size());
        }
        if (c->finished() && st->offset >= c->size()) {
          std::string m = sse_message(0, "end", Json{{"offset", st->offset}}.dump());
          st->ended = true;
          return sink.write(m.data(), m.size());
        }
        if (monotonic_ms() - st->last_write_ms > options_.keepalive_ms) {
          st->last_write_ms = monotonic_ms();
          static const std::string ka = ": keepalive\n\n";
          if (!sink.write(ka.data(), ka.size())) return false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the agent's file grows; poll it
        return true;
      });
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

void Api::experiments(const Request&, Response& res) {
  auto r = query_jobs(backends_, {}, "", "", "", 0, kAllJobs);
  if (!r) return send_failure(res, r.status(), Service::kScheduler);
  struct Agg {
    uint64_t jobs = 0, active = 0, succeeded = 0, failed = 0;
    int64_t last_submit = 0;
    std::set<std::string> users;
  };
  std::map<std::string, Agg> by;
  if (auto* l = r->body<fb::JobList>(); l && l->jobs()) {
    for (const auto* j : *l->jobs()) {
      if (!j->spec() || !j->spec()->experiment() || j->spec()->experiment()->size() == 0) continue;
      auto& a = by[j->spec()->experiment()->str()];
      ++a.jobs;
      if (!is_terminal(j->state())) ++a.active;
      if (j->state() == fb::JobState::Succeeded) ++a.succeeded;
      if (is_terminal(j->state()) && j->state() != fb::JobState::Succeeded) ++a.failed;
      a.last_submit = std::max(a.last_submit, j->submit_time_ns());
      if (j->spec()->user()) a.users.insert(j->spec()->user()->str());
    }
  }
  Json list = Json::array();
  for (const auto& [name, a] : by) {
    list.push_back({{"name", name}, {"jobs", a.jobs}, {"active", a.active}, {"succeeded", a.succeeded},
                    {"failed", a.failed}, {"last_submit_ms", ns_to_ms(a.last_submit)}, {"users", a.users}});
  }
  std::sort(list.begin(), list.end(), [](const Json& a, const Json& b) {
    return a["last_submit_ms"].get<int64_t>() > b["last_submit_ms"].get<int64_t>();
  });
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
      jobs.push_back(to_json(*j, false));
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
  std::string goal = param(req, "goal", "auto");
  bool maximize;
  if (goal == "max") {
    maximize = true;
  } else if (goal == "min") {
    maximize = false;
  } else if (goal == "auto") {
    maximize = maximize_by_default(metric);
  } else {
    return send_error(res, bad_request("goal", "query parameter 'goal' must be min, max or auto"));
  }
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
  out["goal"] = maximize ? "max" : "min";
  // The runs' parameters and states, from the scheduler; the ranking stands
  // without them when it does not answer.
  std::map<uint64_t, Json> info;
  auto jobs = experiment.empty() ? Result<rpc::Reply>(Status::not_found(""))
                                 : query_jobs(backends_, {}, "", "", experiment, 0, kAllJobs);
  if (jobs) {
    if (auto* l = jobs->body<fb::JobList>(); l && l->jobs()) {
      for (const auto* j : *l->jobs()) info[j->job_id()] = to_json(*j, true);
    }
  } else if (experiment.empty()) {
    for (auto id : ids) {
      if (auto one = get_job(backends_, id)) info[id] = to_json(expect<fb::JobRecord>(*one), true);
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

void Api::usage(const Request& req, Response& res) {
  std::optional<ApiError> err;
  std::string group_by = param(req, "group_by", "account");
  static const std::set<std::string> kGroups{"account", "user", "job", "day", "resource"};
  if (!kGroups.count(group_by)) {
    return send_error(res, bad_request("group_by", "query parameter 'group_by' must be account, user, job, day or resource"));
  }
  auto job = uint_param(req, "job", 0, 0, UINT64_MAX, err);
  int64_t since = time_param(req, "since", err);
  int64_t until = time_param(req, "until", err);
  if (err) return send_error(res, *err);
  auto r = query_usage(backends_, param(req, "account"), param(req, "user"), job, since, until, group_by);
  if (!r) return send_failure(res, r.status(), Service::kBilling);
  Json out = to_json(expect<fb::UsageReport>(*r));
  out["group_by"] = group_by;
  send_json(res, 200, out);
}

void Api::accounts(const Request&, Response& res) {
  auto all = query_usage(backends_, "", "", 0, 0, 0, "account");
  if (!all) return send_failure(res, all.status(), Service::kBilling);
  std::string month = current_month();
  std::tm tm{};
  strptime((month + "-01").c_str(), "%Y-%m-%d", &tm);
  int64_t month_start = static_cast<int64_t>(timegm(&tm)) * 1'000'000'000LL;
  auto this_month = query_usage(backends_, "", "", 0, month_start, 0, "account");
  if (!this_month) return send_failure(res, this_month.status(), Service::kBilling);
  std::map<std::string, int64_t> month_cost;
  if (auto* u = this_month->body<fb::UsageReport>(); u && u->rows()) {
    for (const auto* row : *u->rows()) month_cost[row->key() ? row->key()->str() : ""] = row->cost_micros();
  }
  // Budgets as billing announced them (account.warning / account.blocked)
  // on the bus since the gateway started.
  std::map<std::string, Json> budgets;
  for (const auto& e : hub_.recent(4096, {"account"})) {
    auto d = Json::parse(e.json);
    std::string a = d.value("account", "");
    if (d.value("month", "") != month) continue;
    auto& b = budgets[a];
    b["limit_micros"] = d["limit_micros"];
    b["spent_micros"] = d["spent_micros"];
    if (e.topic == "account.warning") b["warning"] = true;
    if (d.contains("blocked")) b["blocked"] = d["blocked"];
  }
  const auto* report = &expect<fb::UsageReport>(*all);
  Json list = Json::array();
  if (report->rows()) {
    for (const auto* row : *report->rows()) {
      std::string a = row->key() ? row->key()->str() : "";
      Json j{{"account", a},
             {"gpu_hours", static_cast<double>(row->gpu_ms()) / 3.6e6},
             {"cost_micros", row->cost_micros()},
             {"cost", micros_to_amount(row->cost_micros())},
             {"month", month},
             {"month_cost_micros", month_cost[a]},
             {"month_cost", micros_to_amount(month_cost[a])}};
      auto b = budgets.find(a);
      j["budget"] = b == budgets.end() ? Json(nullptr) : b->second;
      list.push_back(j);
    }
  }
  send_json(res, 200, {{"currency", report->currency() ? report->currency()->str() : ""}, {"month", month},
                       {"accounts", list}});
}

void Api::invoice(const Request& req, Response& res, const std::string& account) {
  if (account.empty()) return send_error(res, bad_request("account", "which account? /api/v1/accounts/NAME/invoice"));
  std::string month = param(req, "month", current_month());
  if (!valid_month(month)) {
    return send_error(res, bad_request("month", "query parameter 'month' must look like 2026-01, not '" + month + "'"));
  }
  auto r = backends_.call(Service::kBilling, fb::RequestBody::GetInvoice, [&](auto& fbb) {
    return fb::CreateGetInvoiceDirect(fbb, account.c_str(), month.c_str()).Union();
  });
  if (!r) return send_failure(res, r.status(), Service::kBilling);
  send_json(res, 200, to_json(expect<fb::Invoice>(*r)));
}

void Api::events(const Request& req, Response& res) {
  std::optional<ApiError> err;
  std::vector<std::string> kinds = split(param(req, "kinds", "job,node,lease,run,account"), ',');
  static const std::set<std::string> kKinds{"job", "node", "lease", "run", "account", "metric"};
  for (const auto& k : kinds) {
    if (!kKinds.count(k)) {
      return send_error(res, bad_request("kinds", "unknown event kind '" + k + "': use job, node, lease, run, account, metric"));
    }
  }
  // Resume after the last event the browser saw (EventSource sends it back
  // on reconnect); otherwise start with what comes next.
  uint64_t after = hub_.last_id();
  if (req.has_header("Last-Event-ID")) {
    try {
      after = std::stoull(req.get_header_value("Last-Event-ID"));
    } catch (const std::exception&) {
    }
  }
  after = uint_param(req, "after", after, 0, UINT64_MAX, err);
  if (err) return send_error(res, *err);
  if (hub_.streams_open >= options_.max_streams) {
    return send_error(res, ApiError{503, "too many live streams are open on this gateway; try again later", "", "gateway",
                                    "Unavailable"});
  }
  struct Sse {
    uint64_t after;
    std::vector<std::string> kinds;
    bool started = false;
    int64_t last_write_ms;
    std::shared_ptr<StreamSlot> slot;
  };
  auto st = std::make_shared<Sse>(Sse{after, kinds, false, monotonic_ms(), std::make_shared<StreamSlot>(hub_)});
  sse_headers(res);
  res.set_chunked_content_provider("text/event-stream", [this, st](size_t, httplib::DataSink& sink) {
    if (!st->started) {
      st->started = true;
      std::string hello = "retry: 2000\n" + sse_message(0, "hello", Json{{"last_id", st->after}}.dump());
      return sink.write(hello.data(), hello.size());
    }
    if (hub_.stopped()) {
      sink.done();
      return true;
    }
    auto evs = hub_.wait_after(st->after, st->kinds, std::chrono::milliseconds(1000));
    std::string out;
    for (const auto& e : evs) {
      out += sse_message(e.id, e.topic, e.json);
      st->after = e.id;
    }
    if (out.empty() && monotonic_ms() - st->last_write_ms > options_.keepalive_ms) out = ": keepalive\n\n";
    if (out.empty()) return true;
    st->last_write_ms = monotonic_ms();
    return sink.write(out.data(), out.size());
  });
}

void Api::recent_events(const Request& req, Response& res) {
  std::optional<ApiError> err;
  auto limit = uint_param(req, "limit", 50, 1, 4096, err);
  if (err) return send_error(res, *err);
  auto kinds = split(param(req, "kinds", "job,node,lease,run,account"), ',');
  Json list = Json::array();
  for (const auto& e : hub_.recent(limit, kinds)) {
    list.push_back({{"id", e.id}, {"kind", e.kind}, {"topic", e.topic}, {"data", Json::parse(e.json)}});
  }
  send_json(res, 200, {{"events", list}, {"last_id", hub_.last_id()}});
}

void Api::health(const Request&, Response& res) {
  std::vector<Service> all{Service::kScheduler, Service::kBroker, Service::kMetrics, Service::kBilling};
  std::vector<std::future<Result<rpc::Reply>>> pings;
  for (auto s : all) {
    pings.push_back(std::async(std::launch::async, [this, s] {
      return backends_.call_fresh(s, fb::RequestBody::Ping, [](auto& fbb) { return fb::CreatePing(fbb).Union(); });
    }));
  }
  Json services = Json::object();
  bool ok = true;
  for (size_t i = 0; i < all.size(); ++i) {
    auto r = pings[i].get();
    // Unimplemented still proves the service is there and answering.
    bool up = r.ok() || r.status().code() != ErrorCode::Unavailable;
    ok = ok && up;
    Json j{{"up", up}, {"endpoint", backends_.endpoint(all[i])}};
    if (!up) j["error"] = r.status().message();
    services[service_name(all[i])] = j;
  }
  send_json(res, 200, {{"ok", ok}, {"services", services}, {"bus_events", hub_.events_seen.load()}});
}

void Api::metrics(const Request&, Response& res) {
  // The four services are asked at once, so a scrape with services down
  // takes one timeout, not four.
  auto nodes = std::async(std::launch::async, [this] { return list_nodes(backends_, true); });
  auto jobs = std::async(std::launch::async, [this] {
    return backends_.call_fresh(Service::kScheduler, fb::RequestBody::QueryJobs, [](auto& fbb) {
      fb::QueryJobsBuilder q(fbb);
      q.add_limit(kAllJobs);
      return q.Finish().Union();
    });
  });
  auto spend = std::async(std::launch::async,
                          [this] { return query_usage(backends_, "", "", 0, 0, 0, "account", true); });
  auto ping = std::async(std::launch::async, [this] {
    return backends_.call_fresh(Service::kMetrics, fb::RequestBody::Ping,
                                [](auto& fbb) { return fb::CreatePing(fbb).Union(); });
  });
  MetricsInput in;
  auto up = [](const Result<rpc::Reply>& r) { return r.ok() || r.status().code() != ErrorCode::Unavailable; };
  auto n = nodes.get();
  in.service_up[service_name(Service::kBroker)] = up(n);
  if (n) in.nodes = node_stats(expect<fb::NodeList>(*n));
  auto j = jobs.get();
  in.service_up[service_name(Service::kScheduler)] = up(j);
  if (j) in.jobs = job_stats(expect<fb::JobList>(*j));
  auto s = spend.get();
  in.service_up[service_name(Service::kBilling)] = up(s);
  if (s) {
    std::vector<AccountSpend> list;
    auto* u = &expect<fb::UsageReport>(*s);
    std::string currency = u->currency() ? u->currency()->str() : "";
    if (u->rows()) {
      for (const auto* row : *u->rows()) {
        list.push_back({row->key() ? row->key()->str() : "", currency, row->cost_micros(), row->gpu_ms()});
      }
    }
    in.spend = std::move(list);
  }
  in.service_up[service_name(Service::kMetrics)] = up(ping.get());
  in.ops = hub_.ops(monotonic_ms(), options_.ops_max_age_ms);
  in.bus_events_seen = hub_.events_seen;
  in.metric_points_seen = hub_.metric_points_seen;
  in.sse_clients = hub_.streams_open;
  in.http_requests = hub_.http_requests;
  res.set_content(render_metrics(in), "text/plain; version=0.0.4; charset=utf-8");
}

}  // namespace trainyard::gateway

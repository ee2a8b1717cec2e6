// The gateway's routes and the cluster-wide pages: the overview, nodes,
// health and /metrics. The other routes live in routes_*.cc and sse.cc.
#include "api.h"

#include <filesystem>
#include <future>

#include <httplib.h>
#include <spdlog/spdlog.h>

#include "auth.h"
#include "core/cluster.h"
#include "core/codec.h"
#include "core/prometheus.h"
#include "http_util.h"
#include "routes_cloud.h"
#include "util/clock.h"

namespace trainyard::gateway {

using httplib::Request;
using httplib::Response;

Api::Api(Backends& backends, EventHub& hub, JobCache& jobs, ApiOptions options)
    : backends_(backends), hub_(hub), jobs_(jobs), options_(std::move(options)),
      streams_(options_.max_streams, options_.max_streams_per_client, hub.streams_open) {}

namespace {

// A route handler that calls the Api member `fn`.
auto bind_member(Api* api, void (Api::*fn)(const Request&, Response&)) {
  return [api, fn](const Request& req, Response& res) { (api->*fn)(req, res); };
}

// The built dashboard at "/", or a page that says how to build it.
void install_dashboard(httplib::Server& s, const std::string& web_root) {
  if (!web_root.empty() && std::filesystem::exists(web_root + "/index.html")) {
    s.set_mount_point("/", web_root);
  } else {
    std::string root = web_root;
    s.Get("/", [root](const Request&, Response& res) {
      res.set_content("<!doctype html><title>Trainyard</title><h1>Trainyard gateway</h1><p>The dashboard is not "
                      "built: no index.html in '" +
                          root +
                          "'. Build it with <code>cmake --build build --target web</code> (needs npm) or set "
                          "<code>gateway.web_root</code>. The REST API is under <a href=\"/api/v1/cluster\">/api/v1</a>.",
                      "text/html");
    });
  }
}

// Errors no handler answered, and handlers that threw, as JSON ApiErrors.
void install_error_handlers(httplib::Server& s) {
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
}

}  // namespace

void Api::install(httplib::Server& s) {
  install_cluster_routes(s);
  install_job_routes(s);
  install_experiment_routes(s);
  install_billing_routes(s);
  install_event_routes(s);
  install_health_routes(s);
  install_cloud_routes(s, backends_);
  install_dashboard(s, options_.web_root);
  install_error_handlers(s);
  s.set_logger([this](const Request& req, const Response& res) {
    ++hub_.http_requests;
    spdlog::debug("{} {} -> {}", req.method, req.path, res.status);
  });
}

void Api::install_cluster_routes(httplib::Server& s) {
  s.Get("/api/v1/cluster", bind_member(this, &Api::cluster));
  s.Get("/api/v1/nodes", bind_member(this, &Api::nodes));
}

void Api::install_job_routes(httplib::Server& s) {
  s.Get("/api/v1/jobs", bind_member(this, &Api::jobs));
  s.Post("/api/v1/jobs", bind_member(this, &Api::submit));
  s.Get(R"(/api/v1/jobs/(\d{1,19}))", bind_member(this, &Api::job));
  s.Delete(R"(/api/v1/jobs/(\d{1,19}))",
           [this](const Request& req, Response& res) { job_action(req, res, "cancel"); });
  s.Post(R"(/api/v1/jobs/(\d{1,19})/(cancel|hold|release))",
         [this](const Request& req, Response& res) { job_action(req, res, req.matches[2].str()); });
  s.Get(R"(/api/v1/jobs/(\d{1,19})/logs)", bind_member(this, &Api::logs));
  s.Get(R"(/api/v1/jobs/(\d{1,19})/metrics)", bind_member(this, &Api::job_metrics));
  s.Get(R"(/api/v1/jobs/(\d{1,19})/series)", bind_member(this, &Api::series));
}

void Api::install_experiment_routes(httplib::Server& s) {
  s.Get("/api/v1/experiments", bind_member(this, &Api::experiments));
  s.Get(R"(/api/v1/experiments/([^/]+))", bind_member(this, &Api::experiment));
  s.Get(R"(/api/v1/experiments/([^/]+)/compare)",
        [this](const Request& req, Response& res) { compare(req, res, req.matches[1].str()); });
  s.Get("/api/v1/compare", [this](const Request& req, Response& res) { compare(req, res, ""); });
}

void Api::install_billing_routes(httplib::Server& s) {
  s.Get("/api/v1/usage", bind_member(this, &Api::usage));
  s.Get("/api/v1/accounts", bind_member(this, &Api::accounts));
  s.Get(R"(/api/v1/accounts/([^/]+)/invoice)",
        [this](const Request& req, Response& res) { invoice(req, res, req.matches[1].str()); });
  s.Get("/api/v1/invoices", [this](const Request& req, Response& res) { invoice(req, res, param(req, "account")); });
}

void Api::install_event_routes(httplib::Server& s) {
  s.Get("/api/v1/events", bind_member(this, &Api::events));
  s.Get("/api/v1/events/recent", bind_member(this, &Api::recent_events));
}

void Api::install_health_routes(httplib::Server& s) {
  s.Get("/api/v1/health", bind_member(this, &Api::health));
  s.Get("/metrics", bind_member(this, &Api::metrics));
}

void Api::cluster(const Request&, Response& res) {
  auto n = list_nodes(backends_);
  if (!n) return send_failure(res, n.status(), Service::kBroker);
  JobStats js;
  auto st = jobs_.read([&](const JobTable& t) { js = t.stats(); });
  if (!st.ok()) return send_failure(res, st, Service::kScheduler);
  auto ns = node_stats(bodies<fb::NodeList>(*n));
  send_json(res, 200, cluster_summary(ns, js));
}

void Api::nodes(const Request&, Response& res) {
  auto n = list_nodes(backends_);
  if (!n) return send_failure(res, n.status(), Service::kBroker);
  Json list = Json::array();
  for (const auto* l : bodies<fb::NodeList>(*n)) {
    if (l->nodes()) {
      for (const auto* node : *l->nodes()) list.push_back(node_json(*node));
    }
  }
  send_json(res, 200, {{"nodes", list}});
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
    JobStats js;
    auto st = jobs_.read([&](const JobTable& t) { js = t.stats(); });
    return st.ok() ? Result<JobStats>(std::move(js)) : Result<JobStats>(st);
  });
  auto spend = std::async(std::launch::async,
                          [this] { return query_usage(backends_, "", "", 0, 0, 0, "account", true); });
  auto ping = std::async(std::launch::async, [this] {
    return backends_.call_fresh(Service::kMetrics, fb::RequestBody::Ping,
                                [](auto& fbb) { return fb::CreatePing(fbb).Union(); });
  });
  MetricsInput in;
  auto up = [](const auto& r) { return r.ok() || r.status().code() != ErrorCode::Unavailable; };
  auto n = nodes.get();
  in.service_up[service_name(Service::kBroker)] = up(n);
  if (n) in.nodes = node_stats(bodies<fb::NodeList>(*n));
  auto j = jobs.get();
  in.service_up[service_name(Service::kScheduler)] = j.ok() || j.status().code() != ErrorCode::Unavailable;
  if (j) in.jobs = std::move(*j);
  auto s = spend.get();
  in.service_up[service_name(Service::kBilling)] = up(s);
  if (s) {
    std::vector<AccountSpend> list;
    for (const auto* u : bodies<fb::UsageReport>(*s)) {
      std::string currency = u->currency() ? u->currency()->str() : "";
      if (!u->rows()) continue;
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
  in.bus_events_rejected = hub_.events_rejected;
  in.job_lists_read = jobs_.seeds + jobs_.direct_reads;
  if (http_counters_) {
    in.http_refused = {{"deadline", http_counters_->timed_out.load()},
                       {"busy", http_counters_->rejected_busy.load()},
                       {"head_too_large", http_counters_->head_too_large.load()}};
  }
  res.set_content(render_metrics(in), "text/plain; version=0.0.4; charset=utf-8");
}

void install_gateway(httplib::Server& server, Auth& auth, Api& api) {
  server.set_read_timeout(10, 0);
  server.set_write_timeout(10, 0);
  server.set_payload_max_length(4u << 20);
  server.set_pre_routing_handler(
      [&auth](const httplib::Request& req, httplib::Response& res) { return auth.check(req, res); });
  auth.install(server);
  api.install(server);
  if (auto* front = dynamic_cast<HttpServer*>(&server)) api.set_http_counters(&front->counters());
}

}  // namespace trainyard::gateway

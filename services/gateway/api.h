// The HTTP surface of the gateway: REST under /api/v1, Server-Sent Events of
// job/node events and of log files, Prometheus /metrics, and the dashboard's
// static files. Handlers translate HTTP to the services' requests and their
// replies back to JSON; they keep no state beyond the EventHub, the JobCache
// and the open streams. The routes are spread over api.cc (overview, nodes,
// health, /metrics), routes_jobs.cc, routes_experiments.cc,
// routes_billing.cc and sse.cc.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "backends.h"
#include "event_hub.h"
#include "http_server.h"
#include "job_cache.h"
#include "stream_limits.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace trainyard::gateway {

class Auth;

struct ApiOptions {
  std::string web_root;               // the built dashboard (index.html + assets)
  size_t max_streams = 24;            // open SSE streams at most (each holds a worker thread)
  size_t max_streams_per_client = 4;  // open SSE streams per client address
  int64_t ops_max_age_ms = 60'000;    // ops.metrics reports older than this are left out
  int64_t keepalive_ms = 10'000;      // SSE comment lines that reveal dead clients
};

class Api {
 public:
  Api(Backends& backends, EventHub& hub, JobCache& jobs, ApiOptions options);
  void install(httplib::Server& server);
  // The HTTP front's refusals, for /metrics.
  void set_http_counters(const HttpServerCounters* counters) { http_counters_ = counters; }

 private:
  // The routes of install(), by resource, in the order they are matched.
  void install_cluster_routes(httplib::Server& server);     // /api/v1/cluster, /api/v1/nodes
  void install_job_routes(httplib::Server& server);         // /api/v1/jobs...
  void install_experiment_routes(httplib::Server& server);  // /api/v1/experiments..., /api/v1/compare
  void install_billing_routes(httplib::Server& server);     // /api/v1/usage, accounts, invoices
  void install_event_routes(httplib::Server& server);       // /api/v1/events...
  void install_health_routes(httplib::Server& server);      // /api/v1/health, /metrics

  void cluster(const httplib::Request& req, httplib::Response& res);
  void nodes(const httplib::Request& req, httplib::Response& res);
  void jobs(const httplib::Request& req, httplib::Response& res);
  void job(const httplib::Request& req, httplib::Response& res);
  void submit(const httplib::Request& req, httplib::Response& res);
  void job_action(const httplib::Request& req, httplib::Response& res, const std::string& action);
  void logs(const httplib::Request& req, httplib::Response& res);
  using LogReader = std::function<Result<rpc::Reply>(uint64_t offset, uint32_t max)>;
  void follow_log(const httplib::Request& req, httplib::Response& res, LogReader read, const std::string& agent,
                  uint64_t start);
  void job_metrics(const httplib::Request& req, httplib::Response& res);
  void series(const httplib::Request& req, httplib::Response& res);
  void experiments(const httplib::Request& req, httplib::Response& res);
  void experiment(const httplib::Request& req, httplib::Response& res);
  void compare(const httplib::Request& req, httplib::Response& res, const std::string& experiment);
  void usage(const httplib::Request& req, httplib::Response& res);
  void accounts(const httplib::Request& req, httplib::Response& res);
  void invoice(const httplib::Request& req, httplib::Response& res, const std::string& account);
  void events(const httplib::Request& req, httplib::Response& res);
  void recent_events(const httplib::Request& req, httplib::Response& res);
  void health(const httplib::Request& req, httplib::Response& res);
  void metrics(const httplib::Request& req, httplib::Response& res);

  // A stream slot for this request's client, or an error answered already.
  StreamLimits::Slot open_stream(const httplib::Request& req, httplib::Response& res);

  Backends& backends_;
  EventHub& hub_;
  JobCache& jobs_;
  ApiOptions options_;
  StreamLimits streams_;
  const HttpServerCounters* http_counters_ = nullptr;
};

// Sets up `server` as the gateway serves: its timeouts and body limit,
// `auth` before every request, then the login routes and the API.
void install_gateway(httplib::Server& server, Auth& auth, Api& api);

}  // namespace trainyard::gateway

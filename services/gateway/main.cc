// trainyard-gateway: the HTTP face of Trainyard. REST under /api/v1, live
// events (Server-Sent Events), Prometheus /metrics, and the web dashboard.
// It keeps no state: it asks the services and watches the bus.
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include <httplib.h>
#include <spdlog/spdlog.h>

#include "api.h"
#include "backends.h"
#include "bus_feed.h"
#include "event_hub.h"
#include "http_server.h"
#include "job_cache.h"
#include "util/runtime.h"
#include "util/service_main.h"

namespace {

// The dashboard next to the binary: <prefix>/bin/trainyard-gateway serves
// <prefix>/web/dist (the build tree's layout).
std::string default_web_root() {
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "";
  return (exe.parent_path().parent_path() / "web" / "dist").string();
}

trainyard::gateway::HttpServerOptions http_options(const trainyard::Config& config) {
  trainyard::gateway::HttpServerOptions o;
  o.threads = static_cast<size_t>(config.get_int("gateway.threads", 32, 4, 1024));
  o.max_queued = static_cast<size_t>(config.get_int("gateway.max_queued", 64, 0, 100'000));
  o.request_deadline_ms = config.get_int("gateway.request_deadline_ms", 30'000, 100, 3'600'000);
  o.max_connections = static_cast<size_t>(config.get_int("gateway.max_connections", 10'000, 1, 1'000'000));
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  trainyard::block_termination_signals();
  CLI::App app{"trainyard-gateway: REST API (/api/v1), live events (SSE), Prometheus /metrics and the web dashboard. "
               "Without CURVE (a local install) the user is taken from the X-Trainyard-User header."};
  trainyard::ServiceArgs args;
  trainyard::add_service_flags(app, args);
  std::string listen, web_root, ready_file;
  app.add_option("--listen", listen, "HOST:PORT to serve HTTP on; port 0 picks a free one (config gateway.listen, "
                                     "default 127.0.0.1:8080)");
  app.add_option("--web-root", web_root, "Directory of the built dashboard (config gateway.web_root)");
  app.add_option("--ready-file", ready_file, "Write {\"pid\", \"url\", \"endpoint\", \"port\"} here once serving");
  CLI11_PARSE(app, argc, argv);
  auto config = trainyard::load_service_config(args);
  trainyard::init_service_logging("gateway", args, config);

  using namespace trainyard::gateway;
  BackendOptions bo;
  ApiOptions ao;
  std::vector<std::string> bus_endpoints;
  HttpServerOptions ho;
  try {
    if (listen.empty()) listen = config.get_string("gateway.listen", "127.0.0.1:8080");
    if (web_root.empty()) web_root = config.get_string("gateway.web_root", default_web_root());
    bo.scheduler = config.get_string("scheduler.endpoint", "tcp://127.0.0.1:5560");
    bo.broker = config.get_string("broker.endpoint", "tcp://127.0.0.1:5561");
    bo.metrics = config.get_string("metrics.endpoint", "tcp://127.0.0.1:5562");
    bo.billing = config.get_string("billing.endpoint", "tcp://127.0.0.1:5563");
    bo.scheduler_principal = "service:" + config.get_string("scheduler.instance", "scheduler");
    bo.broker_principal = "service:" + config.get_string("broker.instance", "broker");
    bo.metrics_principal = "service:" + config.get_string("metrics.instance", "metrics");
    bo.billing_principal = "service:" + config.get_string("billing.instance", "billing");
    bo.timeout_ms = static_cast<int>(config.get_int("gateway.rpc_timeout_ms", 1500));
    bo.tries = static_cast<int>(config.get_int("gateway.rpc_tries", 2));
    bus_endpoints = config.get_strings("bus.backend");
    if (bus_endpoints.empty()) bus_endpoints = {"tcp://127.0.0.1:5551"};
    for (auto& e : bus_endpoints) e = connectable(e);
    ho = http_options(config);
    ao.web_root = web_root;
    ao.trust_user_header = config.get_bool("gateway.trust_user_header", true);
    ao.default_user = config.get_string("gateway.default_user", "");
    ao.admins = config.get_strings("gateway.admins");
    ao.max_streams = static_cast<size_t>(
        config.get_int("gateway.max_streams", std::max<int64_t>(1, static_cast<int64_t>(ho.threads) - 4), 1, static_cast<int64_t>(ho.threads)));
    ao.max_streams_per_client =
        static_cast<size_t>(config.get_int("gateway.max_streams_per_client", 4, 1, static_cast<int64_t>(ao.max_streams)));
    ao.ops_max_age_ms = config.get_int("gateway.ops_max_age_s", 60) * 1000;
    ao.keepalive_ms = config.get_int("gateway.keepalive_ms", 10'000);
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return 2;
  }
  auto colon = listen.rfind(':');
  if (colon == std::string::npos) {
    spdlog::error("gateway.listen '{}' must be HOST:PORT (e.g. 127.0.0.1:8080)", listen);
    return 2;
  }
  std::string host = listen.substr(0, colon);
  int port = 0;
  try {
    port = std::stoi(listen.substr(colon + 1));
  } catch (const std::exception&) {
    spdlog::error("gateway.listen '{}': the port is not a number", listen);
    return 2;
  }

  auto security = trainyard::security::options_from_config(config, "service:" + config.get_string("gateway.instance", "gateway"));
  if (!security) {
    spdlog::error("config: {}", security.status().message());
    return 2;
  }
  zmq::context_t ctx(1);
  auto site = trainyard::install_security(ctx, *security);
  if (!site) return 2;
  EventHub hub;
  Backends backends(ctx, bo);
  JobCache jobs(backends);
  BusFeed feed(ctx, bus_endpoints, hub, &jobs);
  Api api(backends, hub, jobs, ao);

  HttpServer server(ho);
  api.set_http_counters(&server.counters());
  server.set_keep_alive_max_count(100);
  server.set_read_timeout(10, 0);
  server.set_write_timeout(10, 0);
  server.set_payload_max_length(4u << 20);
  api.install(server);

  int bound = port == 0 ? server.bind_to_any_port(host) : (server.bind_to_port(host, port) ? port : -1);
  if (bound <= 0) {
    spdlog::error("cannot listen on {}: is the port in use? (set gateway.listen or --listen)", listen);
    return 1;
  }
  server.widen_backlog();
  feed.start();
  std::string url = "http://" + host + ":" + std::to_string(bound);
  std::thread signals([&] {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    int sig = 0;
    sigwait(&set, &sig);
    spdlog::info("signal {}: stopping", sig);
    hub.stop();
    server.stop();
  });
  signals.detach();
  spdlog::info("serving {} (dashboard from {}; scheduler {}, broker {}, metrics {}, billing {})", url, web_root,
               backends.endpoint(Service::kScheduler), backends.endpoint(Service::kBroker),
               backends.endpoint(Service::kMetrics), backends.endpoint(Service::kBilling));
  try {
    trainyard::write_ready_file(ready_file, {{"url", url}, {"endpoint", url}, {"port", bound}});
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return 1;
  }
  server.listen_after_bind();
  hub.stop();
  feed.stop();
  spdlog::info("stopped");
  return 0;
}

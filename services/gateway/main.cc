// trainyard-gateway: the HTTP face of Trainyard. REST under /api/v1, live
// events (Server-Sent Events), Prometheus /metrics, and the web dashboard,
// every route but /healthz behind authentication (auth.h). It asks the
// services and watches the bus; its own state is the API tokens (a small
// RocksDB) that `ty token` manages through its ROUTER (token_service.h).
#include <chrono>
#include <filesystem>
#include <thread>

#include <httplib.h>
#include <spdlog/spdlog.h>

#include "api.h"
#include "auth.h"
#include "backends.h"
#include "bus_feed.h"
#include "event_hub.h"
#include "http_server.h"
#include "job_cache.h"
#include "options.h"
#include "token_service.h"
#include "util/runtime.h"
#include "util/service_main.h"

namespace {

using namespace trainyard::gateway;

// Plain HTTP through the gateway's own front (slow clients cannot stall it),
// or HTTPS through cpp-httplib's OpenSSL server and a fixed thread pool.
std::unique_ptr<httplib::Server> make_server(const GatewayOptions& o) {
  if (o.tls_cert.empty()) {
    auto s = std::make_unique<HttpServer>(o.http);
    s->set_keep_alive_max_count(100);
    return s;
  }
  auto s = std::make_unique<httplib::SSLServer>(o.tls_cert.c_str(), o.tls_key.c_str());
  if (!s->is_valid()) {
    throw std::runtime_error("cannot load gateway.tls_cert '" + o.tls_cert + "' and gateway.tls_key '" + o.tls_key +
                             "' (PEM certificate and its private key)");
  }
  size_t threads = o.http.threads;
  s->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  s->set_keep_alive_max_count(100);
  return s;
}

int bind_server(httplib::Server& server, const GatewayOptions& o) {
  int bound = o.port == 0 ? server.bind_to_any_port(o.host) : (server.bind_to_port(o.host, o.port) ? o.port : -1);
  if (bound > 0) {
    if (auto* front = dynamic_cast<HttpServer*>(&server)) front->widen_backlog();
  }
  return bound;
}

// Serves until SIGTERM/SIGINT: HTTP on its threads, the token ROUTER on
// this one (the runtime, which commits token changes before answering).
int serve(const GatewayOptions& o, trainyard::storage::Store& store, const std::string& ready_file) {
  zmq::context_t ctx(1);
  auto site = trainyard::install_security(ctx, o.security);  // before any socket: they ask it
  if (!site) return 2;
  trainyard::Runtime runtime(&store);
  std::unique_ptr<TokenStore> tokens;
  try {
    tokens = std::make_unique<TokenStore>(store);
  } catch (const std::exception& e) {
    spdlog::error("cannot read the tokens in {}: {}", o.data, e.what());
    return 3;
  }
  Sessions sessions(o.session_ttl_s * 1000);
  Auth auth(*tokens, sessions, o.auth);
  std::unique_ptr<TokenService> token_service;
  std::unique_ptr<httplib::Server> server;
  try {
    token_service = std::make_unique<TokenService>(ctx, o.endpoint, runtime, *tokens, sessions,
                                                   [&auth](const std::string& u) { return auth.is_admin(u); });
    server = make_server(o);
  } catch (const zmq::error_t& e) {
    spdlog::error("cannot bind gateway.endpoint {}: {}", o.endpoint, e.what());
    return 1;
  } catch (const std::exception& e) {
    spdlog::error("config: {}", e.what());
    return 2;
  }
  EventHub hub;
  Backends backends(ctx, o.backends);
  JobCache jobs(backends);
  BusFeed feed(ctx, o.bus, hub, &jobs);
  Api api(backends, hub, jobs, o.api);
  install_gateway(*server, auth, api);
  int bound = bind_server(*server, o);
  if (bound <= 0) {
    spdlog::error("cannot listen on {}:{}: is the port in use? (set gateway.listen or --listen)", o.host, o.port);
    return 1;
  }
  feed.start();
  std::string url = (o.tls_cert.empty() ? "http://" : "https://") + o.host + ":" + std::to_string(bound);
  std::thread http([&] { server->listen_after_bind(); });
  // Ready means serving (and a stop() from here on reaches the accept loop).
  for (int i = 0; i < 5000 && !server->is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  spdlog::info("serving {} (dashboard from {}; tokens on {})", url, o.api.web_root, token_service->endpoint());
  int rc = 0;
  try {
    trainyard::write_ready_file(ready_file, {{"url", url}, {"endpoint", url}, {"port", bound}, {"rpc", token_service->endpoint()}});
    int sig = runtime.run();
    spdlog::info("signal {}: stopping", sig);
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    rc = 1;
  }
  hub.stop();
  server->stop();
  http.join();
  feed.stop();
  runtime.commit_now();
  spdlog::info("stopped");
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  trainyard::block_termination_signals();
  CLI::App app{"trainyard-gateway: REST API (/api/v1), live events (SSE), Prometheus /metrics and the web dashboard. "
               "Every route but /healthz needs a token (ty token create), a browser login, or a trusted proxy."};
  trainyard::ServiceArgs args;
  trainyard::add_service_flags(app, args);
  std::string listen, web_root, ready_file;
  app.add_option("--listen", listen, "HOST:PORT to serve HTTP on; port 0 picks a free one (config gateway.listen, "
                                     "default 127.0.0.1:8080)");
  app.add_option("--web-root", web_root, "Directory of the built dashboard (config gateway.web_root)");
  app.add_option("--ready-file", ready_file,
                 "Write {\"pid\", \"url\", \"endpoint\", \"port\", \"rpc\"} here once serving");
  CLI11_PARSE(app, argc, argv);
  auto config = trainyard::load_service_config(args);
  trainyard::init_service_logging("gateway", args, config);
  auto o = GatewayOptions::from_config(config, listen, web_root);
  if (!o) {
    spdlog::error("config: {}", o.status().message());
    return 2;
  }
  std::error_code ec;
  std::filesystem::create_directories(o->data, ec);
  std::filesystem::permissions(o->data, std::filesystem::perms::owner_all, ec);
  auto store = trainyard::storage::Store::open(o->data, trainyard::storage::Options{{TokenStore::kFamily}, {}, {}});
  if (!store) {
    spdlog::error("cannot open the store {}: {}", o->data, store.status().message());
    return 3;
  }
  return serve(*o, **store, ready_file);
}

// trainyard-gateway as a run_service shell: the HTTP face of Trainyard.
// REST under /api/v1, live events (Server-Sent Events), Prometheus
// /metrics and the web dashboard, every route but /healthz behind
// authentication (auth.h). It asks the services and watches the bus; its
// own state is the API tokens (a small RocksDB) that `ty token` manages
// through its ROUTER (token_service.h), served by the runtime's loop, which
// commits token changes before answering. HTTP runs on threads of its own.
#pragma once

#include <memory>
#include <string>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "api.h"
#include "auth.h"
#include "backends.h"
#include "bus_feed.h"
#include "event_hub.h"
#include "job_cache.h"
#include "options.h"
#include "sessions.h"
#include "token_service.h"
#include "tokens.h"
#include "util/run_service.h"

namespace trainyard::gateway {

class GatewayShell {
 public:
  static constexpr ServiceInfo kInfo{
      "gateway",
      "REST API (/api/v1), live events (SSE), Prometheus /metrics and the web dashboard. Every route but /healthz "
      "needs a token (ty token create), a browser login, or a trusted proxy."};
  static constexpr ConfigFlag kFlags[] = {
      {"--listen", "gateway.listen", "HOST:PORT to serve HTTP on; port 0 picks a free one (default 127.0.0.1:8080)"},
      {"--web-root", "gateway.web_root", "Directory of the built dashboard"},
  };
  using Options = GatewayOptions;
  static constexpr bool kPrivateData = true;  // API token hashes: owner-only
  static storage::Options store_options(const Options& o) {
    return storage::Options{{TokenStore::kFamily}, {}, o.durability};
  }

  // Reads the tokens (runtime_error: unreadable), binds the ROUTER
  // (zmq::error_t) and the HTTP port (BindError), and serves.
  GatewayShell(const ServiceEnv& env, Options options);
  ~GatewayShell();  // stops the streams, then HTTP, then the bus feed
  GatewayShell(const GatewayShell&) = delete;
  GatewayShell& operator=(const GatewayShell&) = delete;

  // {"url", "endpoint" (the url), "port", "rpc"}.
  nlohmann::json ready_info() const;

 private:
  Options o_;
  TokenStore tokens_;
  Sessions sessions_;
  Auth auth_;
  TokenService token_service_;
  std::unique_ptr<httplib::Server> server_;
  EventHub hub_;
  Backends backends_;
  JobCache jobs_;
  BusFeed feed_;
  Api api_;
  int port_ = 0;
  std::string url_;
  std::thread http_;
};

}  // namespace trainyard::gateway

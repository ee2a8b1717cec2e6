// Every gateway.* key (and the endpoints it talks to), read and checked in
// one place: deploy/trainyard.example.toml documents each.
#pragma once

#include <string>
#include <vector>

#include "api.h"
#include "auth.h"
#include "backends.h"
#include "http_server.h"
#include "security/site.h"
#include "storage/store.h"
#include "util/config.h"
#include "util/status.h"

namespace trainyard::gateway {

struct GatewayOptions {
  std::string host;  // from gateway.listen (or --listen)
  int port = 0;      // 0: any free port
  BackendOptions backends;
  std::vector<std::string> bus;  // bus.backend, connectable
  HttpServerOptions http;
  ApiOptions api;
  AuthOptions auth;
  std::string data;      // gateway.data: the RocksDB of API tokens
  storage::Durability durability = storage::Durability::kWal;
  std::string endpoint;  // gateway.endpoint: the ROUTER of `ty token` and login links
  int64_t session_ttl_s = 43'200;
  std::string tls_cert, tls_key;  // both or neither: HTTPS served directly
  std::string instance = "gateway";    // gateway.instance

  std::string principal() const { return "service:" + instance; }
  // InvalidArgument naming the key for a bad or contradictory value.
  static Result<GatewayOptions> from_config(const Config& config);
};

}  // namespace trainyard::gateway

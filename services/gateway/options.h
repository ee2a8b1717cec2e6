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
  std::string endpoint;  // gateway.endpoint: the ROUTER of `ty token` and login links
  int64_t session_ttl_s = 43'200;
  std::string tls_cert, tls_key;  // both or neither: HTTPS served directly
  security::SecurityOptions security;  // security.*: its key is service:<gateway.instance>

  // `listen` and `web_root` are the command line's (empty: from config).
  // InvalidArgument naming the key for a bad or contradictory value.
  static Result<GatewayOptions> from_config(const Config& config, std::string listen, std::string web_root);
};

}  // namespace trainyard::gateway

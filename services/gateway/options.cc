#include "options.h"

#include <algorithm>
#include <filesystem>

namespace trainyard::gateway {

namespace {

// The dashboard next to the binary: <prefix>/bin/trainyard-gateway serves
// <prefix>/web/dist (the build tree's layout).
std::string default_web_root() {
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "";
  return (exe.parent_path().parent_path() / "web" / "dist").string();
}

Status parse_listen(const std::string& listen, GatewayOptions& o) {
  auto colon = listen.rfind(':');
  if (colon == std::string::npos) return Status::invalid("gateway.listen '" + listen + "' must be HOST:PORT (e.g. 127.0.0.1:8080)");
  o.host = listen.substr(0, colon);
  std::string port = listen.substr(colon + 1);
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(port) > 65535) {
    return Status::invalid("gateway.listen '" + listen + "': the port is not a number in 0..65535");
  }
  o.port = std::stoi(port);
  return Status::success();
}

bool loopback(const std::string& host) { return host == "127.0.0.1" || host == "localhost" || host == "::1" || host == "[::1]"; }

Status read_auth(const Config& config, GatewayOptions& o) {
  AuthOptions& a = o.auth;
  a.admins = config.get_strings("gateway.admins");
  auto proxies = AddressList::parse(config.get_strings("gateway.trusted_proxies"), "gateway.trusted_proxies");
  if (!proxies) return proxies.status();
  a.trusted_proxies = std::move(*proxies);
  a.proxy_user_header = config.get_string("gateway.proxy_user_header", "");
  if (!a.proxy_user_header.empty() && a.trusted_proxies.empty()) {
    return Status::invalid("gateway.proxy_user_header is set but gateway.trusted_proxies is empty: list the "
                           "addresses of the proxies that set it");
  }
  auto scrapers = AddressList::parse(config.get_strings("gateway.metrics_allow"), "gateway.metrics_allow");
  if (!scrapers) return scrapers.status();
  a.metrics_allow = std::move(*scrapers);
  a.allowed_hosts = config.get_strings("gateway.allowed_hosts");
  // A gateway on loopback answers only to loopback names (no DNS rebinding).
  if (a.allowed_hosts.empty() && loopback(o.host)) a.allowed_hosts = {"127.0.0.1", "localhost", "::1"};
  a.allowed_origins = config.get_strings("gateway.allowed_origins");
  o.session_ttl_s = config.get_int("gateway.session_ttl_s", 43'200, 60, 30 * 86'400);
  o.tls_cert = config.get_string("gateway.tls_cert", "");
  o.tls_key = config.get_string("gateway.tls_key", "");
  if (o.tls_cert.empty() != o.tls_key.empty()) {
    return Status::invalid("gateway.tls_cert and gateway.tls_key go together: set both (HTTPS) or neither (HTTP)");
  }
  a.tls = !o.tls_cert.empty();
  return Status::success();
}

}  // namespace

Result<GatewayOptions> GatewayOptions::from_config(const Config& config) {
  GatewayOptions o;
  try {
    std::string listen = config.get_string("gateway.listen", "127.0.0.1:8080");
    if (auto st = parse_listen(listen, o); !st.ok()) return st;
    std::string web_root = config.get_string("gateway.web_root", default_web_root());
    o.backends.scheduler = config.get_string("scheduler.endpoint", "tcp://127.0.0.1:5560");
    o.backends.broker = config.get_string("broker.endpoint", "tcp://127.0.0.1:5561");
    o.backends.metrics = config.get_string("metrics.endpoint", "tcp://127.0.0.1:5562");
    o.backends.billing = config.get_string("billing.endpoint", "tcp://127.0.0.1:5563");
    o.backends.scheduler_principal = "service:" + config.get_string("scheduler.instance", "scheduler");
    o.backends.broker_principal = "service:" + config.get_string("broker.instance", "broker");
    o.backends.metrics_principal = "service:" + config.get_string("metrics.instance", "metrics");
    o.backends.billing_principal = "service:" + config.get_string("billing.instance", "billing");
    o.instance = config.get_string("gateway.instance", "gateway");
    o.backends.timeout_ms = static_cast<int>(config.get_int("gateway.rpc_timeout_ms", 1500, 10, 600'000));
    o.backends.tries = static_cast<int>(config.get_int("gateway.rpc_tries", 2, 1, 100));
    o.bus = config.get_strings("bus.backend");
    if (o.bus.empty()) o.bus = {"tcp://127.0.0.1:5551"};
    for (auto& e : o.bus) e = connectable(e);
    o.http.threads = static_cast<size_t>(config.get_int("gateway.threads", 32, 4, 1024));
    o.http.max_queued = static_cast<size_t>(config.get_int("gateway.max_queued", 64, 0, 100'000));
    o.http.request_deadline_ms = config.get_int("gateway.request_deadline_ms", 30'000, 100, 3'600'000);
    o.http.max_connections = static_cast<size_t>(config.get_int("gateway.max_connections", 10'000, 1, 1'000'000));
    auto threads = static_cast<int64_t>(o.http.threads);
    o.api.web_root = web_root;
    o.api.max_streams = static_cast<size_t>(
        config.get_int("gateway.max_streams", std::max<int64_t>(1, threads - 4), 1, threads));
    o.api.max_streams_per_client = static_cast<size_t>(
        config.get_int("gateway.max_streams_per_client", 4, 1, static_cast<int64_t>(o.api.max_streams)));
    o.api.ops_max_age_ms = config.get_int("gateway.ops_max_age_s", 60, 1, 86'400) * 1000;
    o.api.keepalive_ms = config.get_int("gateway.keepalive_ms", 10'000, 100, 600'000);
    o.data = config.get_string("gateway.data", "data/gateway");
    o.endpoint = config.get_string("gateway.endpoint", "tcp://127.0.0.1:5564");
    if (auto st = read_auth(config, o); !st.ok()) return st;
  } catch (const std::exception& e) {
    return Status::invalid(e.what());
  }
  return o;
}

}  // namespace trainyard::gateway

#include "shell.h"

#include <chrono>

#include <spdlog/spdlog.h>

#include "http_server.h"

namespace trainyard::gateway {

namespace {

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
    throw ConfigError("cannot load gateway.tls_cert '" + o.tls_cert + "' and gateway.tls_key '" + o.tls_key +
                      "' (PEM certificate and its private key)");
  }
  size_t threads = o.http.threads;
  s->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  s->set_keep_alive_max_count(100);
  return s;
}

// The port bound (BindError when it cannot be).
int bind_server(httplib::Server& server, const GatewayOptions& o) {
  int bound = o.port == 0 ? server.bind_to_any_port(o.host) : (server.bind_to_port(o.host, o.port) ? o.port : -1);
  if (bound <= 0) {
    throw BindError("cannot listen on " + o.host + ":" + std::to_string(o.port) +
                    ": is the port in use? (set gateway.listen or --listen)");
  }
  if (auto* front = dynamic_cast<HttpServer*>(&server)) front->widen_backlog();
  return bound;
}

TokenStore load_tokens(storage::Store& store, const std::string& data) {
  try {
    return TokenStore(store);
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot read the tokens in " + data + ": " + e.what());
  }
}

TokenService bind_tokens(const ServiceEnv& env, const GatewayOptions& o, TokenStore& tokens, Sessions& sessions,
                         Auth& auth) {
  try {
    return TokenService(env.ctx, o.endpoint, env.runtime, tokens, sessions,
                        [&auth](const std::string& u) { return auth.is_admin(u); });
  } catch (const zmq::error_t& e) {
    throw BindError("gateway.endpoint " + o.endpoint + ": " + e.what());
  }
}

}  // namespace

GatewayShell::GatewayShell(const ServiceEnv& env, Options options)
    : o_(std::move(options)),
      tokens_(load_tokens(env.store, o_.data)),
      sessions_(o_.session_ttl_s * 1000),
      auth_(tokens_, sessions_, o_.auth),
      token_service_(bind_tokens(env, o_, tokens_, sessions_, auth_)),
      server_(make_server(o_)),
      backends_(env.ctx, o_.backends),
      jobs_(backends_),
      feed_(env.ctx, o_.bus, hub_, &jobs_),
      api_(backends_, hub_, jobs_, o_.api) {
  install_gateway(*server_, auth_, api_);
  port_ = bind_server(*server_, o_);
  feed_.start();
  url_ = (o_.tls_cert.empty() ? "http://" : "https://") + o_.host + ":" + std::to_string(port_);
  http_ = std::thread([this] { server_->listen_after_bind(); });
  // Ready means serving (and a stop() from here on reaches the accept loop).
  for (int i = 0; i < 5000 && !server_->is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  spdlog::info("serving {} (dashboard from {}; tokens on {})", url_, o_.api.web_root, token_service_.endpoint());
}

GatewayShell::~GatewayShell() {
  hub_.stop();
  server_->stop();
  http_.join();
  feed_.stop();
}

nlohmann::json GatewayShell::ready_info() const {
  return {{"url", url_}, {"endpoint", url_}, {"port", port_}, {"rpc", token_service_.endpoint()}};
}

}  // namespace trainyard::gateway

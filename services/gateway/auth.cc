// The gateway's front door: every request's credentials, host and origin
// checked before its route runs (see auth.h for the rules).
#include "auth.h"

#include <openssl/crypto.h>

#include <algorithm>

#include <spdlog/spdlog.h>

#include "http_util.h"
#include "util/clock.h"

namespace trainyard::gateway {

using httplib::Request;
using httplib::Response;
using HR = httplib::Server::HandlerResponse;

namespace {

thread_local Identity t_identity;
thread_local bool t_has_identity = false;

bool changes_state(const std::string& method) {
  return method == "POST" || method == "PUT" || method == "PATCH" || method == "DELETE";
}

// Open to anyone: the login page, its form, its static assets, the health check.
bool is_public(const Request& req) {
  const std::string& p = req.path;
  if (p == "/healthz" || p == "/login") return true;
  if (req.method != "GET" && req.method != "HEAD") return false;
  return p == "/login.html" || p == "/login.css" || p == "/favicon.ico";
}

// "host:port", "[::1]:8080" or "host" -> the host part, lowercased.
std::string host_name(std::string host) {
  if (!host.empty() && host[0] == '[') {
    auto end = host.find(']');
    host = end == std::string::npos ? host : host.substr(1, end - 1);
  } else if (std::count(host.begin(), host.end(), ':') == 1) {
    host = host.substr(0, host.find(':'));
  }
  std::transform(host.begin(), host.end(), host.begin(), [](unsigned char c) { return std::tolower(c); });
  return host;
}

bool same_secret(const std::string& a, const std::string& b) {
  return !a.empty() && a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

HR refuse(Response& res, const ApiError& e) {
  if (e.http == 401) res.set_header("WWW-Authenticate", "Bearer realm=\"trainyard\"");
  send_error(res, e);
  return HR::Handled;
}

ApiError unauthorized(const std::string& why, const std::string& field = "") {
  return ApiError{401, why, field, "", "Unauthenticated"};
}

ApiError forbidden(const std::string& why, const std::string& field = "") {
  return ApiError{403, why, field, "", "PermissionDenied"};
}

}  // namespace

std::string cookie_value(const Request& req, const std::string& name) {
  size_t n = req.get_header_value_count("Cookie");
  for (size_t i = 0; i < n; ++i) {
    for (const auto& part : split(req.get_header_value("Cookie", i), ';')) {
      auto start = part.find_first_not_of(' ');
      if (start == std::string::npos) continue;
      auto eq = part.find('=', start);
      if (eq != std::string::npos && part.compare(start, eq - start, name) == 0) return part.substr(eq + 1);
    }
  }
  return "";
}

Auth::Auth(TokenStore& tokens, Sessions& sessions, AuthOptions options)
    : tokens_(tokens), sessions_(sessions), options_(std::move(options)) {}

const Identity* Auth::current() { return t_has_identity ? &t_identity : nullptr; }

bool Auth::is_admin(const std::string& user) const {
  return std::find(options_.admins.begin(), options_.admins.end(), user) != options_.admins.end();
}

HR Auth::check(const Request& req, Response& res) {
  t_has_identity = false;
  if (auto e = check_host(req)) return refuse(res, *e);
  bool writes = changes_state(req.method);
  if (writes) {
    if (auto e = check_origin(req)) return refuse(res, *e);
  }
  if (is_public(req)) return HR::Unhandled;
  bool page = req.method == "GET" && (req.path == "/" || req.path == "/index.html");
  if (page && req.has_param("token")) {
    redeem_link(req, res);
    return HR::Handled;
  }
  if (req.path == "/metrics" && options_.metrics_allow.contains(req.remote_addr)) {
    t_identity = Identity{"", false, "scrape", ""};
    t_has_identity = true;
    return HR::Unhandled;
  }
  ApiError why;
  auto id = identify(req, why);
  if (!id) {
    if (page && !req.has_header("Authorization")) {  // a browser without a session: the login page
      res.set_redirect("login.html", 303);
      return HR::Handled;
    }
    return refuse(res, why);
  }
  // A browser's ambient credentials (cookie, proxy header) write only with
  // proof that this origin's page sent the request. /logout checks its form.
  if (writes && id->via == "session" && req.path != "/logout" &&
      !same_secret(req.get_header_value("X-CSRF-Token"), id->csrf)) {
    return refuse(res, forbidden("the X-CSRF-Token header is missing or does not match this session's CSRF token "
                                 "(the dashboard sends it from the ty_csrf cookie)",
                                 "X-CSRF-Token"));
  }
  if (writes && id->via == "proxy" && !req.has_header("Origin")) {
    return refuse(res, forbidden("a write through the login proxy must carry an Origin header of this gateway", "Origin"));
  }
  t_identity = std::move(*id);
  t_has_identity = true;
  return HR::Unhandled;
}

std::optional<ApiError> Auth::check_host(const Request& req) const {
  if (options_.allowed_hosts.empty()) return std::nullopt;
  std::string host = host_name(req.get_header_value("Host"));
  if (std::find(options_.allowed_hosts.begin(), options_.allowed_hosts.end(), host) != options_.allowed_hosts.end()) {
    return std::nullopt;
  }
  return forbidden("Host '" + req.get_header_value("Host") +
                       "' is not a name of this gateway (gateway.allowed_hosts); use the address the gateway printed",
                   "Host");
}

std::optional<ApiError> Auth::check_origin(const Request& req) const {
  if (req.get_header_value("Sec-Fetch-Site") == "cross-site") {
    return forbidden("cross-origin request refused: a page of another site sent it (Sec-Fetch-Site: cross-site)",
                     "Origin");
  }
  std::string origin = req.get_header_value("Origin");
  if (origin.empty()) return std::nullopt;  // not from a browser page (curl, ty); browsers always send it here
  std::string host = req.get_header_value("Host");
  // Behind a TLS-terminating proxy the browser's origin is https:// while
  // the gateway speaks plain HTTP: the same host either way is this gateway.
  if (!host.empty() && (origin == "http://" + host || origin == "https://" + host)) return std::nullopt;
  if (std::find(options_.allowed_origins.begin(), options_.allowed_origins.end(), origin) !=
      options_.allowed_origins.end()) {
    return std::nullopt;
  }
  return forbidden("cross-origin request refused: Origin '" + origin + "' is not this gateway (Host '" + host +
                       "'); list it in gateway.allowed_origins to allow it",
                   "Origin");
}

std::optional<Identity> Auth::identify(const Request& req, ApiError& why) {
  int64_t now_ns = SystemClock().now_ns();
  if (req.has_header("Authorization")) {
    std::string a = req.get_header_value("Authorization");
    if (a.rfind("Bearer ", 0) != 0) {
      why = unauthorized("the Authorization header must be 'Bearer <token>' (make a token with `ty token create`)",
                         "Authorization");
      return std::nullopt;
    }
    auto t = tokens_.verify(a.substr(7), now_ns);
    if (!t) {
      why = unauthorized("the bearer token is unknown, revoked or expired (`ty token list` shows yours)",
                         "Authorization");
      return std::nullopt;
    }
    return Identity{t->user, is_admin(t->user), "token", ""};
  }
  const std::string& ph = options_.proxy_user_header;
  if (!ph.empty() && req.has_header(ph)) {
    if (!options_.trusted_proxies.contains(req.remote_addr)) {
      spdlog::warn("refused {} from {}: not a trusted proxy (gateway.trusted_proxies)", ph, req.remote_addr);
      why = unauthorized("the " + ph + " header is accepted only from the trusted proxies (gateway.trusted_proxies); " +
                             req.remote_addr + " is not one",
                         ph);
      return std::nullopt;
    }
    std::string user = req.get_header_value(ph);
    if (!valid_user(user)) {
      why = unauthorized("the proxy's " + ph + " header '" + user + "' is not a valid user name", ph);
      return std::nullopt;
    }
    return Identity{user, is_admin(user), "proxy", ""};
  }
  if (std::string sid = cookie_value(req, "ty_session"); !sid.empty()) {
    auto s = sessions_.find(sid, SystemClock().now_ms());
    if (!s) {
      why = unauthorized("your session has expired or ended: log in again at /login.html", "ty_session");
      return std::nullopt;
    }
    return Identity{s->user, is_admin(s->user), "session", s->csrf};
  }
  std::string hint = req.has_header("X-Trainyard-User") ? " (X-Trainyard-User is no longer trusted)" : "";
  why = unauthorized("authentication required" + hint +
                     ": send 'Authorization: Bearer <token>' (make one with `ty token create`) or log in at /login.html");
  return std::nullopt;
}

}  // namespace trainyard::gateway

// Who is calling the gateway, and whether they may. Every request passes
// Auth::check (httplib's pre-routing handler) before any route runs:
//   - /healthz, the login page and its form are open to anyone;
//   - /metrics takes a scrape address from gateway.metrics_allow, or a token;
//   - everything else needs an identity: `Authorization: Bearer <token>`,
//     the `ty_session` cookie of a browser login, or (trusted-proxy mode) the
//     gateway.proxy_user_header set by a proxy in gateway.trusted_proxies;
//     GET /?token=<one-time login link> logs a browser in and redirects;
//   - the Host header must name this gateway (gateway.allowed_hosts), and a
//     state-changing request (POST, PUT, PATCH, DELETE) must come from this
//     origin (Origin header) and, from a browser session, carry the session's
//     CSRF token in X-CSRF-Token.
// No identity is 401, a refused origin, host or CSRF token is 403, each with
// a JSON error that says why. The identity of the request being served is
// Auth::current() (a thread-local: httplib runs the check and the route on
// the same worker thread).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <httplib.h>

#include "core/address_list.h"
#include "core/api_error.h"
#include "sessions.h"
#include "tokens.h"

namespace trainyard::gateway {

struct AuthOptions {
  std::vector<std::string> admins;       // users with the admin role (gateway.admins)
  AddressList trusted_proxies;           // gateway.trusted_proxies
  std::string proxy_user_header;         // gateway.proxy_user_header; "" : trusted-proxy mode off
  AddressList metrics_allow;             // gateway.metrics_allow: scrapers that need no token
  std::vector<std::string> allowed_hosts;    // Host header names (no port); empty: any
  std::vector<std::string> allowed_origins;  // other origins that may send writes ("https://x.org")
  bool tls = false;                      // cookies get Secure
};

struct Identity {
  std::string user;
  bool admin = false;
  std::string via;   // "token", "session", "proxy", "scrape"
  std::string csrf;  // a session's CSRF token
};

class Auth {
 public:
  Auth(TokenStore& tokens, Sessions& sessions, AuthOptions options);

  // httplib's pre-routing handler: Handled when it has answered (a refusal or
  // a login-link redirect), Unhandled to let the route run as current().
  httplib::Server::HandlerResponse check(const httplib::Request& req, httplib::Response& res);
  // /login (POST), /logout (POST), /api/v1/session (GET), /healthz (GET).
  void install(httplib::Server& server);

  // The identity of the request this thread is serving (null: none).
  static const Identity* current();
  bool is_admin(const std::string& user) const;

 private:
  std::optional<ApiError> check_host(const httplib::Request& req) const;
  std::optional<ApiError> check_origin(const httplib::Request& req) const;
  // Who the credentials name; nullopt and `why` set when there are none or
  // they are refused.
  std::optional<Identity> identify(const httplib::Request& req, ApiError& why);
  bool redeem_link(const httplib::Request& req, httplib::Response& res);
  void login(const httplib::Request& req, httplib::Response& res);
  void logout(const httplib::Request& req, httplib::Response& res);
  void start_session(httplib::Response& res, const std::string& user);
  std::string cookie(const std::string& name, const std::string& value, int64_t max_age_s, bool http_only) const;

  TokenStore& tokens_;
  Sessions& sessions_;
  AuthOptions options_;
};

// The value of cookie `name` in the request's Cookie headers ("" if none).
std::string cookie_value(const httplib::Request& req, const std::string& name);

}  // namespace trainyard::gateway

// The routes of logging in and out: the login form (POST /login), logout,
// the one-time login link (GET /?token=...), who the browser is
// (GET /api/v1/session) and the open health check (GET /healthz).
#include <cctype>

#include <spdlog/spdlog.h>

#include "auth.h"
#include "http_util.h"
#include "util/clock.h"

namespace trainyard::gateway {

using httplib::Request;
using httplib::Response;

namespace {

// A browser form posts application/x-www-form-urlencoded (httplib parses it
// into params); a script may post JSON.
std::string form_field(const Request& req, const char* name) {
  if (req.get_header_value("Content-Type").rfind("application/json", 0) == 0) {
    auto j = nlohmann::json::parse(req.body, nullptr, false);
    if (j.is_object() && j.contains(name) && j[name].is_string()) return j[name].get<std::string>();
    return "";
  }
  return req.get_param_value(name);
}

std::string percent_encoded(const std::string& s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

bool wants_html(const Request& req) {
  return req.get_header_value("Content-Type").rfind("application/x-www-form-urlencoded", 0) == 0;
}

}  // namespace

std::string Auth::cookie(const std::string& name, const std::string& value, int64_t max_age_s, bool http_only) const {
  std::string c = name + "=" + value + "; Path=/; Max-Age=" + std::to_string(max_age_s) + "; SameSite=Strict";
  if (http_only) c += "; HttpOnly";
  if (options_.tls) c += "; Secure";
  return c;
}

void Auth::start_session(Response& res, const std::string& user) {
  auto s = sessions_.create(user, SystemClock().now_ms());
  int64_t age = sessions_.ttl_ms() / 1000;
  res.set_header("Set-Cookie", cookie("ty_session", s.id, age, true));
  // Readable by the dashboard's script, which echoes it in X-CSRF-Token.
  res.headers.emplace("Set-Cookie", cookie("ty_csrf", s.csrf, age, false));
  spdlog::info("user {} logged in (session until {} s from now)", user, age);
}

void Auth::install(httplib::Server& s) {
  // web/public/login.html is served from gateway.web_root when the dashboard
  // is built (files come before routes); without it, this bare form.
  s.Get("/login.html", [](const Request&, Response& res) {
    res.set_content("<!doctype html><meta charset=utf-8><title>Trainyard: log in</title><h1>Trainyard</h1>"
                    "<form method=post action=login><p><label>User <input name=user required></label>"
                    "<p><label>API token <input name=token type=password required></label>"
                    "<p><button type=submit>Log in</button></form>"
                    "<p>No token yet? Run <code>ty token create</code>.",
                    "text/html; charset=utf-8");
  });
  s.Get("/healthz", [](const Request&, Response& res) { send_json(res, 200, {{"ok", true}}); });
  s.Post("/login", [this](const Request& req, Response& res) { login(req, res); });
  s.Post("/logout", [this](const Request& req, Response& res) { logout(req, res); });
  s.Get("/api/v1/session", [](const Request&, Response& res) {
    const Identity* id = current();
    send_json(res, 200, {{"user", id->user}, {"admin", id->admin}, {"via", id->via}, {"csrf", id->csrf}});
  });
}

bool Auth::redeem_link(const Request& req, Response& res) {
  auto user = sessions_.redeem_link(req.get_param_value("token"), SystemClock().now_ms());
  if (!user) {
    send_error(res, ApiError{401, "this login link is used or expired: run `ty local status` (or ask the gateway's "
                                  "owner) for a new one, or log in at /login.html with a token",
                             "token", "", "Unauthenticated"});
    return false;
  }
  start_session(res, *user);
  // Drop the secret from the address bar and the history.
  res.set_redirect("/", 303);
  return true;
}

void Auth::login(const Request& req, Response& res) {
  std::string user = form_field(req, "user");
  std::string token = form_field(req, "token");
  std::optional<TokenInfo> t;
  if (!token.empty()) t = tokens_.verify(token, SystemClock().now_ns());
  std::string why;
  if (user.empty() || token.empty()) {
    why = "give your user name and one of your API tokens (`ty token create`)";
  } else if (!t) {
    why = "the token is unknown, revoked or expired";
  } else if (t->user != user) {
    why = "the token does not belong to user '" + user + "'";
  }
  if (!why.empty()) {
    spdlog::warn("login refused for '{}' from {}: {}", user, req.remote_addr, why);
    if (wants_html(req)) return res.set_redirect("login.html?error=" + percent_encoded(why), 303);
    return send_error(res, ApiError{401, "login refused: " + why, user.empty() ? "user" : "token", "", "Unauthenticated"});
  }
  start_session(res, user);
  if (wants_html(req)) return res.set_redirect("/", 303);
  send_json(res, 200, {{"user", user}});
}

void Auth::logout(const Request& req, Response& res) {
  const Identity* id = current();
  if (id->via == "session") {
    std::string csrf = req.has_header("X-CSRF-Token") ? req.get_header_value("X-CSRF-Token") : form_field(req, "csrf");
    if (csrf != id->csrf) {
      return send_error(res, ApiError{403, "logout needs this session's CSRF token (X-CSRF-Token or the form's csrf)",
                                      "X-CSRF-Token", "", "PermissionDenied"});
    }
    sessions_.erase(cookie_value(req, "ty_session"));
  }
  res.set_header("Set-Cookie", cookie("ty_session", "", 0, true));
  res.headers.emplace("Set-Cookie", cookie("ty_csrf", "", 0, false));
  if (wants_html(req)) return res.set_redirect("login.html", 303);
  send_json(res, 200, {{"logged_out", true}});
}

}  // namespace trainyard::gateway

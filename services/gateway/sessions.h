// Browser sessions and one-time login links, in memory (a restarted gateway
// asks browsers to log in again). A session is what the `ty_session` cookie
// names: a user, a CSRF token the dashboard echoes in X-CSRF-Token on every
// state-changing request, and an expiry. A login link is a secret that makes
// one session once (`ty local up` prints http://127.0.0.1:PORT/?token=...,
// as Jupyter does). Only hashes of both secrets are kept.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>

namespace trainyard::gateway {

struct Session {
  std::string id;  // the cookie's value (returned by create only)
  std::string user;
  std::string csrf;
  int64_t expires_ms = 0;
};

class Sessions {
 public:
  explicit Sessions(int64_t ttl_ms) : ttl_ms_(ttl_ms) {}

  Session create(const std::string& user, int64_t now_ms);
  // The live session with this cookie value; an expired one is dropped.
  std::optional<Session> find(const std::string& id, int64_t now_ms);
  void erase(const std::string& id);

  // A one-time login link for `user`, valid for ttl_ms.
  std::string create_link(const std::string& user, int64_t ttl_ms, int64_t now_ms);
  // The user of an unused, unexpired link; the link is spent either way.
  std::optional<std::string> redeem_link(const std::string& secret, int64_t now_ms);

  int64_t ttl_ms() const { return ttl_ms_; }
  size_t size() const;

 private:
  void prune(int64_t now_ms);  // under mu_

  const int64_t ttl_ms_;
  mutable std::mutex mu_;
  std::map<std::string, Session> sessions_;  // by sha256 of the id
  std::map<std::string, std::pair<std::string, int64_t>> links_;  // sha256 -> (user, expires_ms)
  int64_t last_prune_ms_ = 0;
};

}  // namespace trainyard::gateway

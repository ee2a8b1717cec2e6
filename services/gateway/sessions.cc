#include "sessions.h"

#include "tokens.h"

namespace trainyard::gateway {

Session Sessions::create(const std::string& user, int64_t now_ms) {
  Session s{random_hex(32), user, random_hex(16), now_ms + ttl_ms_};
  std::lock_guard lock(mu_);
  prune(now_ms);
  Session stored = s;
  stored.id.clear();
  sessions_[sha256_hex(s.id)] = stored;
  return s;
}

std::optional<Session> Sessions::find(const std::string& id, int64_t now_ms) {
  if (id.size() != 64) return std::nullopt;
  std::string key = sha256_hex(id);
  std::lock_guard lock(mu_);
  auto it = sessions_.find(key);
  if (it == sessions_.end()) return std::nullopt;
  if (now_ms >= it->second.expires_ms) {
    sessions_.erase(it);
    return std::nullopt;
  }
  Session s = it->second;
  s.id = id;
  return s;
}

void Sessions::erase(const std::string& id) {
  std::string key = sha256_hex(id);
  std::lock_guard lock(mu_);
  sessions_.erase(key);
}

std::string Sessions::create_link(const std::string& user, int64_t ttl_ms, int64_t now_ms) {
  std::string secret = random_hex(32);
  std::lock_guard lock(mu_);
  prune(now_ms);
  links_[sha256_hex(secret)] = {user, now_ms + ttl_ms};
  return secret;
}

std::optional<std::string> Sessions::redeem_link(const std::string& secret, int64_t now_ms) {
  if (secret.size() != 64) return std::nullopt;
  std::string key = sha256_hex(secret);
  std::lock_guard lock(mu_);
  auto it = links_.find(key);
  if (it == links_.end()) return std::nullopt;
  auto [user, expires] = it->second;
  links_.erase(it);
  if (now_ms >= expires) return std::nullopt;
  return user;
}

size_t Sessions::size() const {
  std::lock_guard lock(mu_);
  return sessions_.size();
}

void Sessions::prune(int64_t now_ms) {
  if (now_ms - last_prune_ms_ < 60'000) return;
  last_prune_ms_ = now_ms;
  std::erase_if(sessions_, [&](const auto& kv) { return now_ms >= kv.second.expires_ms; });
  std::erase_if(links_, [&](const auto& kv) { return now_ms >= kv.second.second; });
}

}  // namespace trainyard::gateway

#include "tokens.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <mutex>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "storage/keys.h"

namespace trainyard::gateway {

namespace {

std::string hex(const unsigned char* p, size_t n) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    out += kDigits[p[i] >> 4];
    out += kDigits[p[i] & 15];
  }
  return out;
}

std::string record(const TokenInfo& t) {
  return nlohmann::json{{"user", t.user},
                        {"name", t.name},
                        {"created_ns", t.created_ns},
                        {"expires_ns", t.expires_ns},
                        {"hash", t.hash}}
      .dump();
}

}  // namespace

std::string random_hex(size_t n) {
  std::vector<unsigned char> buf(n);
  if (RAND_bytes(buf.data(), static_cast<int>(n)) != 1) throw std::runtime_error("RAND_bytes failed: no randomness");
  return hex(buf.data(), n);
}

std::string sha256_hex(const std::string& text) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(text.data(), text.size(), md, &len, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("EVP_Digest(sha256) failed");
  }
  return hex(md, len);
}

TokenStore::TokenStore(storage::Store& store) : store_(store), cf_(store.cf(kFamily)) {
  value_or_throw(store_.scan(cf_, "", "", [&](std::string_view key, std::string_view value) {
    TokenInfo t;
    t.id = storage::KeyReader(key).u64();
    auto j = nlohmann::json::parse(value, nullptr, false);
    if (!j.is_object() || !j.contains("hash") || !j["hash"].is_string()) {
      throw std::runtime_error("api_tokens: the record of token " + std::to_string(t.id) + " is unreadable");
    }
    t.user = j.value("user", "");
    t.name = j.value("name", "");
    t.created_ns = j.value("created_ns", int64_t{0});
    t.expires_ns = j.value("expires_ns", int64_t{0});
    t.hash = j["hash"].get<std::string>();
    by_hash_[t.hash] = t.id;
    next_id_ = std::max(next_id_, t.id + 1);
    by_id_[t.id] = std::move(t);
    return true;
  }));
}

std::pair<TokenInfo, std::string> TokenStore::create(storage::Batch& batch, const std::string& user,
                                                     const std::string& name, int64_t expires_ns, int64_t now_ns) {
  std::string secret = "tyt_" + random_hex(32);
  std::unique_lock lock(mu_);
  TokenInfo t{next_id_++, user, name, now_ns, expires_ns, 0, sha256_hex(secret)};
  batch.put(cf_, storage::Key().u64(t.id), record(t));
  by_hash_[t.hash] = t.id;
  by_id_[t.id] = t;
  return {t, secret};
}

bool TokenStore::revoke(storage::Batch& batch, uint64_t id) {
  std::unique_lock lock(mu_);
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return false;
  batch.del(cf_, storage::Key().u64(id));
  by_hash_.erase(it->second.hash);
  by_id_.erase(it);
  return true;
}

std::optional<TokenInfo> TokenStore::get(uint64_t id) const {
  std::shared_lock lock(mu_);
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return std::nullopt;
  return it->second;
}

std::vector<TokenInfo> TokenStore::list(const std::string& user) const {
  std::shared_lock lock(mu_);
  std::vector<TokenInfo> out;
  for (const auto& [id, t] : by_id_) {
    if (user.empty() || t.user == user) out.push_back(t);
  }
  return out;
}

std::optional<TokenInfo> TokenStore::verify(const std::string& secret, int64_t now_ns) {
  if (secret.size() < 8 || secret.size() > 256) return std::nullopt;
  std::string hash = sha256_hex(secret);
  std::unique_lock lock(mu_);
  auto h = by_hash_.find(hash);
  if (h == by_hash_.end()) return std::nullopt;
  TokenInfo& t = by_id_.at(h->second);
  if (t.expires_ns != 0 && now_ns >= t.expires_ns) return std::nullopt;
  t.last_used_ns = now_ns;
  return t;
}

}  // namespace trainyard::gateway

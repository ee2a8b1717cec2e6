// Personal API tokens: `ty token create` makes one, the gateway accepts it as
// `Authorization: Bearer <token>` (and in the browser login form). A token is
// 32 random bytes shown once; only its SHA-256 is kept, in the gateway's own
// RocksDB (column family "api_tokens"), so a copy of the store lets nobody in.
// Lookups come from every HTTP worker thread; changes come from the gateway's
// request loop (token_service.cc), which commits them.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "storage/store.h"

namespace trainyard::gateway {

// `n` random bytes from the OS's CSPRNG (OpenSSL RAND_bytes), as lowercase hex.
std::string random_hex(size_t n);
// SHA-256 of `text`, as lowercase hex.
std::string sha256_hex(const std::string& text);

struct TokenInfo {
  uint64_t id = 0;
  std::string user;
  std::string name;
  int64_t created_ns = 0;
  int64_t expires_ns = 0;  // 0: never
  int64_t last_used_ns = 0;  // in memory only: since this gateway started
  std::string hash;        // sha256_hex of the secret
};

class TokenStore {
 public:
  // The column family the store must have been opened with.
  static constexpr const char* kFamily = "api_tokens";
  // Reads every token from `store` (throws std::runtime_error on an unreadable record).
  explicit TokenStore(storage::Store& store);

  // Writes a new token into `batch` and returns it with its secret (the only
  // time the secret exists outside the caller).
  std::pair<TokenInfo, std::string> create(storage::Batch& batch, const std::string& user, const std::string& name,
                                           int64_t expires_ns, int64_t now_ns);
  // Removes token `id` (into `batch`); false when there is none.
  bool revoke(storage::Batch& batch, uint64_t id);
  std::optional<TokenInfo> get(uint64_t id) const;
  // Tokens of `user` ("" : every user's), oldest first.
  std::vector<TokenInfo> list(const std::string& user) const;
  // The live token whose secret this is (not expired), and records its use.
  std::optional<TokenInfo> verify(const std::string& secret, int64_t now_ns);

 private:
  storage::Store& store_;
  storage::Cf cf_;
  mutable std::shared_mutex mu_;
  std::map<uint64_t, TokenInfo> by_id_;
  std::map<std::string, uint64_t> by_hash_;
  uint64_t next_id_ = 1;
};

}  // namespace trainyard::gateway

// How many live streams (SSE: events, log follows) the gateway keeps open:
// in total, because each holds a worker thread, and per client address, so
// that one client cannot take every slot. A slot is held for as long as the
// stream's content provider lives.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "core/api_error.h"

namespace trainyard::gateway {

class StreamLimits {
 public:
  // `open_gauge` follows the number of open streams (for /metrics).
  StreamLimits(size_t max_total, size_t max_per_client, std::atomic<uint64_t>& open_gauge);

  using Slot = std::shared_ptr<void>;
  // A slot for a stream from `client`, or nullptr and `error` set to a 429
  // (this client is over its limit) or a 503 (the gateway is full).
  Slot open(const std::string& client, std::optional<ApiError>* error);

  size_t open_for(const std::string& client) const;

 private:
  void close(const std::string& client);

  const size_t max_total_;
  const size_t max_per_client_;
  std::atomic<uint64_t>& open_gauge_;
  mutable std::mutex mu_;
  size_t total_ = 0;
  std::map<std::string, size_t> per_client_;  // only clients with an open stream
};

}  // namespace trainyard::gateway

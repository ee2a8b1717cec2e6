#include "stream_limits.h"

namespace trainyard::gateway {

StreamLimits::StreamLimits(size_t max_total, size_t max_per_client, std::atomic<uint64_t>& open_gauge)
    : max_total_(max_total), max_per_client_(max_per_client), open_gauge_(open_gauge) {}

StreamLimits::Slot StreamLimits::open(const std::string& client, std::optional<ApiError>* error) {
  {
    std::lock_guard lock(mu_);
    auto it = per_client_.find(client);
    size_t mine = it == per_client_.end() ? 0 : it->second;
    if (mine >= max_per_client_) {
      *error = ApiError{429,
                        "this client (" + client + ") already has " + std::to_string(mine) +
                            " live streams open, the most one client may (gateway.max_streams_per_client); "
                            "close one before opening another",
                        "", "gateway", "ResourceExhausted"};
      return nullptr;
    }
    if (total_ >= max_total_) {
      *error = ApiError{503,
                        "too many live streams are open on this gateway (" + std::to_string(total_) +
                            ", gateway.max_streams); try again later",
                        "", "gateway", "Unavailable"};
      return nullptr;
    }
    ++per_client_[client];
    ++total_;
  }
  ++open_gauge_;
  // The slot is a token whose deleter gives the place back.
  return Slot(static_cast<void*>(this), [this, client](void*) { close(client); });
}

void StreamLimits::close(const std::string& client) {
  {
    std::lock_guard lock(mu_);
    auto it = per_client_.find(client);
    if (it != per_client_.end() && --it->second == 0) per_client_.erase(it);
    --total_;
  }
  --open_gauge_;
}

size_t StreamLimits::open_for(const std::string& client) const {
  std::lock_guard lock(mu_);
  auto it = per_client_.find(client);
  return it == per_client_.end() ? 0 : it->second;
}

}  // namespace trainyard::gateway

// What the bus feed thread hands to the HTTP threads: a bounded ring of
// recent events (numbered by the gateway, for SSE ids and Last-Event-ID), the
// latest ops.metrics report of each service, and a few counters. The one
// piece of state shared between threads; everything in it is copied out
// under its mutex.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "core/events.h"
#include "core/prometheus.h"

namespace trainyard::gateway {

struct HubEvent {
  uint64_t id = 0;
  std::string kind;
  std::string topic;
  std::string json;  // the data line
};

class EventHub {
 public:
  explicit EventHub(size_t capacity = 4096) : capacity_(capacity) {}

  void push(const EventView& v);
  // Events with id > `after` whose kind is in `kinds` (all when empty); waits
  // up to `timeout` for one to arrive. Returns at once after stop().
  std::vector<HubEvent> wait_after(uint64_t after, const std::vector<std::string>& kinds,
                                   std::chrono::milliseconds timeout);
  // The newest `n` events of those kinds, oldest first.
  std::vector<HubEvent> recent(size_t n, const std::vector<std::string>& kinds) const;
  uint64_t last_id() const;

  // Keeps at most kMaxOpsReporters (service, instance) pairs: a new one
  // beyond that replaces the one heard from least recently.
  void set_ops(OpsReport report, int64_t now_ms);
  static constexpr size_t kMaxOpsReporters = 1024;
  // Reports received within `max_age_ms`.
  std::vector<OpsReport> ops(int64_t now_ms, int64_t max_age_ms) const;

  void stop();
  bool stopped() const { return stopped_; }

  std::atomic<uint64_t> events_seen{0};
  std::atomic<uint64_t> events_rejected{0};  // failed verification or handling
  std::atomic<uint64_t> metric_points_seen{0};
  std::atomic<uint64_t> streams_open{0};
  std::atomic<uint64_t> http_requests{0};

 private:
  static bool wanted(const HubEvent& e, const std::vector<std::string>& kinds);

  size_t capacity_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<HubEvent> ring_;
  uint64_t next_id_ = 1;
  std::map<std::pair<std::string, std::string>, std::pair<OpsReport, int64_t>> ops_;
  std::atomic<bool> stopped_{false};
};

}  // namespace trainyard::gateway

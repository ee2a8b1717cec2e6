#include "event_hub.h"

#include <algorithm>

namespace trainyard::gateway {

bool EventHub::wanted(const HubEvent& e, const std::vector<std::string>& kinds) {
  return kinds.empty() || std::find(kinds.begin(), kinds.end(), e.kind) != kinds.end();
}

void EventHub::push(const EventView& v) {
  {
    std::lock_guard lock(mu_);
    // Job names, metric names and reasons come from users and may hold
    // invalid UTF-8: replaced (U+FFFD), never thrown on the bus thread.
    ring_.push_back(HubEvent{next_id_++, v.kind, v.topic,
                             v.data.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)});
    while (ring_.size() > capacity_) ring_.pop_front();
  }
  cv_.notify_all();
}

std::vector<HubEvent> EventHub::wait_after(uint64_t after, const std::vector<std::string>& kinds,
                                           std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  std::vector<HubEvent> out;
  auto collect = [&] {
    // Ids are dense and ordered: start where `after` would be.
    auto it = std::lower_bound(ring_.begin(), ring_.end(), after + 1,
                               [](const HubEvent& e, uint64_t id) { return e.id < id; });
    for (; it != ring_.end(); ++it) {
      if (wanted(*it, kinds)) out.push_back(*it);
    }
    return !out.empty() || stopped_;
  };
  if (collect()) return out;
  // Wake on every push; only return when something wanted came.
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (cv_.wait_until(lock, deadline) != std::cv_status::timeout) {
    uint64_t seen = ring_.empty() ? after : std::max(after, ring_.back().id);
    if (collect()) return out;
    after = seen;
  }
  return out;
}

std::vector<HubEvent> EventHub::recent(size_t n, const std::vector<std::string>& kinds) const {
  std::lock_guard lock(mu_);
  std::vector<HubEvent> out;
  for (auto it = ring_.rbegin(); it != ring_.rend() && out.size() < n; ++it) {
    if (wanted(*it, kinds)) out.push_back(*it);
  }
  std::reverse(out.begin(), out.end());
  return out;
}

uint64_t EventHub::last_id() const {
  std::lock_guard lock(mu_);
  return next_id_ - 1;
}

void EventHub::set_ops(OpsReport report, int64_t now_ms) {
  // A gauge named twice in one report keeps its last value.
  std::map<std::string, double> unique;
  for (auto& [k, v] : report.gauges) unique[k] = v;
  report.gauges.assign(unique.begin(), unique.end());
  std::lock_guard lock(mu_);
  auto key = std::make_pair(report.service, report.instance);
  if (ops_.size() >= kMaxOpsReporters && !ops_.count(key)) {
    auto oldest = std::min_element(ops_.begin(), ops_.end(),
                                   [](const auto& a, const auto& b) { return a.second.second < b.second.second; });
    ops_.erase(oldest);
  }
  ops_[key] = {std::move(report), now_ms};
}

std::vector<OpsReport> EventHub::ops(int64_t now_ms, int64_t max_age_ms) const {
  std::lock_guard lock(mu_);
  std::vector<OpsReport> out;
  for (const auto& [_, v] : ops_) {
    if (now_ms - v.second <= max_age_ms) out.push_back(v.first);
  }
  return out;
}

void EventHub::stop() {
  stopped_ = true;
  cv_.notify_all();
}

}  // namespace trainyard::gateway

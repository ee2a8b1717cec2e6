#include "core/cloud_meter.h"

#include <algorithm>

#include <nlohmann/json.hpp>

namespace trainyard::billing {

namespace {
constexpr unsigned __int128 kNsPerHour = static_cast<unsigned __int128>(3600) * 1'000'000'000;
}

int64_t node_cost_micros(int64_t ns, int64_t price_micros_per_hour) {
  if (ns <= 0 || price_micros_per_hour <= 0) return 0;
  auto v = static_cast<unsigned __int128>(ns) * static_cast<unsigned __int128>(price_micros_per_hour) / kNsPerHour;
  return static_cast<int64_t>(std::min<unsigned __int128>(v, INT64_MAX));
}

std::string CloudNode::encode() const {
  return nlohmann::json{{"lease", lease},           {"pool", pool},        {"node", node},
                        {"account", account},       {"price", price_micros_per_hour}, {"gpus", gpus},
                        {"requested", requested_ns}, {"ended", ended_ns},  {"job_micros", job_micros},
                        {"overhead", overhead_charged}}
      .dump();
}

std::optional<CloudNode> CloudNode::decode(std::string_view bytes) {
  auto j = nlohmann::json::parse(bytes, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  try {
    CloudNode n;
    n.lease = j.at("lease").get<uint64_t>();
    n.pool = j.at("pool").get<std::string>();
    n.node = j.at("node").get<std::string>();
    n.account = j.at("account").get<std::string>();
    n.price_micros_per_hour = j.at("price").get<int64_t>();
    n.gpus = j.at("gpus").get<uint32_t>();
    n.requested_ns = j.at("requested").get<int64_t>();
    n.ended_ns = j.at("ended").get<int64_t>();
    n.job_micros = j.at("job_micros").get<int64_t>();
    n.overhead_charged = j.at("overhead").get<bool>();
    return n;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::optional<CloudCharge> CloudMeter::lease_changed(const CloudNode& update, bool ended) {
  auto [it, fresh] = leases_.try_emplace(update.lease, update);
  CloudNode& n = it->second;
  if (!fresh) {
    // What the broker knows best; what billing counted stays.
    n.account = update.account.empty() ? n.account : update.account;
    n.price_micros_per_hour = update.price_micros_per_hour;
    n.gpus = std::max<uint32_t>(1, update.gpus);
    n.requested_ns = update.requested_ns;
    if (ended) n.ended_ns = update.ended_ns;
  }
  if (!n.node.empty()) note_node(n.node, n.lease);
  if (!ended || n.overhead_charged) return std::nullopt;
  n.overhead_charged = true;
  int64_t total = node_cost_micros(n.ended_ns - n.requested_ns, n.price_micros_per_hour);
  CloudCharge c;
  c.lease = n.lease;
  c.account = rule_ == OverheadRule::kTrigger && !n.account.empty() ? n.account : platform_;
  c.line_type = "cloud:" + n.pool + ":overhead";
  c.at_ns = n.ended_ns;
  c.gpu_ns = static_cast<uint64_t>(std::max<int64_t>(0, n.ended_ns - n.requested_ns)) * n.gpus;
  c.micros = std::max<int64_t>(0, total - n.job_micros);
  return c;
}

std::optional<CloudCharge> CloudMeter::usage(std::string_view node, std::string_view account, std::string_view user,
                                             uint64_t job, uint32_t gpus, int64_t start_ns, int64_t end_ns) {
  CloudNode* found = lease_at(node, start_ns);
  if (!found) return std::nullopt;
  CloudNode& n = *found;
  CloudCharge c;
  c.lease = n.lease;
  c.account = std::string(account);
  c.user = std::string(user);
  c.job = job;
  c.line_type = "cloud:" + n.pool;
  c.at_ns = start_ns;
  int64_t ns = std::max<int64_t>(0, end_ns - start_ns);
  c.gpu_ns = static_cast<uint64_t>(ns) * gpus;
  // The job's share of the node: its GPUs of the node's, for its time.
  uint32_t share = std::min(gpus, std::max<uint32_t>(1, n.gpus));
  auto exact = static_cast<unsigned __int128>(ns) * static_cast<unsigned __int128>(n.price_micros_per_hour) * share /
               (kNsPerHour * std::max<uint32_t>(1, n.gpus));
  c.micros = static_cast<int64_t>(std::min<unsigned __int128>(exact, INT64_MAX));
  if (n.overhead_charged) {
    c.micros = 0;  // after the release was billed: nothing more to share out
  } else {
    // Never more than the node costs in all (ticks may overlap the release).
    int64_t cap = node_cost_micros((n.ended_ns ? n.ended_ns : end_ns) - n.requested_ns, n.price_micros_per_hour);
    c.micros = std::clamp<int64_t>(c.micros, 0, std::max<int64_t>(0, cap - n.job_micros));
  }
  n.job_micros += c.micros;
  return c;
}

void CloudMeter::note_node(const std::string& node, uint64_t lease) {
  auto [it, fresh] = by_node_.try_emplace(node, lease);
  if (!fresh && it->second < lease) it->second = lease;  // a replayed older lease's event keeps the newest
}

CloudNode* CloudMeter::lease_at(std::string_view node, int64_t at_ns) {
  auto b = by_node_.find(std::string(node));
  if (b == by_node_.end()) return nullptr;
  CloudNode& newest = leases_.at(b->second);
  if (newest.requested_ns <= at_ns) return &newest;
  // A late tick of the node's previous instance (rare: a slot is reused only
  // once that instance is gone): the newest earlier lease of the node.
  for (auto it = leases_.rbegin(); it != leases_.rend(); ++it) {
    if (it->second.node == node && it->second.requested_ns <= at_ns) return &it->second;
  }
  return &newest;
}

const CloudNode* CloudMeter::lease(uint64_t id) const {
  auto it = leases_.find(id);
  return it == leases_.end() ? nullptr : &it->second;
}

const CloudNode* CloudMeter::by_node(std::string_view node) const {
  auto it = by_node_.find(std::string(node));
  return it == by_node_.end() ? nullptr : lease(it->second);
}

}  // namespace trainyard::billing

// What renting costs: the offer a pool makes a job now (spot or on-demand,
// and the spot-to-on-demand fallback after spot_fallback_after reclaims),
// the most a launch for it can cost, the cheapest pool that fits, and the
// budgets billing says each account has left.
#include <algorithm>

#include "core/cloud_pools.h"

namespace trainyard::broker {

namespace {

constexpr int64_t kSecond = 1'000'000'000;

}

int64_t CloudPools::estimated_cost_micros(const PoolConfig& p, const WaitingJob& j, int64_t now_ns) const {
  int64_t node_s = boot_estimate_ns(p.name) / kSecond + std::max<int64_t>(0, j.time_limit_s) + p.idle_release_s;
  int64_t price = offer(p, &j, now_ns).price_micros_per_hour;
  auto micros = static_cast<__int128>(node_s) * std::max<uint32_t>(1, j.nodes) * price / 3600;
  return static_cast<int64_t>(std::min<__int128>(micros, INT64_MAX));
}

CloudPools::Offer CloudPools::offer(const PoolConfig& p, const WaitingJob* j, int64_t now_ns) const {
  Offer o;
  o.spot = p.rents_spot(now_ns);
  // Spot-to-on-demand fallback: a job its spot nodes were reclaimed from
  // spot_fallback_after times rents on-demand from then on.
  o.fallback = o.spot && j && falls_back(j->id);
  if (o.fallback) o.spot = false;
  o.price_micros_per_hour = o.spot ? p.spot_at(now_ns) : p.on_demand_at(now_ns);
  return o;
}

bool CloudPools::falls_back(uint64_t job) const {
  return options_.spot_fallback_after > 0 && spot_interruptions(job) >= options_.spot_fallback_after;
}

const PoolConfig* CloudPools::cheapest_fit(const WaitingJob& j, int64_t now_ns) const {
  const PoolConfig* best = nullptr;
  for (auto& p : pools_) {
    if (fits(p, j) && (!best || p.price(now_ns) < best->price(now_ns))) best = &p;
  }
  return best;
}

void CloudPools::set_budget_left(std::string_view account, std::optional<int64_t> left_micros) {
  if (left_micros) {
    budget_left_[std::string(account)] = *left_micros;
  } else {
    budget_left_.erase(std::string(account));
  }
}

}  // namespace trainyard::broker

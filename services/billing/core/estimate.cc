#include "core/estimate.h"

#include <algorithm>
#include <cstdint>

#include "core/ledger.h"

namespace trainyard::billing {

Result<int64_t> estimate_cost(const JobShape& job, const RateCard& card, uint32_t day) {
  if (job.time_limit_s == 0) {
    return Status::invalid("spec.time_limit_s is 0: set the job's time limit to get an estimate");
  }
  const PricePeriod& p = card.period_at(day);
  int64_t gpu_price = 0;
  if (job.gpus_per_node > 0) {
    if (auto price = RateCard::gpu_price(p, job.gpu_type); price && !job.gpu_type.empty()) {
      gpu_price = *price;
    } else if (auto def = RateCard::gpu_price(p, RateCard::kDefaultGpu); def && job.gpu_type.empty()) {
      gpu_price = *def;
    } else if (job.gpu_type.empty()) {
      for (auto& [type, price] : p.gpu_hour) gpu_price = std::max(gpu_price, price);
    }
  }
  if (job.gpus_per_node > 1024 || job.cpus > 65536 || job.memory_mb > (uint64_t{1} << 32) || job.nodes > 65536 ||
      job.time_limit_s > 10ull * 366 * 86400) {
    return Status::invalid("spec is too large to estimate (at most 1024 GPUs, 65536 cores, 2^32 MB per node, 65536 "
                           "nodes, 10 years)");
  }
  const u128 seconds = static_cast<u128>(job.time_limit_s) * std::max<uint32_t>(job.nodes, 1);
  const u128 mult = static_cast<u128>(RateCard::multiplier_ppm(p, job.partition));
  // Everything over the memory denominator (1024 × that of GPUs and cores),
  // per second, so one rounding covers the whole job.
  const u128 per_s = (1024 * (static_cast<u128>(job.gpus_per_node) * static_cast<u128>(gpu_price) +
                              static_cast<u128>(std::max<uint32_t>(job.cpus, 1)) * static_cast<u128>(p.cpu_core_hour)) +
                      static_cast<u128>(job.memory_mb) * static_cast<u128>(p.memory_gb_hour)) *
                     mult;
  const u128 den_s = denominator(Resource::kMemory) / 1'000'000'000u;
  // floor(per_s × seconds / den_s) in two steps that fit in 128 bits.
  const u128 whole = (per_s / den_s) * seconds + (per_s % den_s) * seconds / den_s;
  if (whole > static_cast<u128>(INT64_MAX)) return Status::invalid("the estimate does not fit in 64 bits");
  return static_cast<int64_t>(whole);
}

}  // namespace trainyard::billing

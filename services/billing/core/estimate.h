// What a job would cost if it ran its whole time limit at the prices in
// force today (EstimateCost, `ty submit --estimate`).
#pragma once

#include <cstdint>
#include <string>

#include "core/rate_card.h"
#include "util/status.h"

namespace trainyard::billing {

// The parts of a JobSpec that cost money.
struct JobShape {
  std::string gpu_type;  // empty: any type (priced at "default", else the dearest listed)
  std::string partition;
  uint32_t gpus_per_node = 0;
  uint32_t cpus = 0;     // per node; 0 counts as one
  uint64_t memory_mb = 0;
  uint32_t nodes = 1;    // 0 counts as one
  uint64_t time_limit_s = 0;
};

// time_limit × nodes × (GPUs, cores and memory at their prices) × the
// partition's multiplier, rounded down once. InvalidArgument without a time
// limit.
Result<int64_t> estimate_cost(const JobShape& job, const RateCard& card, uint32_t day);

}  // namespace trainyard::billing

// Reads the scheduler core's configuration (partitions, accounts, policy,
// fair share, quotas, preemption) from the [scheduler] config section. The
// service and the trace simulator (ty-sim) share it, so a config file means
// the same to both. Errors name the key.
#pragma once

#include <string>

#include "core/config.h"
#include "util/config.h"
#include "util/status.h"

namespace trainyard::scheduler {

struct PolicyChoice {
  std::string policy = "priority";  // scheduler.policy
  SchedulerConfig core;
};

Result<PolicyChoice> scheduler_config_from(const Config& config);

// "greedy", "easy", "off".
Result<Backfill> parse_backfill(const std::string& name);

}  // namespace trainyard::scheduler

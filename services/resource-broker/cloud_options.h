// The broker's cloud settings: [cloud] and every [pools.<name>], read and
// range-checked once at start (deploy/trainyard.example.toml documents them).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/cloud_lease.h"
#include "security/authz.h"
#include "util/config.h"
#include "util/status.h"

namespace trainyard::broker {

struct CloudSettings {
  CloudOptions core;
  std::vector<PoolConfig> pools;                      // none: the cloud part stays idle
  std::string scheduler = "tcp://127.0.0.1:5560";     // scheduler.endpoint: asked for waiting jobs
  int64_t poll_ms = 500;                              // cloud.poll_ms: how often waiting jobs are read
  int64_t reconcile_s = 30;                           // cloud.reconcile_s: how often every pool is listed
  int64_t driver_timeout_s = 120;                     // cloud.driver_timeout_s: a driver call killed after this
  // Who may pause and resume (operators, admins): the broker's live view of
  // the site directory (set by the broker; empty until then).
  std::function<const security::Directory&()> directory = [] () -> const security::Directory& {
    static const security::Directory kNone;
    return kNone;
  };
  std::string scheduler_instance = "scheduler";  // scheduler.instance: whose job.state events end a job's records
  std::string scheduler_principal = "service:scheduler";  // whose key the scheduler must hold
  // Where each pool's rented nodes' keys are (pools.<name>.keys_dir, default
  // security.keys_dir): agent-<pool>-<slot>.key for every slot (cloud_keys.h).
  std::map<std::string, std::string, std::less<>> pool_keys_dirs;
  std::string keys_dir(std::string_view pool) const {
    auto it = pool_keys_dirs.find(pool);
    return it == pool_keys_dirs.end() ? std::string() : it->second;
  }

  // InvalidArgument naming the key (pools.<name>.<key>) and what is wrong.
  static Result<CloudSettings> from_config(const Config& config);
};

// "29.39" (a string, exact) or 29.39 (a number) per hour -> micro-units.
Result<int64_t> parse_price_micros(std::string_view key, std::string_view text);

}  // namespace trainyard::broker

// The scheduler core's configuration as plain values: partitions, accounts
// and limits. The shell reads them from the [scheduler] config section; the
// core and the trace simulator take them as they are.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace trainyard::scheduler {

struct PartitionConfig {
  std::string name;
  // A node belongs to the partition when every label matches (no labels:
  // every node), or when the node itself names the partition.
  std::map<std::string, std::string> labels;
  uint64_t default_time_limit_s = 0;  // 0: the scheduler's default applies
  uint64_t max_time_limit_s = 0;      // 0: no maximum
};

struct SchedulerConfig {
  // Empty: one partition "default" holding every node.
  std::vector<PartitionConfig> partitions;
  // The partition of a spec that names none (empty: the first one).
  std::string default_partition;
  // Accounts allowed to submit (empty: any account, also none).
  std::vector<std::string> accounts;
  // GPU types accepted at submit even before a node of that type registers
  // (cloud pools that start on demand).
  std::vector<std::string> gpu_types;
  uint64_t default_time_limit_s = 0;  // 0: a job must give one (or its partition a default)
  uint32_t max_array_size = 10'000;
  uint32_t max_gpus_per_node = 64;    // above this a count is refused as absurd
  uint32_t max_nodes_per_job = 4096;
  uint32_t max_retries = 100;
  uint32_t max_cpus = 1'000'000;
};

}  // namespace trainyard::scheduler

// The cluster at a glance, computed from the broker's node list and the
// scheduler's job list: GPUs per type (total, allocated, idle), nodes up and
// down, jobs per state and partition, and how long started jobs waited.
// Feeds both GET /api/v1/cluster and /metrics.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "trainyard/fb/rpc_generated.h"

namespace trainyard::gateway {

struct GpuCounts {
  uint64_t total = 0;
  uint64_t allocated = 0;
  uint64_t idle = 0;         // free on a node that is up and not drained
  uint64_t unavailable = 0;  // free but on a node that is down or drained
};

struct NodeStats {
  uint64_t up = 0;
  uint64_t down = 0;
  uint64_t drained = 0;
  std::map<std::string, GpuCounts> gpus;  // by GPU type ("unknown" when none declared)
};

struct JobStats {
  // (state name, partition) -> count
  std::map<std::pair<std::string, std::string>, uint64_t> by_state_partition;
  std::map<std::string, uint64_t> by_state;
  // Seconds from submit to start, for every job that has started.
  std::vector<double> queue_waits_s;
  uint64_t total = 0;
};

NodeStats node_stats(const fb::NodeList& nodes);
// Of every page of a ListNodes answer.
NodeStats node_stats(std::span<const fb::NodeList* const> pages);
void add_node_stats(const fb::NodeList& nodes, NodeStats& stats);
JobStats job_stats(const fb::JobList& jobs);

// The JSON of GET /api/v1/cluster.
nlohmann::json cluster_summary(const NodeStats& nodes, const JobStats& jobs);

}  // namespace trainyard::gateway

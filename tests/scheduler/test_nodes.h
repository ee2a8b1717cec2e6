// Nodes and clusters for the scheduler's unit tests.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/cluster.h"

namespace trainyard::scheduler::testing {

inline fb::NodeInfoT make_node(const std::string& name, uint32_t gpus, const std::string& type = "A100",
                               uint32_t cpus = 64, uint64_t memory_mb = 512'000,
                               std::map<std::string, std::string> labels = {}) {
  fb::NodeInfoT n;
  n.name = name;
  for (uint32_t i = 0; i < gpus; ++i) {
    auto g = std::make_unique<fb::GpuInfoT>();
    g->index = i;
    g->type = type;
    g->memory_mb = 80'000;
    n.gpus.push_back(std::move(g));
  }
  n.cpus = cpus;
  n.memory_mb = memory_mb;
  for (auto& [k, v] : labels) {
    auto kv = std::make_unique<fb::KeyValueT>();
    kv->key = k;
    kv->value = v;
    n.labels.push_back(std::move(kv));
  }
  return n;
}

// `n` with its GPUs in these NUMA domains (GPU i in numa[i]).
inline fb::NodeInfoT with_numa(fb::NodeInfoT n, const std::vector<int>& numa) {
  for (size_t i = 0; i < n.gpus.size() && i < numa.size(); ++i) n.gpus[i]->numa_node = numa[i];
  return n;
}

constexpr int64_t kSecond = 1'000'000'000;

}  // namespace trainyard::scheduler::testing

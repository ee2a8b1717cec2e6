// Nodes and clusters for the scheduler's unit tests.
#pragma once

#include <cstdint>
#include <string>

#include "core/cluster.h"

namespace trainyard::scheduler::testing {

inline fb::NodeInfoT make_node(const std::string& name, uint32_t gpus, const std::string& type = "A100") {
  fb::NodeInfoT n;
  n.name = name;
  for (uint32_t i = 0; i < gpus; ++i) {
    auto g = std::make_unique<fb::GpuInfoT>();
    g->index = i;
    g->type = type;
    g->memory_mb = 80'000;
    n.gpus.push_back(std::move(g));
  }
  n.cpus = 64;
  n.memory_mb = 512'000;
  return n;
}

constexpr int64_t kSecond = 1'000'000'000;

}  // namespace trainyard::scheduler::testing

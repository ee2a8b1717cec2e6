// A node as the broker knows it: what its agent registered, whether it is up
// and drained, and which of its GPUs, CPUs and memory live leases hold.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "trainyard/fb/nodes_generated.h"

namespace trainyard::broker {

struct Node {
  std::shared_ptr<const fb::NodeInfoT> info;  // never null
  bool up = true;
  bool drained = false;
  std::string drain_reason;
  std::string down_reason;
  int64_t last_heartbeat_ns = 0;  // wall clock, for people
  int64_t last_seen_mono_ns = 0;  // monotonic, for liveness (not persisted)

  // Derived from the live leases (rebuilt on restore, never persisted).
  std::map<uint32_t, uint64_t> gpu_holder;  // GPU index -> lease id
  uint32_t cpus_used = 0;
  uint64_t memory_used_mb = 0;
  std::set<uint64_t> leases;  // live lease ids
  // Leases the agent reported running that the broker had ended, already
  // answered with lease.<node>.revoked (so a heartbeat does not repeat it).
  std::set<uint64_t> zombies_revoked;

  const std::string& name() const { return info->name; }
  bool has_gpu(uint32_t index) const;
  // The type of GPU `index`, or empty if the node has no such GPU.
  std::string gpu_type(uint32_t index) const;
};

}  // namespace trainyard::broker

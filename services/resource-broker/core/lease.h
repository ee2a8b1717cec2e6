// A lease: GPUs, CPUs and memory of one node granted to one attempt of one
// job. Live while granted or revoking; released or lost once it has ended.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "trainyard/fb/jobs_generated.h"
#include "trainyard/fb/nodes_generated.h"

namespace trainyard::broker {

enum class LeaseState : uint8_t {
  kGranted = 0,  // the agent runs (or is about to run) the job
  kRevoking,     // asked to stop; resources held until run.finished
  kReleased,     // ended normally; resources free
  kLost,         // the node died holding it; resources free
};

std::string_view to_string(LeaseState s);

inline bool is_live(LeaseState s) { return s == LeaseState::kGranted || s == LeaseState::kRevoking; }

struct Lease {
  uint64_t id = 0;
  uint64_t job_id = 0;
  uint32_t attempt = 0;
  std::string node;
  std::vector<uint32_t> gpus;  // GPU indices on `node`
  uint32_t cpus = 0;
  uint64_t memory_mb = 0;
  // What the agent runs. Dropped once the lease has ended (only its identity
  // is kept, for idempotent Allocate and for reconciling agents).
  std::shared_ptr<const fb::JobSpecT> spec;
  int32_t array_index = -1;
  uint64_t array_job_id = 0;  // array tasks: the array's id
  std::string gpu_type;
  uint32_t node_rank = 0;
  std::vector<std::string> nodes;  // every node of the allocation, rank order

  LeaseState state = LeaseState::kGranted;
  bool started = false;  // run.started seen
  int64_t granted_ns = 0;
  std::string revoke_reason;
  fb::RevokeCause revoke_cause = fb::RevokeCause::Unknown;
  uint32_t grace_s = 0;
  int64_t revoked_mono_ns = 0;  // when kill was asked (monotonic; not persisted)
  std::string end_reason;
  int64_t ended_ns = 0;

  bool live() const { return is_live(state); }
};

}  // namespace trainyard::broker

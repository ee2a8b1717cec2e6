// Preemption planning: which running jobs a waiting job may preempt (a lower
// tier, or an account borrowing beyond its guarantee when the waiting job's
// account reclaims its own), and the cheapest nodes to free for it. The
// planner only reads; the Scheduler applies a plan (asks the victims to
// stop, keeps the room for the preemptor).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "core/cluster.h"
#include "core/config.h"
#include "core/job.h"
#include "core/policy.h"
#include "core/quotas.h"

namespace trainyard::scheduler {

// Victims chosen for a preemptor, and where its GPUs come free.
struct PreemptionPlan {
  uint16_t type = 0;            // the GPU type it takes there
  std::vector<NodeIdx> nodes;   // one per node of the job
  std::vector<JobId> victims;   // each once, in the order of `nodes`
};

class PreemptionPlanner {
 public:
  PreemptionPlanner(const Cluster& cluster, const AccountUsage& usage, const PreemptionConfig& config)
      : cluster_(cluster), usage_(usage), config_(config) {}

  // True when `e` may preempt to reclaim its account's guarantee: reclaim
  // is on and the job keeps its account within its guarantee.
  bool reclaims(const QueueEntry& e) const;

  // A plan to start `e` by preempting jobs of `active` (the jobs that hold
  // resources). Per node the lowest victims go first (lower tier, then the
  // latest started: it loses the least work) until the job fits there;
  // then the nodes that need the fewest victim GPUs (then the lowest top
  // tier) are chosen. A gang also takes nodes that hold it already.
  // nullopt: no set of nodes can be freed for it. A plan with no victims:
  // it fits without preempting (CPUs or memory hold it back).
  std::optional<PreemptionPlan> plan(const QueueEntry& e, std::span<Job* const> active, int64_t now_ns) const;

 private:
  // GPUs of one victim on one node.
  struct Candidate {
    NodeIdx node;
    uint32_t gpus;
    int64_t tier;
    int64_t start;
    JobId id;
  };
  // A node that can be freed for the job: its victims are a run of the
  // sorted candidates.
  struct Choice {
    uint32_t victim_gpus;
    int64_t top_tier;
    NodeIdx node;
    size_t first, count;
  };
  bool may_preempt(const QueueEntry& e, const Job& v, bool reclaim, uint16_t reclaim_type, int64_t now_ns) const;
  std::vector<Candidate> candidates(const QueueEntry& e, std::span<Job* const> active, int64_t now_ns) const;
  std::vector<Choice> choices(const QueueEntry& e, const std::vector<Candidate>& cands) const;

  const Cluster& cluster_;
  const AccountUsage& usage_;
  const PreemptionConfig& config_;
};

}  // namespace trainyard::scheduler

// The trace simulator: replays a job trace through the scheduler's own
// core with a virtual clock and simulated nodes, and measures what users
// and operators care about: job completion time, queueing delay (by job
// size), makespan, GPU utilisation over time, fragmentation, preemptions
// and fairness across users. Deterministic: same trace, options and seed,
// same numbers.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/config.h"
#include "sim/cloud.h"
#include "sim/trace.h"
#include "util/status.h"

namespace trainyard::scheduler::sim {

struct SimOptions {
  std::vector<NodeGroup> nodes;
  std::string policy = "fairshare+backfill";  // fifo | priority | fairshare | fairshare+backfill
  SchedulerConfig config;                     // partitions, fair share, quotas... (policy/backfill set from `policy`)
  bool keep_backfill = false;                 // true: config.backfill as given, not implied by `policy`
  double limit_factor = 1;                    // time limit = duration x factor (users overestimate)
  bool limit_random = false;                  // factor drawn per job from [1, limit_factor] (with `seed`)
  uint64_t seed = 1;
  double sample_s = 3600;                     // utilisation series step
  // Rented cloud pools (--pool), driven by the resource broker's cloud core.
  // Owned nodes are `nodes`; jobs keep the shape they have on them.
  std::vector<CloudPoolSpec> pools;
  BurstPolicy burst = default_burst_policy();
};

struct Percentiles {
  size_t count = 0;
  double avg = 0, p50 = 0, p95 = 0, p99 = 0, max = 0;
};

struct JobOutcome {
  std::string id;
  std::string user;
  uint32_t gpus = 0;
  double submit_s = 0, start_s = 0, end_s = 0, duration_s = 0;
  uint32_t preemptions = 0;
  std::string state;  // Succeeded, TimedOut, ...
  bool cloud = false; // its last run was on rented nodes
};

struct SimResult {
  std::string policy;
  size_t jobs = 0;
  size_t finished = 0;
  uint64_t gpus = 0;
  Percentiles jct;    // completion - submission
  Percentiles wait;   // first start - submission
  std::map<std::string, Percentiles> wait_by_size;  // "1", "2-4", "5-8", "9+"
  double makespan_s = 0;       // last end - first submission
  double utilisation = 0;      // busy GPU-seconds / (GPUs x makespan), owned GPUs only
  double utilisation_queued = 0;  // the same, over the time jobs were waiting (demand exceeded what started)
  std::vector<std::pair<double, double>> utilisation_series;  // (bucket start s, busy share)
  double fragmentation = 0;    // time-average share of free GPUs on partly used nodes, while jobs wait
  uint64_t preemptions = 0;
  std::map<std::string, uint64_t> preemptions_by_user;
  double jain_fairness = 0;    // Jain's index of the users' mean slowdown (JCT / duration)
  uint64_t backfilled = 0;
  uint64_t cycles = 0;
  std::vector<JobOutcome> outcomes;  // in trace order
  bool cloud = false;          // pools were given: the figures below mean something
  BurstPolicy burst;
  CloudStats cloud_stats;
};

Result<SimResult> simulate(const std::vector<TraceJob>& trace, const SimOptions& options);

Percentiles percentiles(std::vector<double> values);
// Jain's fairness index: (sum x)^2 / (n sum x^2); 1 when all equal.
double jain_index(const std::vector<double>& values);

}  // namespace trainyard::scheduler::sim

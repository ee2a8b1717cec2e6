// One simulated run of a trace, shared by the simulator's files (internal
// to ty-sim): the run itself (simulator.cc), its rented cloud pools
// (simulation_cloud.cc) and the figures it reports (figures.cc).
#pragma once

#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <queue>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "core/policy.h"
#include "core/scheduler.h"
#include "sim/simulator.h"

namespace trainyard::scheduler::sim::detail {

inline constexpr int64_t kSecond = 1'000'000'000;

inline int64_t to_ns(double s) { return static_cast<int64_t>(std::llround(s * 1e9)); }
inline double to_s(int64_t ns) { return static_cast<double>(ns) / 1e9; }

enum class Kind : uint8_t { kRunEnd = 0, kArrival = 1, kCloudReady = 2, kCloudWake = 3, kCloudReclaim = 4 };

struct Event {
  int64_t time;
  uint64_t seq;
  Kind kind;
  size_t index;      // arrival, run end: trace index; cloud ready: index in cloud_booting_; reclaim: in cloud_reclaims_
  uint32_t attempt;  // run end: the attempt it ends
  bool operator>(const Event& o) const { return std::tie(time, seq) > std::tie(o.time, o.seq); }
};

// One simulated run of a trace: the core, a broker that grants every
// allocation at once, agents that end runs at their durations (or limits),
// and the figures gathered on the way.
class Simulation {
 public:
  Simulation(const std::vector<TraceJob>& trace, const SimOptions& options, const SchedulerConfig& config,
             std::unique_ptr<QueuePolicy> policy)
      : trace_(trace),
        options_(options),
        core_(config, std::move(policy)),
        rng_(options.seed),
        spread_(1.0, std::max(1.0, options.limit_factor)) {
    if (!options.pools.empty()) cloud_ = std::make_unique<CloudModel>(options.pools, options.burst, options.seed);
  }

  // Simulated nodes, named by type: v100-0, v100-1, ... Returns the GPUs.
  uint64_t add_nodes();
  Status run();
  SimResult result();

 private:
  void account_time(int64_t t);
  void end_run(size_t i, fb::RunOutcome outcome, int64_t t);
  // What the core asked for: grant every allocation at once; stop the
  // runs it preempts after their grace period (or when they end anyway).
  void apply(int64_t t);
  void grant(const AllocateRequest& a, int64_t t);
  Status arrive(size_t i, int64_t t);
  void run_ended(const Event& ev, int64_t t);
  void cycles(int64_t t);
  // The broker's cloud decision after the events at `t`; true when it opened
  // a rented node to waiting jobs (the scheduler may place them).
  bool cloud_plan(int64_t t);
  void cloud_apply(const CloudChanges& ch, int64_t t);
  // The broker empties rented `node` to move its jobs to owned nodes: each
  // run is stopped after its grace and its job requeued, keeping its
  // progress (resumable) less the policy's move_loss_s.
  void cloud_move(const std::string& node, int64_t t);
  // The jobs (trace indexes) with a run on `node` now.
  std::set<size_t> jobs_on(const std::string& node) const;
  void cloud_ready(size_t k, int64_t t);
  // The cloud takes spot node cloud_reclaims_[k] back: its runs are
  // preempted (requeued, started over), then the node is gone.
  void cloud_reclaim(size_t k, int64_t t);

  const std::vector<TraceJob>& trace_;
  const SimOptions& options_;
  Scheduler core_;
  std::mt19937_64 rng_;
  std::uniform_real_distribution<double> spread_;
  uint64_t total_gpus_ = 0;
  uint32_t widest_ = 0;
  SimResult res_;
  std::vector<JobId> ids_;
  std::map<JobId, size_t> index_of_;
  std::vector<int64_t> run_start_;
  std::vector<int64_t> left_ns_;  // per job: what its next run must do (less after a move)
  std::vector<bool> moving_;      // per job: its run stops for a move (progress kept)
  std::vector<std::vector<uint64_t>> leases_;
  std::vector<bool> started_;
  std::priority_queue<Event, std::vector<Event>, std::greater<>> events_;
  uint64_t seq_ = 0;
  int64_t first_submit_ = 0;
  uint64_t next_lease_ = 1;
  std::unique_ptr<CloudModel> cloud_;
  std::vector<std::string> cloud_booting_;  // names of nodes whose ready event is queued
  std::vector<CloudChanges::Reclaim> cloud_reclaims_;  // spot reclaims queued
  size_t arrived_ = 0;                                 // trace jobs submitted so far
  std::map<uint64_t, std::pair<size_t, std::string>> lease_node_;  // live lease -> (trace index, node)
  std::vector<uint32_t> owned_gpus_;        // per job: GPUs its run holds on owned nodes
  int64_t cloud_wake_ = 0;                  // the earliest queued wake (0: none)
  JobId first_live_ = 1;
  uint64_t busy_ = 0;               // owned GPUs running now
  double busy_gpu_s_ = 0;           // integral of busy GPUs
  std::vector<double> bucket_busy_; // GPU-seconds per sample bucket
  double frag_weighted_ = 0, frag_time_ = 0;
  double queued_busy_gpu_s_ = 0, queued_time_ = 0;
  int64_t last_t_ = 0;
  int64_t last_end_ = 0;
  int64_t bucket_ns_ = 1;
};

}  // namespace trainyard::scheduler::sim::detail

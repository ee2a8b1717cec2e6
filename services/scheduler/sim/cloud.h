// Rented cloud pools in the trace simulator. The decisions (when to rent,
// which pool, when to give back) are the resource broker's own cloud core
// (services/resource-broker/core/cloud_pools.h), driven with simulated time
// and a driver that boots every node after the pool's boot delay. This
// header names no broker or scheduler type: the two cores both have a
// core/cluster.h, so the model is compiled apart (sim/cloud_model.cc).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/status.h"

namespace trainyard::scheduler::sim {

// --pool NAME:NODESxGPUS:TYPE[,boot=180s|120s-300s][,bootfail=0.02][,price=29.39][,spot=0.37][,interrupt=0.05]
//        [,max=N][,min=N][,idle=300s][,launches=N]
struct CloudPoolSpec {
  std::string name;
  uint32_t max_nodes = 0;     // NODES (max=N says the same)
  uint32_t gpus = 0;          // per node
  std::string gpu_type;
  int64_t boot_s = 180;       // launch request to the node taking jobs
  int64_t boot_max_s = 0;     // > boot_s: each boot takes a uniform draw in [boot_s, boot_max_s]
  double boot_fail = 0;       // the share of launches whose node never registers (boot timeout, backoff)
  double price = 0;           // on-demand, per node-hour
  double spot = 0;            // > 0: rent spot at this share of `price`
  double interrupts_per_hour = 0;  // spot: reclaims per node-hour (exponential); the runs are preempted
  uint32_t min_nodes = 0;
  int64_t idle_s = 300;       // idle_release_s
  uint32_t launches = 0;      // max_concurrent_launches (0: the broker's default, 4)

  double node_price() const { return spot > 0 ? price * spot : price; }
};

// max_wait_before_burst: "never" (kBurstNever), else seconds (0: burst at
// once). kBurstAlways: the baseline a sweep compares with, 0 with every
// other option off (always-burst).
inline constexpr int64_t kBurstNever = -1;
inline constexpr int64_t kBurstAlways = -2;
// When to rent and what rented nodes take (the broker's cloud options).
struct BurstPolicy {
  int64_t after_s = 0;             // max_wait_before_burst_s (kBurstNever, kBurstAlways; 0: burst at once)
  double per_gpu_hour_s = 0;       // burst_wait_per_gpu_hour_s (compute-weighted budget; 0: off)
  bool eligible_only = false;      // rented_for_eligible_only
  double large_gpu_hours = 0;      // burst_large_gpu_hours (0: no job is large)
  int64_t large_wait_s = 0;        // burst_large_wait_s
  bool estimate_owned = false;     // estimate_owned_start (every waiting job's owned start, estimated)
  // move_to_owned_min_left_s (0: off). With it on, every trace job is
  // resumable: a move stops its run (its grace) and the next run does what
  // was left plus move_loss_s (the work since its last checkpoint and the
  // restart).
  int64_t move_min_left_s = 0;
  int64_t move_loss_s = 600;
};
// The broker's defaults (cloud.max_wait_before_burst_s, ...).
BurstPolicy default_burst_policy();

// Errors name the flag and what was wrong.
Result<CloudPoolSpec> parse_pool(const std::string& text);
// "0", "90", "90s", "5m", "1.5h", "2d", "never"; in a sweep also "always".
Result<int64_t> parse_burst_after(const std::string& text);
// --burst-large-wait: a duration, at most the broker's 30 days.
Result<int64_t> parse_burst_large_wait(const std::string& text);
Result<std::vector<int64_t>> parse_burst_sweep(const std::string& text);
std::string format_burst_after(int64_t s);

// A waiting job, as the broker reads it from the scheduler.
struct CloudWaiting {
  uint64_t id = 0;
  std::string account;
  std::string gpu_type;
  uint32_t gpus_per_node = 0;
  uint32_t nodes = 1;
  int64_t submit_ns = 0;
  int64_t expected_start_ns = 0;
  int64_t time_limit_s = 0;
  bool waits_for_resources = false;
};

// What the simulation must do after a call into the model.
struct CloudChanges {
  std::vector<std::pair<std::string, int64_t>> booting;  // (node, when it is ready)
  std::vector<std::string> drained;                      // takes no new job
  std::vector<std::string> undrained;                    // takes jobs again
  std::vector<std::string> gone;                         // released: down
  struct Reclaim {
    std::string node;
    uint64_t lease = 0;  // the cloud lease it is drawn for
    int64_t at_ns = 0;   // when the cloud takes the spot node back
  };
  std::vector<Reclaim> reclaims;
  std::vector<std::string> moves;  // rented nodes whose runs move to owned nodes (stopped, requeued)
};

struct CloudNodeShape {
  std::string name;
  std::string gpu_type;
  uint32_t gpus = 0;
};

struct CloudStats {
  uint64_t launches = 0;
  uint64_t released = 0;
  uint32_t peak_nodes = 0;        // live at once
  double node_hours = 0;          // metered: launch request to confirmed release
  double gpu_hours = 0;           // node_hours x GPUs per node
  double cost = 0;                // node_hours x the node's price, summed
  double busy_node_hours = 0;     // ready with a job on it
  double idle_node_hours = 0;     // ready with nothing on it (incl. draining)
  double boot_node_hours = 0;     // launch request to ready
  uint64_t boot_failures = 0;     // nodes that never registered (terminated at the boot timeout)
  uint64_t interruptions = 0;     // spot nodes reclaimed while rented
  uint64_t runs_interrupted = 0;  // runs those reclaims ended (requeued, started over)
  uint64_t moves = 0;             // rented nodes emptied to move their jobs to owned ones
};

class CloudModel {
 public:
  CloudModel(const std::vector<CloudPoolSpec>& pools, const BurstPolicy& policy, uint64_t seed = 1);
  ~CloudModel();
  CloudModel(const CloudModel&) = delete;
  CloudModel& operator=(const CloudModel&) = delete;

  // An owned node (what "owned nodes could take it" is judged on).
  void add_owned(const std::string& name, const std::string& gpu_type, uint32_t gpus);
  // The broker's periodic decision, at `now_ns`.
  void plan(const std::vector<CloudWaiting>& waiting, int64_t now_ns, CloudChanges& out);
  // The node's boot delay is over: it registers. False when its lease ended meanwhile.
  bool node_ready(const std::string& node, int64_t now_ns, CloudNodeShape* shape, CloudChanges& out);
  bool is_cloud(std::string_view node) const;
  // The cloud reclaims spot `node` (rented as `lease`): the instance
  // vanishes, its lease fails (lost) and the node goes down. False when that
  // lease has already ended. The caller preempts the node's runs first.
  bool reclaim(const std::string& node, uint64_t lease, int64_t now_ns, CloudChanges& out);
  // A run of `job` was ended by a reclaim (after cloud.spot_fallback_after
  // of them it rents on-demand).
  void spot_interrupted(uint64_t job, uint64_t runs);
  // A run holds GPUs of a node, owned or rented, until its time limit at
  // most / frees them (key: the simulation's lease id).
  void run_started(uint64_t key, const std::string& node, const std::vector<uint32_t>& gpus, int64_t time_limit_s,
                   int64_t now_ns);
  void run_ended(uint64_t key, int64_t now_ns);
  // Time passes from the last call to `now_ns`: idle and busy node time.
  void account(int64_t now_ns);
  // When the next plan could decide something no event brings (a job's wait
  // reaching the threshold, a node's idle time running out); 0: never.
  int64_t next_wake_ns(const std::vector<CloudWaiting>& waiting, int64_t now_ns) const;
  bool live() const;  // any lease not ended
  CloudStats stats(int64_t now_ns) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace trainyard::scheduler::sim

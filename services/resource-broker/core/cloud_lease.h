// Cloud pools as the broker's core sees them: a pool's configuration, one
// rented node's lease (its lifecycle from the launch request to the
// verified release) and the driver calls the core asks the shell to make.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace trainyard::broker {

// [pools.<name>] in the config.
struct PoolConfig {
  std::string name;
  std::vector<std::string> driver;  // argv of the driver program
  std::string gpu_type;
  uint32_t gpus_per_node = 1;
  uint32_t cpus = 0;                // 0: the driver's default
  uint64_t memory_mb = 0;
  std::string partition;            // the agent's agent.partition ("" : none)
  std::vector<std::pair<std::string, std::string>> labels;  // the agent's agent.labels
  uint32_t min_nodes = 0;
  uint32_t max_nodes = 1;
  int64_t price_micros_per_hour = 0;       // on-demand, per node
  int64_t spot_price_micros_per_hour = 0;  // 0: no spot offer
  bool spot = false;                       // rent spot (at the spot price)
  int64_t boot_timeout_s = 600;
  int64_t idle_release_s = 300;            // 0: release as soon as idle
  uint32_t max_concurrent_launches = 4;
  int64_t max_wait_before_burst_s = -1;    // -1: cloud.max_wait_before_burst_s
  // Dated prices (pools.<name>.prices): from each date on, launches are
  // priced so (a lease keeps the price it was requested at). Before the
  // first date, or with none: the two prices above.
  struct DatedPrice {
    int64_t from_ns = 0;  // UTC midnight of its date
    int64_t on_demand_micros = 0;
    int64_t spot_micros = 0;  // 0: no spot offer from then
  };
  std::vector<DatedPrice> prices;  // sorted by from_ns

  // The on-demand and spot prices for a launch at `at_ns`.
  int64_t on_demand_at(int64_t at_ns) const { return dated(at_ns) ? dated(at_ns)->on_demand_micros : price_micros_per_hour; }
  int64_t spot_at(int64_t at_ns) const { return dated(at_ns) ? dated(at_ns)->spot_micros : spot_price_micros_per_hour; }
  bool rents_spot(int64_t at_ns) const { return spot && spot_at(at_ns) > 0; }
  // What a launch at `at_ns` costs per node-hour (the spot price for a spot pool).
  int64_t price(int64_t at_ns) const { return rents_spot(at_ns) ? spot_at(at_ns) : on_demand_at(at_ns); }

 private:
  const DatedPrice* dated(int64_t at_ns) const {
    const DatedPrice* in_effect = nullptr;
    for (auto& d : prices) {
      if (d.from_ns <= at_ns) in_effect = &d;
    }
    return in_effect;
  }
};

struct CloudOptions {
  int64_t max_wait_before_burst_s = 120;  // a job waiting longer (expected) than this may rent
  // Compute-weighted wait budget (after Starburst, ATC'24): a job may also
  // wait this many seconds per GPU-hour it asks (GPUs x time limit) before
  // it rents, so small short jobs burst soon and the big long ones, which
  // make most of a cloud bill, wait for owned nodes. 0: the threshold only.
  double burst_wait_per_gpu_hour_s = 0;
  // Large jobs wait for owned nodes: a job asking more than this many
  // GPU-hours (GPUs x time limit) rents only once its expected wait on owned
  // nodes passes burst_large_wait_s. A few large jobs make most of a cloud
  // bill; their waits are a small share of the average completion time.
  // 0: no job is large.
  double burst_large_gpu_hours = 0;
  int64_t burst_large_wait_s = 0;
  // Rented nodes take only burst-eligible jobs: a ready node is open to the
  // job it was rented for, to eligible jobs beside a running one, and an
  // idle one to the eligible job that claims it; otherwise it is drained
  // (its running jobs carry on). So jobs that would soon start on owned
  // nodes, and large ones, do not keep rented nodes busy (and paid).
  bool rented_for_eligible_only = false;
  // Every waiting job's expected wait on owned nodes, estimated by the
  // broker: the waiting jobs that will not rent, in queue order, placed at
  // the earliest time enough owned GPUs are free for their time limits
  // (running leases end at theirs). It replaces the scheduler's backfill
  // reservation (only the first waiting job has one, and it may be on a
  // rented node) and the wait so far: a job rents at once when its
  // estimated wait is past its threshold, instead of waiting that long
  // first (and often renting then), and waits when owned nodes will do.
  bool estimate_owned_start = false;
  // Moving back: a rented node whose every job is resumable (the job spec's
  // `resumable`: it checkpoints and resumes after a requeue) and has at least
  // this long left of its time limit (no limit: any) is emptied once owned
  // nodes have room for all of them and no waiting job wants that room: its
  // jobs get SIGTERM and their grace, are requeued (a preemption: no retry
  // spent, queue position kept) and start again on the owned GPUs; the node
  // is released. A job is moved once. A rule that decides only when to rent
  // cannot take back the long runs a burst put on rented nodes after the
  // owned nodes have emptied; this does. 0: off.
  int64_t move_to_owned_min_left_s = 0;
  int64_t orphan_grace_s = 60;            // a listed instance with no live lease: terminated after this
  int64_t backoff_s = 30;                 // first backoff after a capacity error or boot timeout (doubles)
  int64_t backoff_max_s = 900;
  int64_t terminate_retry_s = 10;         // a failed terminate is tried again after this
  // A job whose runs were ended this many times by spot interruptions rents
  // on-demand from then on (0: never falls back).
  uint32_t spot_fallback_after = 2;
};

enum class CloudState : uint8_t {
  kRequested = 0,
  kProvisioning,
  kRegistering,
  kReady,
  kDraining,
  kReleasing,
  kReleased,
  kFailed,
};

std::string_view to_string(CloudState s);
inline bool is_ended(CloudState s) { return s == CloudState::kReleased || s == CloudState::kFailed; }

struct CloudLease {
  uint64_t id = 0;
  std::string pool;
  CloudState state = CloudState::kRequested;
  std::string node;         // "<pool>-<slot>": the name its agent registers as (CloudPools::free_slots)
  std::string instance_id;  // the driver's id ("" until launched)
  std::string reason;
  std::string failure;      // set once it is bound to end as failed: "capacity", "boot_timeout"...
  std::string gpu_type;
  uint32_t gpus = 0;
  bool spot = false;
  int64_t price_micros_per_hour = 0;
  uint64_t for_job = 0;     // the waiting job it was rented for (0: none now)
  std::string account;
  int64_t requested_ns = 0;
  int64_t ready_ns = 0;
  int64_t state_ns = 0;
  int64_t ended_ns = 0;
  int64_t expected_ready_ns = 0;  // booting: requested + the pool's boot estimate
  int64_t interrupt_at_ns = 0;    // a spot interruption notice: when the cloud reclaims it (0: none)
  // Not persisted: bookkeeping of the shell's calls and of idleness.
  int64_t idle_since_ns = 0;
  int64_t unused_since_ns = 0;  // ready with no lease since (waiting jobs or not)
  bool call_in_flight = false;
  int64_t retry_after_ns = 0;
  int64_t terminate_acked_ns = 0;  // the driver accepted the terminate (0: not yet)

  bool ended() const { return is_ended(state); }
  // Metered node time: from the launch request until the release was confirmed (or now).
  int64_t metered_ns(int64_t now_ns) const { return (ended() ? ended_ns : now_ns) - requested_ns; }
};

// A call the shell makes to a pool's driver, off the loop.
struct DriverCall {
  enum Kind : uint8_t { kLaunch, kTerminate, kList };
  Kind kind = kList;
  std::string pool;
  uint64_t lease = 0;       // launch, terminate of a lease (0: an orphan)
  std::string instance_id;  // terminate
};

// What the driver answered to a launch.
struct LaunchOutcome {
  bool ok = false;
  std::string instance_id;
  std::string error_kind;  // "capacity", "quota", "config", or anything else ("driver")
  std::string message;
};

// One instance in the driver's `list`.
struct ListedInstance {
  std::string instance_id;
  std::string pool;   // tag
  uint64_t lease = 0; // tag (0: untagged or unreadable)
  std::string state;  // "pending", "running", "terminating"
  int64_t interrupt_at_ns = 0;  // a spot interruption notice: reclaimed then (0: none)
};

// A waiting job as the scheduler reports it (QueryJobs of pending jobs).
struct WaitingJob {
  uint64_t id = 0;
  std::string account;
  std::string partition;
  std::string gpu_type;       // "" : any
  uint32_t gpus_per_node = 0;
  uint32_t nodes = 1;
  int64_t submit_ns = 0;
  int64_t expected_start_ns = 0;  // the backfill reservation's start (0: none)
  int64_t time_limit_s = 0;       // the job's time limit (0: unknown)
  bool waits_for_resources = false;  // not held, blocked, over quota, waiting on a dependency
};

}  // namespace trainyard::broker

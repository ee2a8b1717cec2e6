// The broker's cloud core: when to rent a node from a pool, when to give it
// back, and every cloud lease's lifecycle (requested -> provisioning ->
// registering -> ready -> draining -> releasing -> released | failed). It
// decides from the waiting jobs, the broker's Cluster and the drivers'
// answers, and returns what changed plus the driver calls to make; the
// shell makes the calls off the loop, persists, publishes. No I/O, no clock.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/cloud_lease.h"
#include "core/cluster.h"
#include "core/effects.h"
#include "util/status.h"

namespace trainyard::broker {

// The pending reason of a job a booting cloud node is meant for.
std::string cloud_wait_reason(std::string_view pool, int64_t expected_ready_ns, int64_t now_ns);

struct CloudEffects {
  std::set<uint64_t> leases;        // cloud leases to persist and publish (cloud.<pool>.<state>)
  std::vector<DriverCall> calls;    // to make, in order
  bool pauses = false;              // the pause switches changed: persist them
  Effects cluster;                  // node drains the core asked of the Cluster
  std::vector<std::pair<std::string, std::string>> nodes_gone;  // (node, why): down at once (Cluster::node_gone)
  struct Interruption {
    std::string node;
    int64_t deadline_ns = 0;  // 0: each run's own grace
    std::string reason;
    // Not a spot notice but a move to owned nodes: the node's jobs, moved
    // (CloudPools::moved() has them; the shell persists them).
    std::vector<uint64_t> moved_jobs = {};
    bool move_to_owned() const { return !moved_jobs.empty(); }
  };
  // Spot notices: the shell revokes the node's leases (Cluster::interrupt)
  // and counts them per job (CloudPools::spot_interrupted). Moves to owned
  // nodes: revoked as preemptions, not counted.
  std::vector<Interruption> interruptions;
};

// Per pool, what is not configuration: the kill switch and the backoff.
struct PoolState {
  bool paused = false;
  std::string pause_reason;
  int64_t backoff_until_ns = 0;
  int64_t backoff_ns = 0;  // the next backoff's length (doubles, reset by a ready node)
  std::string backoff_reason;
  int64_t boot_estimate_ns = 0;  // average launch-to-ready time seen (0: none yet)
  bool list_in_flight = false;
};

class CloudPools {
 public:
  CloudPools(CloudOptions options, std::vector<PoolConfig> pools);

  // --- recovery ---
  void restore(CloudLease lease);
  void restore_pause(std::string_view pool, bool paused, std::string reason);  // "" : the global switch
  void restore_next_id(uint64_t next) { next_id_ = std::max(next_id_, next); }
  // After a restart: a lease still requested is launched again (the driver
  // answers a repeated client token with the same instance); one releasing
  // is terminated again. A lease of a pool no longer configured is released.
  void resume(int64_t now_ns, CloudEffects& out);

  // --- the periodic decision ---
  // Rents for waiting jobs that owned nodes cannot take within the pool's
  // max_wait_before_burst (owned nodes first; a booting node already meant
  // for the job, or free for it, is used instead; gangs get all their nodes
  // or none), releases nodes idle past idle_release_s that no waiting job
  // fits, and times out nodes that never became ready.
  void plan(const std::vector<WaitingJob>& waiting, Cluster& cluster, int64_t now_ns, CloudEffects& out);

  // --- what the drivers and agents said ---
  void launched(uint64_t lease, const LaunchOutcome& r, int64_t now_ns, CloudEffects& out);
  // ok: the terminate was accepted; the lease ends when `list` no longer shows it.
  void terminated(uint64_t lease, bool ok, std::string_view message, int64_t now_ns, CloudEffects& out);
  // Reconciliation against one pool's inventory, asked at `asked_ns`:
  // confirms releases, moves booting leases to registering, ends leases
  // whose instance vanished, terminates orphans past their grace.
  void listed(std::string_view pool, const std::vector<ListedInstance>& instances, int64_t asked_ns, int64_t now_ns,
              CloudEffects& out);
  // Asks for a list of every pool (the periodic reconciliation).
  void reconcile(CloudEffects& out);
  // A driver call that could not be made or answered (not a launch).
  void call_failed(const DriverCall& call, std::string_view message, int64_t now_ns, CloudEffects& out);
  // A node registered: its lease becomes ready. One whose lease is ending is drained.
  void node_registered(std::string_view node, Cluster& cluster, int64_t now_ns, CloudEffects& out);

  // --- spot interruptions ---
  // A run of `job` was ended by a spot notice: after spot_fallback_after of
  // them, rents for it are on-demand.
  void spot_interrupted(uint64_t job) { ++spot_interruptions_[job]; }
  void restore_spot_interruptions(uint64_t job, uint32_t n) { spot_interruptions_[job] = n; }
  // Whether `job` rents on-demand now (spot_fallback_after reached).
  bool falls_back(uint64_t job) const;
  uint32_t spot_interruptions(uint64_t job) const {
    auto it = spot_interruptions_.find(job);
    return it == spot_interruptions_.end() ? 0 : it->second;
  }

  // --- a job's end ---
  // `job` reached an end state (the scheduler's job.state): what is
  // remembered of it (spot interruptions, a move) is dropped, so that
  // memory does not grow with every job ever run. True when there was some.
  bool forget_job(uint64_t job);
  // How many jobs something is remembered of (spot interruptions, a move).
  size_t jobs_remembered() const;

  // --- budgets (billing's account.budget) ---
  // What `account` may still spend this month (its limit minus what it
  // spent; may be negative), or nullopt: no budget. Before renting for a
  // job of a budgeted account, the launch's estimated cost must fit in it.
  void set_budget_left(std::string_view account, std::optional<int64_t> left_micros);
  const std::map<std::string, int64_t, std::less<>>& budgets_left() const { return budget_left_; }
  // Renting for `j` from `p`, at most: its nodes at the pool's price for the
  // boot estimate, the job's whole time limit and the idle release time (a
  // launch's cost when the job's account also pays the overhead, billing's
  // default cloud_overhead = "trigger").
  int64_t estimated_cost_micros(const PoolConfig& p, const WaitingJob& j, int64_t now_ns) const;
  // The pool `j` would rent from were it burst-eligible: the cheapest that
  // fits (pauses, backoff and room aside). Null: no pool fits.
  const PoolConfig* cheapest_fit(const WaitingJob& j, int64_t now_ns) const;
  // The jobs the last plan did not rent for because of a budget, and why.
  const std::map<uint64_t, std::string>& refused() const { return refused_; }

  // --- operator ---
  // pool "" : the global switch. NotFound for an unknown pool.
  Status pause(std::string_view pool, bool pause, std::string_view reason, CloudEffects& out);

  // --- moving back to owned nodes (move_to_owned_min_left_s) ---
  // The jobs moved from rented nodes (each is moved once).
  const std::set<uint64_t>& moved() const { return moved_; }
  void restore_moved(uint64_t job) { moved_.insert(job); }

  // --- views ---
  const std::vector<PoolConfig>& pools() const { return pools_; }
  const PoolConfig* pool(std::string_view name) const;
  const PoolState& pool_state(std::string_view name) const;
  bool paused() const { return global_.paused; }
  const std::string& pause_reason() const { return global_.pause_reason; }
  const std::map<uint64_t, CloudLease>& leases() const { return leases_; }
  const CloudLease* lease(uint64_t id) const;
  const CloudLease* lease_of_node(std::string_view node) const;
  bool is_cloud_node(std::string_view node) const { return by_node_.count(node) > 0; }
  uint64_t next_id() const { return next_id_; }
  size_t live(std::string_view pool) const;
  size_t in_state(std::string_view pool, CloudState s) const;
  // "waiting for cloud node (pool X, ready in ~N min)" for a job a lease is meant for, or "".
  std::string waiting_reason(uint64_t job, int64_t now_ns) const;
  // How long job `j` may be expected to wait on owned nodes before it rents
  // from `p`: the pool's max_wait_before_burst, or the job's compute-weighted
  // budget (burst_wait_per_gpu_hour_s x GPUs x time limit), or for a large
  // job (over burst_large_gpu_hours) burst_large_wait_s, whichever is longest.
  int64_t burst_threshold_ns(const PoolConfig& p, const WaitingJob& j) const;
  // Whether `j` may rent from `p` now (its expected wait on owned nodes is
  // past the threshold, or no owned node could ever take it).
  bool burst_eligible(const PoolConfig& p, const WaitingJob& j, bool owned_could_take, int64_t now_ns) const;
  // estimate_owned_start: when the last plan expected `job` to start on
  // owned nodes, or 0: none (the option is off, the job is not waiting for
  // resources or already has a rented node, or no owned GPUs could hold it).
  int64_t owned_start_estimate(uint64_t job) const;
  // The node names of `p` free to rent now, lowest first: "<pool>-<slot>"
  // for slot in [0, max_nodes) that no live lease holds and no instance
  // still listed by the driver (an orphan) was booted as. A rented node is
  // a slot, as Slurm's CLOUD nodes are names declared in advance: its CURVE
  // key (agent:<pool>-<slot>) is in the site's authorized keys like any
  // node's, and reusing a name only once its last instance is gone keeps
  // two machines from holding one identity.
  std::vector<std::string> free_slots(const PoolConfig& p) const;
  // Launch to ready: the average seen, else half the boot timeout.
  int64_t boot_estimate_ns(std::string_view pool) const;

 private:
  bool fits(const PoolConfig& p, const WaitingJob& j) const;
  bool owned_could_take(const WaitingJob& j, const Cluster& cluster) const;
  int64_t threshold_ns(const PoolConfig& p) const;
  bool can_launch(const PoolConfig& p, uint32_t n, int64_t now_ns) const;
  void rent_for(const WaitingJob& j, Cluster& cluster, int64_t now_ns, CloudEffects& out);
  bool reuse_booting(const WaitingJob& j, CloudEffects& out);
  bool reuse_idle(const WaitingJob& j, Cluster& cluster, CloudEffects& out);
  // rented_for_eligible_only: opens (undrains) the ready nodes rented for
  // (or claimed by) a waiting job and the busy ones an eligible job may join,
  // closes (drains) the others; the jobs each pool's nodes are open to.
  void gate(const std::vector<WaitingJob>& waiting, Cluster& cluster, int64_t now_ns, CloudEffects& out);
  bool ready_room(const WaitingJob& j, const Cluster& cluster) const;
  // estimate_owned_start: fills owned_start_ for the waiting jobs in queue
  // order; a job eligible to rent by that estimate is not placed, so it
  // does not delay the jobs behind it.
  void estimate_owned_starts(const std::vector<WaitingJob>& waiting, const Cluster& cluster, int64_t now_ns);
  std::map<uint64_t, int64_t> owned_start_;  // this plan: job -> estimated start on owned nodes
  std::map<std::string, std::vector<const WaitingJob*>> eligible_;  // this plan: pool -> eligible waiting jobs
  // move_to_owned_min_left_s: empties the rented nodes whose jobs owned
  // nodes can take now (see CloudOptions), and keeps ready rented nodes
  // closed while a moved job waits to start again, so it starts on the
  // owned GPUs it was moved for.
  void move_to_owned(const std::vector<WaitingJob>& waiting, Cluster& cluster, int64_t now_ns, CloudEffects& out);

 public:
  using JobParts = std::map<uint64_t, std::vector<const Lease*>>;  // job -> its live leases
  // An owned node's room as move_to_owned counts it down.
  struct Room {
    const Node* node = nullptr;
    uint32_t gpus = 0;  // free, of the node's GPU type(s)
    int64_t cpus = 0;
    int64_t memory_mb = 0;
  };

 private:
  // Forgets the moved jobs that have started again (or ended) and keeps the
  // ready rented nodes closed while any waits.
  void track_moving(const std::vector<WaitingJob>& waiting, const JobParts& parts, Cluster& cluster, int64_t now_ns,
                    CloudEffects& out);
  // Whether every job on rented node `n` may move and owned `room` holds
  // them (then taken from it); `jobs` gets them.
  bool movable(const Node& n, std::string_view gpu_type, const JobParts& parts, const Cluster& cluster, int64_t now_ns,
               std::vector<Room>& room, std::set<uint64_t>& jobs) const;
  std::set<uint64_t> moved_;                            // jobs moved (never again)
  std::map<uint64_t, int64_t> moving_;                  // moved jobs not yet started again -> when moved
  void release_idle(const std::vector<WaitingJob>& waiting, Cluster& cluster, int64_t now_ns, CloudEffects& out);
  void check_boot_timeouts(int64_t now_ns, CloudEffects& out);
  void retry_calls(int64_t now_ns, CloudEffects& out);
  void ask_list(const std::string& pool, CloudEffects& out);
  void launch(const PoolConfig& p, const WaitingJob* j, int64_t now_ns, CloudEffects& out);
  // What renting from `p` now for `j` (null: for min_nodes) would be: spot
  // when the pool rents spot now unless the job falls back to on-demand,
  // and the price in effect for that. The launch and the estimate both ask.
  struct Offer {
    bool spot = false;
    bool fallback = false;  // on-demand because of the job's spot interruptions
    int64_t price_micros_per_hour = 0;
  };
  Offer offer(const PoolConfig& p, const WaitingJob* j, int64_t now_ns) const;
  void move(CloudLease& l, CloudState to, std::string_view reason, int64_t now_ns, CloudEffects& out);
  void start_release(CloudLease& l, std::string_view failure, std::string_view reason, int64_t now_ns,
                     CloudEffects& out);
  void back_off(const std::string& pool, std::string_view why, int64_t now_ns);
  // A spot notice for `l`: it takes nothing new (draining) and its runs are
  // told (CloudEffects::interruptions); the instance vanishes at `at_ns`.
  void notice(CloudLease& l, int64_t at_ns, int64_t now_ns, CloudEffects& out);
  PoolState& state_of(std::string_view pool);

  CloudOptions options_;
  std::vector<PoolConfig> pools_;
  PoolState global_;
  std::map<std::string, PoolState, std::less<>> states_;
  std::map<uint64_t, CloudLease> leases_;
  std::map<std::string, uint64_t, std::less<>> by_node_;
  std::map<std::string, int64_t> orphans_seen_;  // instance id -> first listed without a live lease
  std::map<std::string, std::set<std::string>, std::less<>> orphan_nodes_;  // pool -> node names orphans were booted as
  // Pools whose ready node went unused while jobs that fit it waited (the
  // scheduler did not place them): no new rent there before this time, so
  // such a pool does not churn launches; the hold doubles each time, and
  // resets once one of its nodes runs a job (not persisted).
  struct RentHold {
    int64_t until_ns = 0;
    int64_t next_ns = 0;  // the next hold (doubles, up to 4 h); 0 after a rented node is used again
  };
  std::map<std::string, RentHold, std::less<>> no_rent_;
  uint64_t next_id_ = 1;
  std::map<std::string, int64_t, std::less<>> budget_left_;  // account -> micro-units left this month
  std::map<uint64_t, std::string> refused_;                    // this plan: job -> why no rent (budget)
  std::map<uint64_t, uint32_t> spot_interruptions_;            // job -> runs ended by spot notices
};

}  // namespace trainyard::broker

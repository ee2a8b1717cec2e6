// The broker's pure core: the truth about nodes, their GPUs and the leases
// on them. Requests and bus events go in, state changes and the events to
// publish come out (in Effects); no sockets, no clock, no disk. The shell
// persists what Effects names and publishes its events after the commit.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/effects.h"
#include "core/lease.h"
#include "core/node.h"
#include "util/status.h"

namespace trainyard::broker {

// Time as the core sees it: wall clock for what people read (heartbeat and
// grant times), monotonic for liveness so a wall-clock step never kills nodes.
struct Now {
  int64_t wall_ns = 0;
  int64_t mono_ns = 0;
};

struct ClusterOptions {
  int64_t node_timeout_ns = 5'000'000'000;  // silent this long: down
};

// One node's share of an allocation.
struct PlacementRequest {
  std::string node;
  std::vector<uint32_t> gpus;
  uint32_t cpus = 0;       // 0: the spec's cpus, else one
  uint64_t memory_mb = 0;  // 0: the spec's memory_mb (0: none asked)
};

struct AllocateRequest {
  uint64_t job_id = 0;
  uint32_t attempt = 0;
  int32_t array_index = -1;
  uint64_t array_job_id = 0;  // array tasks: the array's id
  std::shared_ptr<const fb::JobSpecT> spec;  // null: an empty spec
  // One entry: a single-node lease. Several: a gang, granted all or none,
  // node_rank = position.
  std::vector<PlacementRequest> placements;
};

class Cluster {
 public:
  explicit Cluster(ClusterOptions options = {}) : options_(options) {}

  // --- recovery (the shell replays what it persisted, then calls resume) ---
  void restore_node(Node node);
  // Live leases take their resources on their node again. InvalidArgument if
  // the node is unknown or a GPU is already held (a corrupt store).
  Status restore_lease(Lease lease);
  void restore_next_lease_id(uint64_t next) { next_lease_id_ = std::max(next_lease_id_, next); }
  // Gives every up node a full node_timeout from `now` before it can be
  // declared down: no heartbeat could arrive while the broker was stopped.
  void resume(Now now);

  // --- requests ---
  // Registers (or re-registers) a node: up again, info replaced, drain kept.
  // Every lease id in `running` that is not live on this node (ended, lost,
  // unknown, or on another node) gets lease.<node>.revoked so the agent
  // kills it. Live leases it does not report are left alone: the agent
  // catches up on its lease stream or reports them with run.finished.
  Status register_node(std::shared_ptr<const fb::NodeInfoT> info, const std::vector<uint64_t>& running, Now now,
                       Effects& out);
  // NotFound for an unknown node or one declared down: the agent must
  // register again. Revokes reported leases the broker knows are lost or
  // never granted; frees a revoking lease the agent no longer runs once its
  // grace plus node_timeout has passed (its run.finished was lost).
  Status heartbeat(std::string_view name, const std::vector<uint64_t>& running, Now now, Effects& out);
  // Grants the placements all or none and returns the lease ids (rank
  // order). Idempotent: when job_id+attempt already holds live leases they
  // are returned unchanged. Conflict (naming node and GPUs) when a node is
  // unknown, down, drained, short of CPUs or memory, or a GPU is missing,
  // held or of the wrong type; InvalidArgument for a malformed request;
  // FailedPrecondition when that attempt's leases have already ended.
  Result<std::vector<uint64_t>> allocate(const AllocateRequest& req, Now now, Effects& out);
  // kill: lease.<node>.revoked, resources kept until run.finished.
  // Otherwise freed at once (lease.<node>.released). Releasing an ended
  // lease is a no-op; NotFound for an id never granted.
  Status release(uint64_t lease_id, bool kill, std::string_view reason, uint32_t grace_s, Now now, Effects& out,
                 fb::RevokeCause cause = fb::RevokeCause::Other);
  // A spot interruption notice for `name`: drained, and every live lease
  // revoked (cause SpotInterruption) with the time left until `deadline_ns`
  // as its grace, so each run gets SIGTERM now and is requeued.
  // deadline_ns 0: each lease's own grace (its job's grace_s). `cause`:
  // SpotInterruption, or Preemption for a move to owned nodes.
  void interrupt(std::string_view name, int64_t deadline_ns, std::string_view reason, Now now, Effects& out,
                 fb::RevokeCause cause = fb::RevokeCause::SpotInterruption);
  // Drained nodes take no new leases; running ones carry on.
  Status drain(std::string_view name, bool drain, std::string_view reason, Effects& out);

  // A node known to be gone (its cloud instance was released or vanished):
  // down at once, its leases lost, as check_liveness would after the
  // timeout. A node unknown or already down: nothing happens.
  void node_gone(std::string_view name, std::string_view reason, Now now, Effects& out);

  // --- bus events ---
  void run_started(uint64_t lease_id, std::string_view node, Effects& out);
  // Frees the lease (granted or revoking): lease.<node>.released.
  void run_finished(uint64_t lease_id, std::string_view node, std::string_view reason, Now now, Effects& out);

  // --- time ---
  // Every up node silent for node_timeout goes down: node.down, then
  // lease.<node>.lost for each lease it held (their resources are freed; the
  // node takes nothing until it registers again).
  void check_liveness(Now now, Effects& out);
  // Drops leases that ended before `wall_ns` (at most `max` of them): memory
  // and store stay bounded. An Allocate of a forgotten job attempt is
  // granted afresh; an agent still reporting one is told to kill it.
  void forget_ended_before(int64_t wall_ns, size_t max, Effects& out);

  // --- views ---
  const std::map<std::string, Node, std::less<>>& nodes() const { return nodes_; }
  const Node* node(std::string_view name) const;
  const Lease* lease(uint64_t id) const;
  // Live leases of a node, by id.
  std::vector<const Lease*> live_leases(std::string_view node) const;
  uint64_t next_lease_id() const { return next_lease_id_; }
  size_t live_lease_count() const { return live_count_; }
  size_t lease_count() const { return leases_.size(); }
  size_t total_gpus() const;
  size_t free_gpus() const;  // on nodes up and not drained
  const ClusterOptions& options() const { return options_; }

 private:
  using JobAttempt = std::pair<uint64_t, uint32_t>;
  // What one lease of an allocation takes besides its GPUs.
  struct LeaseSize {
    uint32_t cpus = 0;
    uint64_t memory_mb = 0;
  };

  // An Allocate of a job attempt that already has leases: those same leases,
  // or FailedPrecondition once any of them has ended.
  Result<std::vector<uint64_t>> earlier_grant(const AllocateRequest& req, const std::vector<uint64_t>& ids) const;
  // Every placement checked against its node (check_placement), with the
  // CPUs and memory each lease takes; a gang's refusal names the gang.
  Result<std::vector<LeaseSize>> check_placements(const AllocateRequest& req, const fb::JobSpecT& spec) const;
  Status check_placement(const PlacementRequest& p, uint32_t cpus, uint64_t memory_mb, const fb::JobSpecT& spec) const;
  void take(Node& n, const Lease& l);
  void give_back(Node& n, const Lease& l);
  // Ends a live lease (released or lost): frees it and drops its spec.
  void end(Lease& l, LeaseState state, std::string_view reason, Now now, Effects& out);
  void revoke_zombie(Node& n, uint64_t lease_id, std::string_view why, Effects& out);
  void mark_down(Node& n, std::string_view reason, Now now, Effects& out);
  // Ends every lease the node holds as lost (their jobs are requeued).
  void lose_leases(Node& n, const std::string& reason, Now now, Effects& out);

  ClusterOptions options_;
  std::map<std::string, Node, std::less<>> nodes_;
  std::map<uint64_t, Lease> leases_;  // every lease ever granted; ended ones slim
  std::map<JobAttempt, std::vector<uint64_t>> by_job_;
  std::multimap<int64_t, uint64_t> ended_;  // ended_ns -> lease id, oldest first
  uint64_t next_lease_id_ = 1;
  size_t live_count_ = 0;
};

}  // namespace trainyard::broker

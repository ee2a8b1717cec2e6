// EASY backfill's reservation book: where and when the first waiting job of
// each pool is due to start (as running jobs end at their time limits), and
// the rule that keeps a later job off the GPUs a reservation needs unless it
// ends before the reservation starts. Reads the cluster, never changes it.
#pragma once

#include <cstdint>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/cluster.h"
#include "core/policy.h"

namespace trainyard::scheduler {

// A backfill reservation: where and when a waiting job is due to start.
// Jobs that would still hold those GPUs at `start_ns` may not take them.
struct Reservation {
  JobId job = 0;
  uint16_t partition = 0;
  uint16_t pool_type = 0;      // the pool it reserves for (the job's type; 0: any)
  uint16_t type = 0;           // the GPU type reserved
  int64_t start_ns = 0;
  std::vector<NodeIdx> nodes;
  std::vector<uint32_t> need;  // GPUs of `type` it needs on each node
  std::vector<uint32_t> avail; // GPUs of `type` free there at start_ns (less what backfilled jobs took)
  bool for_preemption = false; // room its victims leave (starts now)
};

class Reservations {
 public:
  // `cluster` must outlive the book.
  explicit Reservations(const Cluster& cluster);
  // The filter handed to Cluster::place points into the book.
  Reservations(const Reservations&) = delete;
  Reservations& operator=(const Reservations&) = delete;

  // A full cycle starts: the reservations are forgotten. Unless recompute()
  // was called since the last one, those not made for preemption are kept
  // aside and reused by find() while they still hold.
  void begin_cycle();
  // Runs may have ended before their limits: the next cycle looks for
  // earlier starts instead of reusing reservations.
  void recompute() { recompute_ = true; }

  const std::vector<Reservation>& all() const { return reservations_; }
  bool empty() const { return reservations_.empty(); }
  size_t size() const { return reservations_.size(); }
  // A reservation of this cycle holds node n.
  bool holds(NodeIdx n) const { return reserved_.count(n) > 0; }
  bool holds_any_node() const { return !reserved_.empty(); }

  // Books `r`; a reservation without nodes is dropped (false).
  bool add(Reservation r);
  // The pool has a reservation, or find() was tried for it in this cycle.
  bool pool_reserved(uint16_t partition, uint16_t type) const;

  // The reservation for `e`'s earliest start on nodes no reservation holds:
  // its reservation of the last cycle when that still holds (*reused set),
  // else the GPU type and nodes where it starts soonest. Marks the pool
  // tried. Does not book it (add() does). nullopt: no start is known.
  std::optional<Reservation> find(const QueueEntry& e, int64_t now_ns, bool* reused);

  // For Cluster::place: accepts a node for job `job`, due to end at
  // `end_ns`, unless the GPUs it would take there are ones a reservation
  // starting before then still needs. Valid until the next call.
  const NodeFilter* filter_for(JobId job, int64_t end_ns);
  // Job `job`, due to end at `end_ns`, started on `picks`: what it takes
  // from reservations that start before it ends is no longer theirs.
  void charge(const std::vector<NodePick>& picks, JobId job, int64_t end_ns);

 private:
  bool allows(NodeIdx n, uint64_t gpus) const;
  std::optional<Reservation> reuse(const QueueEntry& e, int64_t now_ns);
  // Candidate GPU types for e: its own, or for "any" those its partition's
  // nodes have enough of.
  std::vector<uint16_t> types_for(const QueueEntry& e) const;
  // The earliest time `k` nodes of pool (p, t) free of reservations have `g`
  // GPUs of type t, and those nodes (kNever: never).
  int64_t earliest(uint16_t p, uint16_t t, uint32_t g, uint32_t k, int64_t now_ns, std::vector<NodeIdx>* nodes) const;

  const Cluster& cluster_;
  std::vector<Reservation> reservations_;
  std::unordered_map<NodeIdx, std::pair<uint32_t, uint32_t>> reserved_;  // node -> (reservation, slot)
  std::vector<std::pair<uint16_t, uint16_t>> pools_tried_;              // (partition, pool type)
  // Last cycle's reservations, reused (checked, not recomputed) by the
  // cycles between two periodic ticks while their job still leads its pool.
  std::vector<Reservation> kept_;
  bool recompute_ = true;
  NodeFilter filter_;
  JobId candidate_job_ = 0;     // the job being placed (for the filter)
  int64_t candidate_end_ns_ = 0;  // and its expected end
};

}  // namespace trainyard::scheduler

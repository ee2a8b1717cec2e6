// The scheduler's replica of the cluster, built from node.* and lease.*
// events: each node's GPUs, CPUs and memory, what holds them (leases the
// broker granted, and this scheduler's own placements still waiting for
// the broker), and free-capacity indexes that make best-fit placement cost
// a few bucket lookups instead of a scan of every node.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/config.h"
#include "core/job.h"
#include "util/status.h"
#include "trainyard/fb/nodes_generated.h"

namespace trainyard::scheduler {

using NodeIdx = uint32_t;

constexpr int64_t kNever = std::numeric_limits<int64_t>::max();

// Resources held on one node. GPUs as a bit mask of GPU indices (< 64).
struct Hold {
  uint64_t gpus = 0;
  uint32_t cpus = 0;
  uint64_t memory_mb = 0;
  int64_t end_ns = kNever;  // when the holder is expected to let go (its time limit); kNever: unknown
  bool exclusive = false;   // --exclusive: the whole node counts as held (nothing else is placed there)
};

// Where a job may run besides its partition and GPU type: sbatch's
// --nodelist (on these nodes, every one), --exclude, --constraint (node
// labels: each term "KEY" (the label is set) or "KEY=VALUE"; all of
// `all_of`, each one of its alternatives) and --exclusive (a node with no
// other hold). Interned by the cluster; a Shape names one by its index.
struct Placement {
  std::vector<std::string> nodelist;
  std::vector<std::string> exclude;
  std::vector<std::vector<std::string>> all_of;
  bool exclusive = false;
  bool operator==(const Placement&) const = default;
};

// --constraint "ib&rack=r1|rack=r2" as Placement::all_of; InvalidArgument
// naming what is not supported (brackets, counts, parentheses).
Result<std::vector<std::vector<std::string>>> parse_constraint(std::string_view text);

// Free capacity as placement sees it: how many free GPUs sit on nodes that
// are wholly free (a large job can use them) and how many are scattered on
// partly used nodes (fragments).
struct Fragmentation {
  uint64_t free_gpus = 0;
  uint64_t free_on_whole_nodes = 0;
  uint64_t whole_free_nodes = 0;
  uint64_t nodes = 0;  // schedulable nodes
  // Share of the free GPUs that are on partly used nodes (0: none free).
  double ratio() const {
    return free_gpus ? static_cast<double>(free_gpus - free_on_whole_nodes) / static_cast<double>(free_gpus) : 0;
  }
};

// Accepts or refuses a node for a placement: `gpus` the GPUs it would pick
// there. Lets the cycle keep backfilled jobs off reserved resources.
using NodeFilter = std::function<bool(NodeIdx node, uint64_t gpus)>;

// One node of a placement: the node and the GPUs picked on it.
struct NodePick {
  NodeIdx node = 0;
  uint64_t gpus = 0;
};

std::vector<uint32_t> gpu_list(uint64_t mask);
uint64_t gpu_mask(const std::vector<uint32_t>& indices);

class Cluster {
 public:
  explicit Cluster(std::vector<PartitionConfig> partitions);

  // --- partitions and GPU types ---
  size_t partition_count() const { return partitions_.size(); }
  std::optional<uint16_t> partition_index(std::string_view name) const;
  const PartitionConfig& partition(uint16_t p) const { return partitions_[p]; }
  // 0 for "" (any type); nullopt for a type no node or config has named.
  std::optional<uint16_t> gpu_type_index(std::string_view type) const;
  uint16_t intern_gpu_type(std::string_view type);
  const std::string& gpu_type_name(uint16_t t) const { return types_[t]; }
  size_t gpu_type_count() const { return types_.size(); }
  // Types the nodes of partition p have (names).
  std::vector<std::string> gpu_types_in(uint16_t p) const;

  // What the largest known node of a partition offers (for validation).
  struct Limits {
    size_t nodes = 0;
    uint32_t max_cpus = 0;
    uint64_t max_memory_mb = 0;
    std::vector<uint32_t> max_gpus;  // by type index; [0]: any type
  };
  const Limits& limits(uint16_t p) const { return limits_[p]; }

  // --- nodes (node.* events) ---
  // node.up: registers a node or updates its resources; it is up.
  NodeIdx upsert(const fb::NodeInfoT& info);
  void set_up(std::string_view name, bool up);
  void set_drained(std::string_view name, bool drained);
  std::optional<NodeIdx> find_node(std::string_view name) const;
  const std::string& node_name(NodeIdx n) const { return nodes_[n].name; }
  size_t node_count() const { return nodes_.size(); }
  bool schedulable(NodeIdx n) const;

  // --- holds ---
  // lease.<node>.granted: the broker granted these resources (to any
  // scheduler's job). A lease on a node not seen yet is kept for it.
  void add_lease(uint64_t lease_id, std::string_view node, const std::vector<uint32_t>& gpus, uint32_t cpus,
                 uint64_t memory_mb, JobId job, uint32_t attempt, int64_t end_ns = kNever,
                 bool exclusive = false);
  // The expected end of a lease (its job's start plus time limit).
  void set_lease_end(uint64_t lease_id, int64_t end_ns);
  // The lease is an --exclusive job's: its whole node counts as held
  // (restore learns it from the job after the lease).
  void set_lease_exclusive(uint64_t lease_id);
  // lease.<node>.released / .lost. Unknown ids are ignored.
  void remove_lease(uint64_t lease_id);
  bool has_lease(uint64_t lease_id) const { return leases_.count(lease_id) > 0; }
  // This scheduler placed `job` on `node` and asked the broker: the
  // resources count as used until the lease arrives or the broker says no.
  void add_tentative(JobId job, NodeIdx node, const Hold& hold);
  void remove_tentative(JobId job, NodeIdx node);
  void remove_tentatives(JobId job);
  size_t lease_count() const { return leases_.size(); }

  // --- placement ---
  // False when no single node could hold one node's worth of `shape` (a
  // constant-time check: the cycle's fast path for a full cluster).
  bool may_fit(const Shape& shape) const;
  // Best fit: shape.nodes distinct nodes of the partition, each with the
  // fewest free GPUs (of the type) that still hold shape.gpus, CPUs and
  // memory, and that `filter` (when given) accepts. On a node, the GPUs of
  // one NUMA domain are preferred (the fullest domain that holds them).
  // All or nothing: false leaves `out` empty.
  bool place(const Shape& shape, std::vector<NodePick>* out, const NodeFilter* filter = nullptr) const;
  // The index of a placement rule for Shape::where (0 for "anywhere").
  uint32_t intern_placement(Placement p);
  const Placement& placement(uint32_t where) const { return placements_[where]; }
  // Whether node n is one a job with rule `where` may use now.
  bool allows(uint32_t where, NodeIdx n) const;
  // Free GPUs on schedulable nodes.
  uint64_t free_gpus() const { return free_gpus_; }
  uint64_t free_gpus_on(NodeIdx n) const;
  Fragmentation fragmentation() const;
  // Schedulable GPUs by type index ([0]: every type).
  const std::vector<uint64_t>& capacity() const { return capacity_; }

  // --- what reservations and preemption read ---
  // Schedulable nodes of a (partition, GPU type) pool (in bucket order:
  // callers that need an order sort or break ties by index).
  std::vector<NodeIdx> pool_nodes(uint16_t partition, uint16_t type) const;
  // GPUs of type t on node n (t 0: all), and which of them are free.
  uint64_t type_mask(NodeIdx n, uint16_t t) const;
  uint64_t free_mask(NodeIdx n) const { return nodes_[n].free_gpus; }
  // The earliest time node n has `gpus` GPUs of type t free, as its holds
  // end at their expected ends (kNever if not by any known end); *free_then
  // gets how many are free at that time.
  int64_t earliest_free(NodeIdx n, uint16_t t, uint32_t gpus, int64_t now_ns, uint32_t* free_then) const;
  // The type of GPU `index` on node n (0: unknown).
  uint16_t gpu_type_at(NodeIdx n, uint32_t index) const;
  // Picks `count` GPUs of `avail` on node n, one NUMA domain if it can.
  uint64_t pick_gpus(NodeIdx n, uint64_t avail, uint32_t count) const;
  // GPUs of type t free on node n at `when`, as holds end at their expected ends.
  uint32_t free_at(NodeIdx n, uint16_t t, int64_t when) const;
  bool in_partition(NodeIdx n, uint16_t p) const;
  bool fits_cpu_memory(NodeIdx n, const Shape& s) const {
    return nodes_[n].free_cpus >= s.cpus && nodes_[n].free_memory_mb >= s.memory_mb;
  }

 private:
  struct Membership {
    uint16_t partition;
    uint16_t type;
    uint32_t bucket;
    uint32_t slot;
  };
  struct Node {
    std::string name;
    bool known = false;  // a node.up was seen
    bool up = false;
    bool drained = false;
    uint64_t all_gpus = 0;
    std::vector<std::pair<uint16_t, uint64_t>> type_masks;  // (type, GPUs of it)
    uint32_t cpus = 0;
    uint64_t memory_mb = 0;
    std::vector<uint16_t> partitions;
    std::vector<std::pair<uint64_t, Hold>> leases;
    std::vector<std::pair<JobId, Hold>> tentative;
    uint64_t free_gpus = 0;
    uint32_t free_cpus = 0;
    uint64_t free_memory_mb = 0;
    uint64_t counted_free = 0;  // its share of free_gpus_
    uint64_t counted_whole = 0; // its share of whole_free_gpus_ (free GPUs when wholly free)
    bool counted_capacity = false;
    std::vector<uint64_t> numa_masks;  // GPUs by NUMA domain (empty: not reported)
    std::vector<std::pair<std::string, std::string>> labels;  // what --constraint reads
    std::vector<Membership> members;
  };
  // Nodes of one (partition, GPU type) by how many GPUs of the type they
  // have free: buckets[k] holds the nodes with exactly k free.
  struct Index {
    std::vector<std::vector<NodeIdx>> buckets;
    int top = -1;  // highest non-empty bucket
  };
  struct Lease {
    NodeIdx node;
    Hold hold;
    JobId job;
    uint32_t attempt;
  };

  NodeIdx node_for(std::string_view name);
  Index& index(uint16_t p, uint16_t t);
  const Index* find_index(uint16_t p, uint16_t t) const;
  void recompute_free(NodeIdx n);
  void reindex(NodeIdx n);
  void unindex(NodeIdx n);
  void index_insert(NodeIdx n, uint16_t p, uint16_t t, uint32_t bucket);
  void index_remove(NodeIdx n, size_t member);
  uint32_t free_of_type(const Node& node, uint16_t t) const;
  // The GPUs a hold keeps from others: an exclusive one, all of the node's.
  static uint64_t held_gpus(const Node& node, const Hold& h) { return h.exclusive ? node.all_gpus : h.gpus; }
  // upsert's two halves: the node's GPUs (by type and NUMA domain), and
  // the partitions it belongs to.
  void set_gpus(Node& node, const fb::NodeInfoT& info);
  void set_partitions(Node& node, const fb::NodeInfoT& info);
  void update_limits(const Node& node);
  void rebuild_limits();

  std::vector<PartitionConfig> partitions_;
  std::vector<std::string> types_{""};
  std::unordered_map<std::string, uint16_t> type_ids_;
  std::vector<Node> nodes_;
  std::unordered_map<std::string, NodeIdx> node_ids_;
  std::vector<std::vector<std::unique_ptr<Index>>> indexes_;  // [partition][type]
  std::vector<Limits> limits_;
  std::unordered_map<uint64_t, Lease> leases_;
  std::unordered_map<JobId, std::vector<NodeIdx>> tentative_by_job_;
  uint64_t free_gpus_ = 0;
  uint64_t whole_free_gpus_ = 0;
  uint64_t whole_free_nodes_ = 0;
  uint64_t schedulable_nodes_ = 0;
  std::vector<uint64_t> capacity_{0};
  std::vector<Placement> placements_{Placement{}};  // [0]: anywhere
  std::unordered_map<std::string, uint32_t> placement_ids_;
};

}  // namespace trainyard::scheduler

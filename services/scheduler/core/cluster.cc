#include "core/cluster.h"

#include <algorithm>
#include <bit>

#include "text/gpu_type.h"

namespace trainyard::scheduler {

std::vector<uint32_t> gpu_list(uint64_t mask) {
  std::vector<uint32_t> out;
  while (mask) {
    out.push_back(static_cast<uint32_t>(std::countr_zero(mask)));
    mask &= mask - 1;
  }
  return out;
}

uint64_t gpu_mask(const std::vector<uint32_t>& indices) {
  uint64_t m = 0;
  for (auto i : indices) {
    if (i < 64) m |= uint64_t{1} << i;
  }
  return m;
}

Cluster::Cluster(std::vector<PartitionConfig> partitions) : partitions_(std::move(partitions)) {
  if (partitions_.empty()) partitions_.push_back(PartitionConfig{"default", {}, 0, 0});
  limits_.resize(partitions_.size());
  indexes_.resize(partitions_.size());
  for (auto& l : limits_) l.max_gpus.assign(1, 0);
}

std::optional<uint16_t> Cluster::partition_index(std::string_view name) const {
  for (size_t i = 0; i < partitions_.size(); ++i) {
    if (partitions_[i].name == name) return static_cast<uint16_t>(i);
  }
  return std::nullopt;
}

std::optional<uint16_t> Cluster::gpu_type_index(std::string_view type) const {
  if (type.empty()) return 0;
  auto it = type_ids_.find(text::gpu_type_key(type));
  if (it == type_ids_.end()) return std::nullopt;
  return it->second;
}

uint16_t Cluster::intern_gpu_type(std::string_view type) {
  if (type.empty()) return 0;
  // Keyed case-insensitively: "a100" asked is the "A100" a node reports.
  auto [it, fresh] = type_ids_.emplace(text::gpu_type_key(type), static_cast<uint16_t>(types_.size()));
  if (fresh) {
    types_.emplace_back(type);
    for (auto& l : limits_) l.max_gpus.resize(types_.size(), 0);
    capacity_.resize(types_.size(), 0);
  }
  return it->second;
}

std::vector<std::string> Cluster::gpu_types_in(uint16_t p) const {
  std::vector<std::string> out;
  const auto& l = limits_[p];
  for (size_t t = 1; t < l.max_gpus.size(); ++t) {
    if (l.max_gpus[t] > 0) out.push_back(types_[t]);
  }
  return out;
}

NodeIdx Cluster::node_for(std::string_view name) {
  auto it = node_ids_.find(std::string(name));
  if (it != node_ids_.end()) return it->second;
  NodeIdx n = static_cast<NodeIdx>(nodes_.size());
  nodes_.emplace_back();
  nodes_.back().name = std::string(name);
  node_ids_.emplace(std::string(name), n);
  return n;
}

std::optional<NodeIdx> Cluster::find_node(std::string_view name) const {
  auto it = node_ids_.find(std::string(name));
  if (it == node_ids_.end()) return std::nullopt;
  return it->second;
}

bool Cluster::schedulable(NodeIdx n) const {
  const auto& node = nodes_[n];
  return node.known && node.up && !node.drained;
}

NodeIdx Cluster::upsert(const fb::NodeInfoT& info) {
  NodeIdx n = node_for(info.name);
  unindex(n);
  auto& node = nodes_[n];
  bool shrank = node.known && (info.cpus < node.cpus || info.memory_mb < node.memory_mb ||
                               info.gpus.size() < static_cast<size_t>(std::popcount(node.all_gpus)));
  node.up = true;
  node.cpus = info.cpus;
  node.memory_mb = info.memory_mb;
  set_gpus(node, info);
  set_partitions(node, info);
  node.labels.clear();
  for (auto& kv : info.labels) {
    if (kv) node.labels.emplace_back(kv->key, kv->value);
  }
  node.known = true;
  recompute_free(n);
  if (shrank) {
    rebuild_limits();
  } else {
    update_limits(node);
  }
  reindex(n);
  return n;
}

void Cluster::set_gpus(Node& node, const fb::NodeInfoT& info) {
  node.all_gpus = 0;
  node.type_masks.clear();
  node.numa_masks.clear();
  for (auto& g : info.gpus) {
    if (!g || g->index >= 64) continue;  // more than 64 GPUs on a node is not supported
    uint64_t bit = uint64_t{1} << g->index;
    node.all_gpus |= bit;
    if (g->numa_node >= 0 && g->numa_node < 64) {
      if (node.numa_masks.size() <= static_cast<size_t>(g->numa_node)) node.numa_masks.resize(g->numa_node + 1, 0);
      node.numa_masks[g->numa_node] |= bit;
    }
    uint16_t t = intern_gpu_type(g->type);
    if (t == 0) continue;
    auto it = std::find_if(node.type_masks.begin(), node.type_masks.end(), [&](auto& tm) { return tm.first == t; });
    if (it == node.type_masks.end()) {
      node.type_masks.emplace_back(t, bit);
    } else {
      it->second |= bit;
    }
  }
}

void Cluster::set_partitions(Node& node, const fb::NodeInfoT& info) {
  std::map<std::string, std::string, std::less<>> labels;
  for (auto& kv : info.labels) {
    if (kv) labels[kv->key] = kv->value;
  }
  if (node.known) {
    for (auto p : node.partitions) --limits_[p].nodes;
  }
  // A node naming a configured partition belongs to it; label-selected
  // partitions take every node whose labels match; a partition without
  // labels takes the nodes that name no configured partition.
  bool named = !info.partition.empty() && partition_index(info.partition).has_value();
  node.partitions.clear();
  for (size_t p = 0; p < partitions_.size(); ++p) {
    const auto& pc = partitions_[p];
    bool member = info.partition == pc.name;
    if (!member && !pc.labels.empty()) {
      member = std::all_of(pc.labels.begin(), pc.labels.end(), [&](auto& kv) {
        auto it = labels.find(kv.first);
        return it != labels.end() && it->second == kv.second;
      });
    } else if (!member) {
      member = !named;
    }
    if (member) {
      node.partitions.push_back(static_cast<uint16_t>(p));
      ++limits_[p].nodes;
    }
  }
}

void Cluster::update_limits(const Node& node) {
  for (auto p : node.partitions) {
    auto& l = limits_[p];
    l.max_cpus = std::max(l.max_cpus, node.cpus);
    l.max_memory_mb = std::max(l.max_memory_mb, node.memory_mb);
    if (l.max_gpus.size() < types_.size()) l.max_gpus.resize(types_.size(), 0);
    l.max_gpus[0] = std::max<uint32_t>(l.max_gpus[0], static_cast<uint32_t>(std::popcount(node.all_gpus)));
    for (auto& [t, m] : node.type_masks) {
      l.max_gpus[t] = std::max<uint32_t>(l.max_gpus[t], static_cast<uint32_t>(std::popcount(m)));
    }
  }
}

void Cluster::rebuild_limits() {
  for (auto& l : limits_) l = Limits{0, 0, 0, std::vector<uint32_t>(types_.size(), 0)};
  for (auto& nd : nodes_) {
    if (!nd.known) continue;
    update_limits(nd);
    for (auto p : nd.partitions) ++limits_[p].nodes;
  }
}

void Cluster::set_up(std::string_view name, bool up) {
  auto n = find_node(name);
  if (!n) return;
  nodes_[*n].up = up;
  reindex(*n);
}

void Cluster::set_drained(std::string_view name, bool drained) {
  NodeIdx n = node_for(name);
  nodes_[n].drained = drained;
  reindex(n);
}

void Cluster::recompute_free(NodeIdx n) {
  auto& node = nodes_[n];
  uint64_t used = 0;
  uint64_t cpus = 0, mem = 0;
  auto add = [&](const Hold& h) {
    used |= held_gpus(node, h);
    cpus += h.exclusive ? node.cpus : h.cpus;
    mem += h.exclusive ? node.memory_mb : h.memory_mb;
  };
  for (auto& [id, h] : node.leases) add(h);
  for (auto& [id, h] : node.tentative) add(h);
  node.free_gpus = node.all_gpus & ~used;
  node.free_cpus = cpus >= node.cpus ? 0 : static_cast<uint32_t>(node.cpus - cpus);
  node.free_memory_mb = mem >= node.memory_mb ? 0 : node.memory_mb - mem;
}

uint32_t Cluster::free_of_type(const Node& node, uint16_t t) const {
  if (t == 0) return static_cast<uint32_t>(std::popcount(node.free_gpus));
  for (auto& [tt, m] : node.type_masks) {
    if (tt == t) return static_cast<uint32_t>(std::popcount(node.free_gpus & m));
  }
  return 0;
}

uint64_t Cluster::free_gpus_on(NodeIdx n) const { return static_cast<uint64_t>(std::popcount(nodes_[n].free_gpus)); }

Cluster::Index& Cluster::index(uint16_t p, uint16_t t) {
  auto& row = indexes_[p];
  if (row.size() <= t) row.resize(t + 1);
  if (!row[t]) row[t] = std::make_unique<Index>();
  return *row[t];
}

const Cluster::Index* Cluster::find_index(uint16_t p, uint16_t t) const {
  if (p >= indexes_.size()) return nullptr;
  auto& row = indexes_[p];
  return t < row.size() ? row[t].get() : nullptr;
}

void Cluster::index_insert(NodeIdx n, uint16_t p, uint16_t t, uint32_t bucket) {
  auto& ix = index(p, t);
  if (ix.buckets.size() <= bucket) ix.buckets.resize(bucket + 1);
  auto& b = ix.buckets[bucket];
  nodes_[n].members.push_back(Membership{p, t, bucket, static_cast<uint32_t>(b.size())});
  b.push_back(n);
  ix.top = std::max(ix.top, static_cast<int>(bucket));
}

void Cluster::index_remove(NodeIdx n, size_t member) {
  auto m = nodes_[n].members[member];
  auto& ix = index(m.partition, m.type);
  auto& b = ix.buckets[m.bucket];
  NodeIdx last = b.back();
  b[m.slot] = last;
  b.pop_back();
  if (last != n) {
    for (auto& lm : nodes_[last].members) {
      if (lm.partition == m.partition && lm.type == m.type) {
        lm.slot = m.slot;
        break;
      }
    }
  }
  while (ix.top >= 0 && ix.buckets[ix.top].empty()) --ix.top;
  auto& members = nodes_[n].members;
  members[member] = members.back();
  members.pop_back();
}

void Cluster::unindex(NodeIdx n) {
  auto& node = nodes_[n];
  while (!node.members.empty()) index_remove(n, node.members.size() - 1);
  free_gpus_ -= node.counted_free;
  node.counted_free = 0;
  if (node.counted_whole) {
    whole_free_gpus_ -= node.counted_whole;
    --whole_free_nodes_;
    node.counted_whole = 0;
  }
  if (node.counted_capacity) {
    capacity_[0] -= static_cast<uint64_t>(std::popcount(node.all_gpus));
    for (auto& [t, m] : node.type_masks) capacity_[t] -= static_cast<uint64_t>(std::popcount(m));
    --schedulable_nodes_;
    node.counted_capacity = false;
  }
}

void Cluster::reindex(NodeIdx n) {
  auto& node = nodes_[n];
  if (!schedulable(n)) {
    unindex(n);
    return;
  }
  free_gpus_ -= node.counted_free;
  node.counted_free = static_cast<uint64_t>(std::popcount(node.free_gpus));
  free_gpus_ += node.counted_free;
  uint64_t whole = node.all_gpus != 0 && node.free_gpus == node.all_gpus ? node.counted_free : 0;
  if (whole != node.counted_whole) {
    if (node.counted_whole) --whole_free_nodes_;
    if (whole) ++whole_free_nodes_;
    whole_free_gpus_ = whole_free_gpus_ - node.counted_whole + whole;
    node.counted_whole = whole;
  }
  if (!node.counted_capacity) {
    if (capacity_.size() < types_.size()) capacity_.resize(types_.size(), 0);
    capacity_[0] += static_cast<uint64_t>(std::popcount(node.all_gpus));
    for (auto& [t, m] : node.type_masks) capacity_[t] += static_cast<uint64_t>(std::popcount(m));
    ++schedulable_nodes_;
    node.counted_capacity = true;
  }
  if (node.members.empty()) {
    for (auto p : node.partitions) {
      index_insert(n, p, 0, free_of_type(node, 0));
      for (auto& [t, m] : node.type_masks) index_insert(n, p, t, free_of_type(node, t));
    }
    return;
  }
  // Move only the memberships whose count changed.
  for (size_t i = 0; i < nodes_[n].members.size();) {
    auto m = nodes_[n].members[i];
    uint32_t want = free_of_type(nodes_[n], m.type);
    if (want == m.bucket) {
      ++i;
      continue;
    }
    index_remove(n, i);  // swaps the last membership into i
    index_insert(n, m.partition, m.type, want);
    // The re-inserted membership went to the back; slot i now holds one
    // not yet checked (or is past the end).
  }
}

void Cluster::add_lease(uint64_t lease_id, std::string_view node_name, const std::vector<uint32_t>& gpus,
                        uint32_t cpus, uint64_t memory_mb, JobId job, uint32_t attempt, int64_t end_ns,
                        bool exclusive) {
  if (leases_.count(lease_id)) return;
  NodeIdx n = node_for(node_name);
  Hold h{gpu_mask(gpus), cpus, memory_mb, end_ns, exclusive};
  leases_.emplace(lease_id, Lease{n, h, job, attempt});
  nodes_[n].leases.emplace_back(lease_id, h);
  recompute_free(n);
  reindex(n);
}

void Cluster::set_lease_end(uint64_t lease_id, int64_t end_ns) {
  auto it = leases_.find(lease_id);
  if (it == leases_.end()) return;
  it->second.hold.end_ns = end_ns;
  for (auto& [id, h] : nodes_[it->second.node].leases) {
    if (id == lease_id) h.end_ns = end_ns;
  }
}

void Cluster::set_lease_exclusive(uint64_t lease_id) {
  auto it = leases_.find(lease_id);
  if (it == leases_.end() || it->second.hold.exclusive) return;
  it->second.hold.exclusive = true;
  NodeIdx n = it->second.node;
  for (auto& [id, h] : nodes_[n].leases) {
    if (id == lease_id) h.exclusive = true;
  }
  recompute_free(n);
  reindex(n);
}

void Cluster::remove_lease(uint64_t lease_id) {
  auto it = leases_.find(lease_id);
  if (it == leases_.end()) return;
  NodeIdx n = it->second.node;
  leases_.erase(it);
  auto& v = nodes_[n].leases;
  v.erase(std::remove_if(v.begin(), v.end(), [&](auto& l) { return l.first == lease_id; }), v.end());
  recompute_free(n);
  reindex(n);
}

void Cluster::add_tentative(JobId job, NodeIdx n, const Hold& hold) {
  nodes_[n].tentative.emplace_back(job, hold);
  tentative_by_job_[job].push_back(n);
  recompute_free(n);
  reindex(n);
}

void Cluster::remove_tentative(JobId job, NodeIdx n) {
  auto& v = nodes_[n].tentative;
  auto before = v.size();
  v.erase(std::remove_if(v.begin(), v.end(), [&](auto& t) { return t.first == job; }), v.end());
  if (v.size() == before) return;
  if (auto it = tentative_by_job_.find(job); it != tentative_by_job_.end()) {
    auto& ns = it->second;
    ns.erase(std::remove(ns.begin(), ns.end(), n), ns.end());
    if (ns.empty()) tentative_by_job_.erase(it);
  }
  recompute_free(n);
  reindex(n);
}

void Cluster::remove_tentatives(JobId job) {
  auto it = tentative_by_job_.find(job);
  if (it == tentative_by_job_.end()) return;
  auto ns = std::move(it->second);
  tentative_by_job_.erase(it);
  for (NodeIdx n : ns) {
    auto& v = nodes_[n].tentative;
    v.erase(std::remove_if(v.begin(), v.end(), [&](auto& t) { return t.first == job; }), v.end());
    recompute_free(n);
    reindex(n);
  }
}

}  // namespace trainyard::scheduler

#include "core/backfill.h"

#include <algorithm>
#include <bit>

#include <tbb/parallel_for.h>

namespace trainyard::scheduler {

Reservations::Reservations(const Cluster& cluster) : cluster_(cluster) {
  filter_ = [this](NodeIdx n, uint64_t gpus) { return allows(n, gpus); };
}

bool Reservations::allows(NodeIdx n, uint64_t gpus) const {
  auto it = reserved_.find(n);
  if (it == reserved_.end()) return true;
  const Reservation& r = reservations_[it->second.first];
  if (r.job == candidate_job_ || candidate_end_ns_ <= r.start_ns) return true;
  uint32_t conflict = static_cast<uint32_t>(std::popcount(gpus & cluster_.type_mask(n, r.type)));
  uint32_t slot = it->second.second;
  return r.avail[slot] >= conflict + r.need[slot];
}

const NodeFilter* Reservations::filter_for(JobId job, int64_t end_ns) {
  candidate_job_ = job;
  candidate_end_ns_ = end_ns;
  return &filter_;
}

void Reservations::charge(const std::vector<NodePick>& picks, JobId job, int64_t end_ns) {
  for (auto& p : picks) {
    auto it = reserved_.find(p.node);
    if (it == reserved_.end()) continue;
    Reservation& r = reservations_[it->second.first];
    if (r.job == job || end_ns <= r.start_ns) continue;
    uint32_t conflict = static_cast<uint32_t>(std::popcount(p.gpus & cluster_.type_mask(p.node, r.type)));
    auto& avail = r.avail[it->second.second];
    avail -= std::min(avail, conflict);
  }
}

void Reservations::begin_cycle() {
  kept_.clear();
  if (!recompute_) {
    for (auto& r : reservations_) {
      if (!r.for_preemption) kept_.push_back(std::move(r));
    }
  }
  recompute_ = false;
  reservations_.clear();
  reserved_.clear();
  pools_tried_.clear();
}

bool Reservations::add(Reservation r) {
  if (r.nodes.empty()) return false;
  uint32_t idx = static_cast<uint32_t>(reservations_.size());
  for (uint32_t i = 0; i < r.nodes.size(); ++i) reserved_[r.nodes[i]] = {idx, i};
  reservations_.push_back(std::move(r));
  return true;
}

bool Reservations::pool_reserved(uint16_t partition, uint16_t type) const {
  // Reserved, or tried in this cycle without finding a start.
  for (auto& [p, t] : pools_tried_) {
    if (p == partition && t == type) return true;
  }
  return false;
}

std::optional<Reservation> Reservations::find(const QueueEntry& e, int64_t now_ns, bool* reused) {
  uint16_t p = e.shape.partition;
  uint32_t g = e.shape.gpus, k = e.shape.nodes;
  *reused = false;
  if (g == 0 || p >= cluster_.partition_count()) return std::nullopt;
  pools_tried_.emplace_back(p, e.shape.gpu_type);
  if (auto kept = reuse(e, now_ns)) {
    *reused = true;
    return kept;
  }
  // "Any" type: the type where it starts soonest.
  int64_t best_start = kNever;
  uint16_t best_type = 0;
  std::vector<NodeIdx> best_nodes, nodes;
  for (uint16_t t : types_for(e)) {
    int64_t start = earliest(p, t, g, k, now_ns, &nodes);
    if (start < best_start) {
      best_start = start;
      best_type = t;
      best_nodes = std::move(nodes);
    }
  }
  if (best_start == kNever) return std::nullopt;
  Reservation r;
  r.job = e.id;
  r.partition = p;
  r.pool_type = e.shape.gpu_type;
  r.type = best_type;
  r.start_ns = best_start;
  r.nodes = best_nodes;
  r.need.assign(k, g);
  for (NodeIdx n : best_nodes) r.avail.push_back(cluster_.free_at(n, best_type, best_start));
  return r;
}

std::optional<Reservation> Reservations::reuse(const QueueEntry& e, int64_t now_ns) {
  // The reservation it had in the last cycle, if it still holds: its nodes
  // free of other reservations and still due to have room at its start.
  for (auto& kept : kept_) {
    if (kept.job != e.id || kept.start_ns < now_ns) continue;
    bool holds = true;
    for (size_t i = 0; i < kept.nodes.size() && holds; ++i) {
      NodeIdx n = kept.nodes[i];
      holds = !reserved_.count(n) && cluster_.schedulable(n);
      if (holds) {
        kept.avail[i] = cluster_.free_at(n, kept.type, kept.start_ns);
        holds = kept.avail[i] >= kept.need[i];
      }
    }
    if (!holds) break;
    Reservation r = std::move(kept);
    kept.job = 0;
    return r;
  }
  return std::nullopt;
}

std::vector<uint16_t> Reservations::types_for(const QueueEntry& e) const {
  std::vector<uint16_t> types;
  if (e.shape.gpu_type) {
    types.push_back(e.shape.gpu_type);
    return types;
  }
  const auto& lim = cluster_.limits(e.shape.partition);
  for (size_t t = 1; t < lim.max_gpus.size(); ++t) {
    if (lim.max_gpus[t] >= e.shape.gpus) types.push_back(static_cast<uint16_t>(t));
  }
  if (types.empty()) types.push_back(0);
  return types;
}

int64_t Reservations::earliest(uint16_t p, uint16_t t, uint32_t g, uint32_t k, int64_t now_ns,
                               std::vector<NodeIdx>* out) const {
  std::vector<NodeIdx> nodes = cluster_.pool_nodes(p, t);
  nodes.erase(std::remove_if(nodes.begin(), nodes.end(),
                             [&](NodeIdx n) {
                               return reserved_.count(n) ||
                                      static_cast<uint32_t>(std::popcount(cluster_.type_mask(n, t))) < g;
                             }),
              nodes.end());
  if (nodes.size() < k) return kNever;
  // When each node can hold it, as running jobs end at their limits:
  // independent per node, so scored in parallel on large pools.
  std::vector<int64_t> at(nodes.size());
  auto score = [&](size_t i) { at[i] = cluster_.earliest_free(nodes[i], t, g, now_ns, nullptr); };
  if (nodes.size() >= 2048) {
    tbb::parallel_for(tbb::blocked_range<size_t>(0, nodes.size(), 512), [&](const tbb::blocked_range<size_t>& r) {
      for (size_t i = r.begin(); i != r.end(); ++i) score(i);
    });
  } else {
    for (size_t i = 0; i < nodes.size(); ++i) score(i);
  }
  std::vector<uint32_t> order(nodes.size());
  for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
  auto earlier = [&](uint32_t a, uint32_t b) { return at[a] != at[b] ? at[a] < at[b] : nodes[a] < nodes[b]; };
  std::nth_element(order.begin(), order.begin() + (k - 1), order.end(), earlier);
  std::sort(order.begin(), order.begin() + k, earlier);
  out->clear();
  for (uint32_t i = 0; i < k; ++i) out->push_back(nodes[order[i]]);
  return at[order[k - 1]];
}

}  // namespace trainyard::scheduler

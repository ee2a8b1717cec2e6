// The cluster replica's read side: best-fit placement over the free-capacity
// indexes, and what reservations and preemption read (GPU masks by type,
// when a node's GPUs come free as holds end, fragmentation).
#include "core/cluster.h"

#include <algorithm>
#include <bit>

namespace trainyard::scheduler {

bool Cluster::may_fit(const Shape& s) const {
  const Index* ix = find_index(s.partition, s.gpu_type);
  return ix && ix->top >= static_cast<int>(s.gpus);
}

bool Cluster::place(const Shape& s, std::vector<NodePick>* out, const NodeFilter* filter) const {
  out->clear();
  const Index* ix = find_index(s.partition, s.gpu_type);
  if (!ix || ix->top < static_cast<int>(s.gpus)) return false;
  for (int k = static_cast<int>(s.gpus); k <= ix->top; ++k) {
    for (NodeIdx n : ix->buckets[k]) {
      const auto& node = nodes_[n];
      if (node.free_cpus < s.cpus || node.free_memory_mb < s.memory_mb) continue;
      if (s.where && !allows(s.where, n)) continue;
      uint64_t pick = pick_gpus(n, node.free_gpus & type_mask(n, s.gpu_type), s.gpus);
      if (filter && !(*filter)(n, pick)) continue;
      out->push_back(NodePick{n, pick});
      if (out->size() == s.nodes) return true;
    }
  }
  out->clear();
  return false;
}

uint32_t Cluster::intern_placement(Placement p) {
  if (p == Placement{}) return 0;
  // Names cannot hold NUL (check_text), so NUL separates the parts.
  std::string key(1, p.exclusive ? 'x' : '-');
  for (auto* list : {&p.nodelist, &p.exclude}) {
    for (auto& n : *list) key += n + '\0';
    key += '\1';
  }
  for (auto& any_of : p.all_of) {
    for (auto& t : any_of) key += t + '\0';
    key += '\1';
  }
  auto [it, fresh] = placement_ids_.emplace(std::move(key), static_cast<uint32_t>(placements_.size()));
  if (fresh) placements_.push_back(std::move(p));
  return it->second;
}

bool Cluster::allows(uint32_t where, NodeIdx n) const {
  if (where == 0 || where >= placements_.size()) return true;
  const Placement& p = placements_[where];
  const Node& node = nodes_[n];
  auto named = [&node](const std::vector<std::string>& names) {
    return std::find(names.begin(), names.end(), node.name) != names.end();
  };
  if (!p.nodelist.empty() && !named(p.nodelist)) return false;
  if (named(p.exclude)) return false;
  if (p.exclusive && (!node.leases.empty() || !node.tentative.empty())) return false;
  auto has = [&node](std::string_view term) {
    auto eq = term.find('=');
    std::string_view key = term.substr(0, eq);
    for (auto& [k, v] : node.labels) {
      if (k == key && (eq == std::string_view::npos || v == term.substr(eq + 1))) return true;
    }
    return false;
  };
  for (auto& any_of : p.all_of) {
    if (std::none_of(any_of.begin(), any_of.end(), has)) return false;
  }
  return true;
}

Result<std::vector<std::vector<std::string>>> parse_constraint(std::string_view text) {
  std::vector<std::vector<std::string>> all_of;
  if (text.empty()) return all_of;
  if (text.find_first_of("[]()*") != std::string_view::npos) {
    return Status::invalid("constraint: '" + std::string(text) +
                           "': brackets, parentheses and counts are not supported; write labels joined by & "
                           "(all of them) and | (one of them), such as ib&rack=r1|rack=r2");
  }
  std::vector<std::string> any_of;
  std::string term;
  auto end_term = [&]() -> Status {
    if (term.empty()) return Status::invalid("constraint: '" + std::string(text) + "' has an empty label");
    any_of.push_back(std::move(term));
    term.clear();
    return Status::success();
  };
  for (char c : text) {
    if (c == '&' || c == ',' || c == '|') {
      if (auto s = end_term(); !s) return s;
      if (c != '|') {
        all_of.push_back(std::move(any_of));
        any_of.clear();
      }
    } else if (c != ' ') {
      term += c;
    }
  }
  if (auto s = end_term(); !s) return s;
  all_of.push_back(std::move(any_of));
  return all_of;
}

uint64_t Cluster::pick_gpus(NodeIdx n, uint64_t avail, uint32_t count) const {
  auto lowest = [](uint64_t mask, uint32_t k) {
    uint64_t pick = 0;
    for (uint32_t i = 0; i < k && mask; ++i) {
      uint64_t low = mask & (~mask + 1);
      pick |= low;
      mask ^= low;
    }
    return pick;
  };
  const auto& numa = nodes_[n].numa_masks;
  if (count <= 1 || numa.size() <= 1) return lowest(avail, count);
  // The fullest domain that still holds them all (best fit, as across
  // nodes); else the fewest domains, largest first.
  int best = -1;
  int best_free = 65;
  for (size_t d = 0; d < numa.size(); ++d) {
    int f = std::popcount(avail & numa[d]);
    if (f >= static_cast<int>(count) && f < best_free) {
      best = static_cast<int>(d);
      best_free = f;
    }
  }
  if (best >= 0) return lowest(avail & numa[best], count);
  std::vector<std::pair<int, size_t>> by_free;
  for (size_t d = 0; d < numa.size(); ++d) by_free.emplace_back(-std::popcount(avail & numa[d]), d);
  std::sort(by_free.begin(), by_free.end());
  uint64_t pick = 0, in_domains = 0;
  uint32_t left = count;
  for (auto& [negf, d] : by_free) {
    if (left == 0) break;
    uint64_t p = lowest(avail & numa[d], left);
    pick |= p;
    in_domains |= numa[d];
    left -= static_cast<uint32_t>(std::popcount(p));
  }
  // GPUs without a reported domain make up the rest.
  if (left) pick |= lowest(avail & ~in_domains & ~pick, left);
  return pick;
}

uint64_t Cluster::type_mask(NodeIdx n, uint16_t t) const {
  const auto& node = nodes_[n];
  if (t == 0) return node.all_gpus;
  for (auto& [tt, m] : node.type_masks) {
    if (tt == t) return m;
  }
  return 0;
}

uint16_t Cluster::gpu_type_at(NodeIdx n, uint32_t index) const {
  if (index >= 64) return 0;
  uint64_t bit = uint64_t{1} << index;
  for (auto& [t, m] : nodes_[n].type_masks) {
    if (m & bit) return t;
  }
  return 0;
}

std::vector<NodeIdx> Cluster::pool_nodes(uint16_t p, uint16_t t) const {
  std::vector<NodeIdx> out;
  const Index* ix = find_index(p, t);
  if (!ix) return out;
  for (int k = 0; k <= ix->top; ++k) out.insert(out.end(), ix->buckets[k].begin(), ix->buckets[k].end());
  return out;
}

int64_t Cluster::earliest_free(NodeIdx n, uint16_t t, uint32_t gpus, int64_t now_ns, uint32_t* free_then) const {
  const auto& node = nodes_[n];
  uint64_t mask = type_mask(n, t);
  uint32_t f = static_cast<uint32_t>(std::popcount(node.free_gpus & mask));
  if (free_then) *free_then = f;
  if (f >= gpus) return now_ns;
  // Few holds per node: collect (end, GPUs of the type) and walk them in
  // end order.
  std::pair<int64_t, uint32_t> ends[64];
  size_t count = 0;
  auto add = [&](const Hold& h) {
    uint32_t g = static_cast<uint32_t>(std::popcount(held_gpus(node, h) & mask));
    if (g && count < 64) ends[count++] = {h.end_ns, g};
  };
  for (auto& [id, h] : node.leases) add(h);
  for (auto& [id, h] : node.tentative) add(h);
  std::sort(ends, ends + count);
  for (size_t i = 0; i < count; ++i) {
    if (ends[i].first == kNever) break;
    f += ends[i].second;
    // Every hold ending at the same moment frees its GPUs together.
    while (i + 1 < count && ends[i + 1].first == ends[i].first) f += ends[++i].second;
    if (f >= gpus) {
      if (free_then) *free_then = f;
      return std::max(ends[i].first, now_ns);
    }
  }
  return kNever;
}

uint32_t Cluster::free_at(NodeIdx n, uint16_t t, int64_t when) const {
  const auto& node = nodes_[n];
  uint64_t mask = type_mask(n, t);
  uint64_t free = node.free_gpus & mask;
  for (auto& [id, h] : node.leases) {
    if (h.end_ns <= when) free |= held_gpus(node, h) & mask;
  }
  for (auto& [id, h] : node.tentative) {
    if (h.end_ns <= when) free |= held_gpus(node, h) & mask;
  }
  return static_cast<uint32_t>(std::popcount(free));
}

bool Cluster::in_partition(NodeIdx n, uint16_t p) const {
  const auto& ps = nodes_[n].partitions;
  return std::find(ps.begin(), ps.end(), p) != ps.end();
}

Fragmentation Cluster::fragmentation() const {
  return Fragmentation{free_gpus_, whole_free_gpus_, whole_free_nodes_, schedulable_nodes_};
}

}  // namespace trainyard::scheduler

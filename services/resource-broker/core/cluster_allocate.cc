// Cluster::allocate: granting leases on nodes, a single node or a gang all
// or none, and the checks a placement must pass first (the rest of the
// cluster's requests are in cluster.cc).
#include "core/cluster.h"

#include <algorithm>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "text/gpu_type.h"

namespace trainyard::broker {

namespace {

// What the request's placements say alone, before any node is looked at:
// each names a node, no node twice, no GPU twice on a node.
Status check_placement_fields(const AllocateRequest& req) {
  bool gang = req.placements.size() > 1;
  std::set<std::string_view> seen_nodes;
  for (size_t i = 0; i < req.placements.size(); ++i) {
    const auto& p = req.placements[i];
    std::string field = gang ? fmt::format("Allocate.placements[{}]", i) : std::string("Allocate");
    if (p.node.empty()) return Status::invalid(field + ".node is missing: name the node to lease on");
    if (!seen_nodes.insert(p.node).second) {
      return Status::invalid(
          fmt::format("{}.node: node {} appears twice; a gang takes each node once", field, p.node));
    }
    std::set<uint32_t> gpus;
    for (auto g : p.gpus) {
      if (!gpus.insert(g).second) {
        return Status::invalid(fmt::format("{}.gpu_indices lists GPU {} of node {} twice", field, g, p.node));
      }
    }
  }
  return Status::success();
}

}  // namespace

Status Cluster::check_placement(const PlacementRequest& p, uint32_t cpus, uint64_t memory_mb,
                                const fb::JobSpecT& spec) const {
  auto it = nodes_.find(p.node);
  if (it == nodes_.end()) {
    return Status::conflict(fmt::format("node {} is not registered; GPUs {} cannot be granted there", p.node,
                                        fmt::join(p.gpus, ",")));
  }
  const Node& n = it->second;
  if (!n.up) {
    return Status::conflict(
        fmt::format("node {} is down ({}); GPUs {} cannot be granted", p.node, n.down_reason, fmt::join(p.gpus, ",")));
  }
  if (n.drained) {
    return Status::conflict(fmt::format("node {} is drained ({}); GPUs {} cannot be granted", p.node, n.drain_reason,
                                        fmt::join(p.gpus, ",")));
  }
  std::vector<uint32_t> missing, held, wrong_type;
  std::set<std::string> holders;
  for (auto g : p.gpus) {
    if (!n.has_gpu(g)) {
      missing.push_back(g);
      continue;
    }
    auto h = n.gpu_holder.find(g);
    if (h != n.gpu_holder.end()) {
      held.push_back(g);
      holders.insert(fmt::format("lease {} of job {}", h->second, leases_.at(h->second).job_id));
    }
    if (!spec.gpu_type.empty() && !text::same_gpu_type(n.gpu_type(g), spec.gpu_type)) wrong_type.push_back(g);
  }
  if (!missing.empty()) {
    return Status::conflict(fmt::format("node {} has no GPU {} ({} GPUs registered)", p.node, fmt::join(missing, ","),
                                        n.info->gpus.size()));
  }
  if (!held.empty()) {
    return Status::conflict(fmt::format("GPUs {} of node {} are not free (held by {}); retry with free GPUs",
                                        fmt::join(held, ","), p.node, fmt::join(holders, ", ")));
  }
  if (!wrong_type.empty()) {
    return Status::conflict(fmt::format("GPUs {} of node {} are not of type {} asked by the job",
                                        fmt::join(wrong_type, ","), p.node, spec.gpu_type));
  }
  // Compared as what is asked against what is free: `used + asked` could wrap.
  if (n.info->cpus > 0 && cpus > n.info->cpus - std::min(n.cpus_used, n.info->cpus)) {
    return Status::conflict(fmt::format("node {} has {} of {} CPUs free, the lease on GPUs {} needs {}", p.node,
                                        n.info->cpus - std::min(n.cpus_used, n.info->cpus), n.info->cpus,
                                        fmt::join(p.gpus, ","), cpus));
  }
  if (n.info->memory_mb > 0 && memory_mb > n.info->memory_mb - std::min(n.memory_used_mb, n.info->memory_mb)) {
    return Status::conflict(fmt::format("node {} has {} of {} MiB memory free, the lease on GPUs {} needs {}", p.node,
                                        n.info->memory_mb - std::min(n.memory_used_mb, n.info->memory_mb),
                                        n.info->memory_mb, fmt::join(p.gpus, ","), memory_mb));
  }
  return Status::success();
}

Result<std::vector<uint64_t>> Cluster::earlier_grant(const AllocateRequest& req,
                                                     const std::vector<uint64_t>& ids) const {
  for (auto id : ids) {
    const Lease& l = leases_.at(id);
    if (!l.live()) {
      return Status::failed_precondition(
          fmt::format("job {} attempt {} already had lease {} on node {}, which is {} ({}); allocate a new attempt",
                      req.job_id, req.attempt, l.id, l.node, to_string(l.state), l.end_reason));
    }
  }
  return ids;  // a retried Allocate (e.g. after a scheduler crash): the same leases
}

Result<std::vector<Cluster::LeaseSize>> Cluster::check_placements(const AllocateRequest& req,
                                                                  const fb::JobSpecT& spec) const {
  bool gang = req.placements.size() > 1;
  std::vector<LeaseSize> sizes;
  for (const auto& p : req.placements) {
    uint32_t cpus = p.cpus ? p.cpus : (spec.cpus ? spec.cpus : 1);
    uint64_t memory = p.memory_mb ? p.memory_mb : spec.memory_mb;
    if (auto s = check_placement(p, cpus, memory, spec); !s) {
      if (!gang) return s;
      return Status(s.code(), fmt::format("gang of job {} ({} nodes) not granted: {}", req.job_id,
                                          req.placements.size(), s.message()));
    }
    sizes.push_back({cpus, memory});
  }
  return sizes;
}

Result<std::vector<uint64_t>> Cluster::allocate(const AllocateRequest& req, Now now, Effects& out) {
  if (req.job_id == 0) return Status::invalid("Allocate.job_id is missing: name the job the lease is for");
  if (req.placements.empty()) {
    return Status::invalid("Allocate.node is missing: give node and gpu_indices, or placements for a gang");
  }
  if (auto it = by_job_.find({req.job_id, req.attempt}); it != by_job_.end()) return earlier_grant(req, it->second);
  if (auto s = check_placement_fields(req); !s) return s;
  static const fb::JobSpecT kEmptySpec;
  const fb::JobSpecT& spec = req.spec ? *req.spec : kEmptySpec;
  auto sizes = check_placements(req, spec);
  if (!sizes) return sizes.status();

  auto spec_ptr = req.spec ? req.spec : std::make_shared<const fb::JobSpecT>();
  std::vector<std::string> all_nodes;
  for (const auto& p : req.placements) all_nodes.push_back(p.node);
  std::vector<uint64_t> ids;
  for (size_t i = 0; i < req.placements.size(); ++i) {
    const auto& p = req.placements[i];
    Node& n = nodes_.at(p.node);
    Lease l;
    l.id = next_lease_id_++;
    l.job_id = req.job_id;
    l.attempt = req.attempt;
    l.node = p.node;
    l.gpus = p.gpus;
    l.cpus = (*sizes)[i].cpus;
    l.memory_mb = (*sizes)[i].memory_mb;
    l.spec = spec_ptr;
    l.array_index = req.array_index;
    l.array_job_id = req.array_job_id;
    l.gpu_type = p.gpus.empty() ? spec.gpu_type : n.gpu_type(p.gpus.front());
    l.node_rank = static_cast<uint32_t>(i);
    l.nodes = all_nodes;
    l.state = LeaseState::kGranted;
    l.granted_ns = now.wall_ns;
    l.grace_s = spec.grace_s;
    take(n, l);
    ++live_count_;
    ids.push_back(l.id);
    out.leases.insert(l.id);
    Event e{EventKind::kLeaseGranted, l.node};
    e.lease = l;
    out.events.push_back(std::move(e));
    leases_.emplace(l.id, std::move(l));
  }
  by_job_[{req.job_id, req.attempt}] = ids;
  out.lease_counter = true;
  return ids;
}

}  // namespace trainyard::broker

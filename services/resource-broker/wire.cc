#include "wire.h"

namespace trainyard::broker {

flatbuffers::Offset<fb::LeaseGranted> build_lease_granted(flatbuffers::FlatBufferBuilder& b, const Lease& l) {
  auto node = b.CreateString(l.node);
  auto gpus = b.CreateVector(l.gpus);
  flatbuffers::Offset<fb::JobSpec> spec = 0;
  if (l.spec) spec = fb::JobSpec::Pack(b, l.spec.get());
  auto type = b.CreateString(l.gpu_type);
  auto nodes = b.CreateVectorOfStrings(l.nodes);
  return fb::CreateLeaseGranted(b, l.id, l.job_id, l.attempt, node, gpus, l.cpus, l.memory_mb, spec, l.array_index,
                                type, l.node_rank, nodes, l.array_job_id);
}

WireEvent build_event(flatbuffers::FlatBufferBuilder& b, const Event& e) {
  WireEvent w;
  switch (e.kind) {
    case EventKind::kNodeUp:
      w.prefix = kNodePrefix;
      w.topic = "node.up";
      w.type = fb::Payload::NodeUp;
      w.payload = fb::CreateNodeUp(b, fb::NodeInfo::Pack(b, e.info.get())).Union();
      return w;
    case EventKind::kNodeDown:
      w.prefix = kNodePrefix;
      w.topic = "node.down";
      w.type = fb::Payload::NodeDown;
      w.payload = fb::CreateNodeDownDirect(b, e.node.c_str(), e.reason.c_str()).Union();
      return w;
    case EventKind::kNodeDrain:
      w.prefix = kNodePrefix;
      w.topic = "node.drain";
      w.type = fb::Payload::NodeDrained;
      w.payload = fb::CreateNodeDrainedDirect(b, e.node.c_str(), e.drained, e.reason.c_str()).Union();
      return w;
    case EventKind::kLeaseGranted:
      w.prefix = lease_prefix(e.node);
      w.topic = w.prefix + "granted";
      w.type = fb::Payload::LeaseGranted;
      w.payload = build_lease_granted(b, e.lease).Union();
      return w;
    case EventKind::kLeaseRevoked:
      w.prefix = lease_prefix(e.node);
      w.topic = w.prefix + "revoked";
      w.type = fb::Payload::LeaseRevoked;
      w.payload =
          fb::CreateLeaseRevokedDirect(b, e.lease.id, e.lease.job_id, e.node.c_str(), e.reason.c_str(), e.grace_s,
                                       e.cause)
              .Union();
      return w;
    case EventKind::kLeaseReleased:
      w.prefix = lease_prefix(e.node);
      w.topic = w.prefix + "released";
      w.type = fb::Payload::LeaseReleased;
      w.payload = fb::CreateLeaseReleasedDirect(b, e.lease.id, e.lease.job_id, e.node.c_str(), e.reason.c_str()).Union();
      return w;
    case EventKind::kLeaseLost:
      w.prefix = lease_prefix(e.node);
      w.topic = w.prefix + "lost";
      w.type = fb::Payload::LeaseLost;
      w.payload = fb::CreateLeaseLostDirect(b, e.lease.id, e.lease.job_id, e.lease.attempt, e.node.c_str(),
                                            e.reason.c_str())
                      .Union();
      return w;
  }
  return w;
}

flatbuffers::Offset<fb::NodeStatus> build_node_status(flatbuffers::FlatBufferBuilder& b, const Node& n) {
  auto info = fb::NodeInfo::Pack(b, n.info.get());
  auto reason = b.CreateString(!n.up ? n.down_reason : n.drain_reason);
  std::vector<uint32_t> gpus;
  for (auto& [index, lease] : n.gpu_holder) gpus.push_back(index);
  auto allocated = b.CreateVector(gpus);
  std::vector<uint64_t> ids(n.leases.begin(), n.leases.end());
  auto leases = b.CreateVector(ids);
  return fb::CreateNodeStatus(b, info, n.up, n.drained, reason, allocated, leases, n.last_heartbeat_ns);
}

AllocateRequest read_allocate(const fb::Allocate& a) {
  AllocateRequest r;
  r.job_id = a.job_id();
  r.attempt = a.attempt();
  r.array_index = a.array_index();
  r.array_job_id = a.array_job_id();
  if (a.spec()) r.spec = std::shared_ptr<const fb::JobSpecT>(a.spec()->UnPack());
  if (a.placements() && a.placements()->size() > 0) {
    for (auto* p : *a.placements()) {
      PlacementRequest pr;
      if (p->node()) pr.node = p->node()->str();
      if (p->gpu_indices()) pr.gpus.assign(p->gpu_indices()->begin(), p->gpu_indices()->end());
      pr.cpus = p->cpus();
      pr.memory_mb = p->memory_mb();
      r.placements.push_back(std::move(pr));
    }
  } else if (a.node()) {
    PlacementRequest pr;
    pr.node = a.node()->str();
    if (a.gpu_indices()) pr.gpus.assign(a.gpu_indices()->begin(), a.gpu_indices()->end());
    pr.cpus = a.cpus();
    pr.memory_mb = a.memory_mb();
    r.placements.push_back(std::move(pr));
  }
  return r;
}

std::vector<Event> snapshot_events(const Cluster& cluster, std::string_view prefix) {
  std::vector<Event> out;
  if (prefix == kNodePrefix) {
    for (auto& [name, n] : cluster.nodes()) {
      Event up{EventKind::kNodeUp, name};
      up.info = n.info;
      out.push_back(std::move(up));
      if (n.drained) {
        Event d{EventKind::kNodeDrain, name};
        d.drained = true;
        d.reason = n.drain_reason;
        out.push_back(std::move(d));
      }
      if (!n.up) {
        Event d{EventKind::kNodeDown, name};
        d.reason = n.down_reason;
        out.push_back(std::move(d));
      }
    }
    return out;
  }
  constexpr std::string_view kLease = "lease.";
  if (prefix.size() > kLease.size() + 1 && prefix.substr(0, kLease.size()) == kLease && prefix.back() == '.') {
    auto node = prefix.substr(kLease.size(), prefix.size() - kLease.size() - 1);
    for (const Lease* l : cluster.live_leases(node)) {
      Event g{EventKind::kLeaseGranted, l->node};
      g.lease = *l;
      out.push_back(std::move(g));
      if (l->state == LeaseState::kRevoking) {
        Event r{EventKind::kLeaseRevoked, l->node};
        r.lease = *l;
        r.reason = l->revoke_reason;
        r.grace_s = l->grace_s;
        r.cause = l->revoke_cause == fb::RevokeCause::Unknown ? fb::RevokeCause::Other : l->revoke_cause;
        out.push_back(std::move(r));
      }
    }
  }
  return out;
}

}  // namespace trainyard::broker

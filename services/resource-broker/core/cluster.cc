#include "core/cluster.h"

#include <algorithm>
#include <set>

#include <fmt/format.h>

namespace trainyard::broker {

std::string_view to_string(LeaseState s) {
  switch (s) {
    case LeaseState::kGranted: return "granted";
    case LeaseState::kRevoking: return "revoking";
    case LeaseState::kReleased: return "released";
    case LeaseState::kLost: return "lost";
  }
  return "unknown";
}

bool Node::has_gpu(uint32_t index) const {
  for (auto& g : info->gpus) {
    if (g && g->index == index) return true;
  }
  return false;
}

std::string Node::gpu_type(uint32_t index) const {
  for (auto& g : info->gpus) {
    if (g && g->index == index) return g->type;
  }
  return {};
}

namespace {

// Node names become topic parts (lease.<node>.granted): a '.' would make one
// node's prefix a prefix of another's, so a subscriber to lease.a. would also
// get lease.a.b.'s leases.
Status check_node_name(std::string_view name) {
  if (name.empty()) return Status::invalid("RegisterNode.node.name is missing: give the node's short hostname");
  for (char c : name) {
    if (c == '.' || c == '@' || c == '\0' || static_cast<unsigned char>(c) <= ' ') {
      return Status::invalid(fmt::format(
          "RegisterNode.node.name '{}' must not contain '.', '@' or spaces (it names the topic lease.<node>.); "
          "use the short hostname",
          name));
    }
  }
  return Status::success();
}

}  // namespace

// --- recovery ---

void Cluster::restore_node(Node node) {
  node.gpu_holder.clear();
  node.leases.clear();
  node.zombies_revoked.clear();
  node.cpus_used = 0;
  node.memory_used_mb = 0;
  std::string name = node.name();
  nodes_.insert_or_assign(std::move(name), std::move(node));
}

Status Cluster::restore_lease(Lease lease) {
  next_lease_id_ = std::max(next_lease_id_, lease.id + 1);
  if (lease.live()) {
    auto it = nodes_.find(lease.node);
    if (it == nodes_.end()) {
      return Status::invalid(fmt::format("lease {} is on node {}, which has no record", lease.id, lease.node));
    }
    for (auto g : lease.gpus) {
      auto h = it->second.gpu_holder.find(g);
      if (h != it->second.gpu_holder.end()) {
        return Status::invalid(fmt::format("lease {} and lease {} both hold GPU {} of node {}", lease.id, h->second, g,
                                           lease.node));
      }
    }
    if (!lease.spec) lease.spec = std::make_shared<fb::JobSpecT>();
    take(it->second, lease);
    ++live_count_;
  }
  by_job_[{lease.job_id, lease.attempt}].push_back(lease.id);
  if (!lease.live()) ended_.emplace(lease.ended_ns, lease.id);
  leases_.insert_or_assign(lease.id, std::move(lease));
  return Status::success();
}

void Cluster::resume(Now now) {
  for (auto& [name, n] : nodes_) n.last_seen_mono_ns = now.mono_ns;
  for (auto& [id, l] : leases_) {
    if (l.state == LeaseState::kRevoking) l.revoked_mono_ns = now.mono_ns;
  }
  for (auto& [key, ids] : by_job_) {
    std::sort(ids.begin(), ids.end(),
              [this](uint64_t a, uint64_t b) { return leases_.at(a).node_rank < leases_.at(b).node_rank; });
  }
}

// --- requests ---

Status Cluster::register_node(std::shared_ptr<const fb::NodeInfoT> info, const std::vector<uint64_t>& running, Now now,
                              Effects& out) {
  if (!info) return Status::invalid("RegisterNode.node is missing: send the node's NodeInfo");
  if (auto s = check_node_name(info->name); !s) return s;
  std::set<uint32_t> indices;
  for (auto& g : info->gpus) {
    if (!g) continue;
    if (!indices.insert(g->index).second) {
      return Status::invalid(
          fmt::format("RegisterNode.node.gpus: node {} lists GPU index {} twice; each GPU needs its own index",
                      info->name, g->index));
    }
  }
  auto it = nodes_.find(info->name);
  if (it == nodes_.end()) {
    Node n;
    n.info = info;
    it = nodes_.emplace(info->name, std::move(n)).first;
  }
  Node& n = it->second;
  if (n.info && n.info->incarnation && info->incarnation && n.info->incarnation != info->incarnation) {
    // A new data directory under this name: its runs are gone with the old
    // one, and the agent will never report them. End them now, or their
    // jobs would stay running for ever.
    lose_leases(n, fmt::format("node {}'s agent came back with a new data directory: what it ran is gone", n.name()),
                now, out);
  }
  n.info = std::move(info);
  n.up = true;
  n.down_reason.clear();
  n.zombies_revoked.clear();  // a restarted agent may have missed earlier revokes
  n.last_heartbeat_ns = now.wall_ns;
  n.last_seen_mono_ns = now.mono_ns;
  out.nodes.insert(n.name());
  Event up{EventKind::kNodeUp, n.name()};
  up.info = n.info;
  out.events.push_back(std::move(up));

  for (auto id : std::set<uint64_t>(running.begin(), running.end())) {
    if (n.leases.count(id)) continue;
    auto lit = leases_.find(id);
    if (lit == leases_.end()) {
      revoke_zombie(n, id, "unknown to the broker", out);
    } else if (lit->second.node != n.name()) {
      revoke_zombie(n, id, fmt::format("granted on node {}, not here", lit->second.node), out);
    } else {
      revoke_zombie(n, id, fmt::format("{} ({})", to_string(lit->second.state), lit->second.end_reason), out);
    }
  }
  return Status::success();
}

Status Cluster::heartbeat(std::string_view name, const std::vector<uint64_t>& running, Now now, Effects& out) {
  auto it = nodes_.find(name);
  if (it == nodes_.end()) {
    return Status::not_found(fmt::format("node {} is not registered with the broker; send RegisterNode again", name));
  }
  Node& n = it->second;
  if (!n.up) {
    return Status::not_found(fmt::format(
        "node {} was declared down ({}); send RegisterNode again with the leases it still runs", name, n.down_reason));
  }
  n.last_heartbeat_ns = now.wall_ns;
  n.last_seen_mono_ns = now.mono_ns;

  std::set<uint64_t> reported(running.begin(), running.end());
  for (auto id : reported) {
    if (n.leases.count(id)) continue;
    auto lit = leases_.find(id);
    // A lease released a moment ago may still be reported by a heartbeat sent
    // before its run ended: leave those to register-time reconciliation.
    if (lit == leases_.end()) {
      revoke_zombie(n, id, "unknown to the broker", out);
    } else if (lit->second.state == LeaseState::kLost) {
      revoke_zombie(n, id, fmt::format("lost ({})", lit->second.end_reason), out);
    } else if (lit->second.node != n.name()) {
      revoke_zombie(n, id, fmt::format("granted on node {}, not here", lit->second.node), out);
    }
  }
  // A revoking lease the agent no longer runs, well past its grace: its
  // run.finished never came (the agent never started it, or lost it).
  std::vector<uint64_t> stale;
  for (auto id : n.leases) {
    auto& l = leases_.at(id);
    if (l.state != LeaseState::kRevoking || reported.count(id)) continue;
    int64_t wait = static_cast<int64_t>(l.grace_s) * 1'000'000'000 + options_.node_timeout_ns;
    if (now.mono_ns - l.revoked_mono_ns > wait) stale.push_back(id);
  }
  for (auto id : stale) {
    end(leases_.at(id), LeaseState::kReleased, "revoked and no longer running on the node (no run.finished seen)", now,
        out);
  }
  return Status::success();
}

// Cluster::allocate and its checks: cluster_allocate.cc.

Status Cluster::release(uint64_t lease_id, bool kill, std::string_view reason, uint32_t grace_s, Now now,
                        Effects& out, fb::RevokeCause cause) {
  auto it = leases_.find(lease_id);
  if (it == leases_.end()) {
    return Status::not_found(fmt::format("ReleaseLease.lease_id: lease {} was never granted by this broker", lease_id));
  }
  Lease& l = it->second;
  if (!l.live()) return Status::success();  // already ended: releasing again changes nothing
  std::string why = reason.empty() ? std::string(kill ? "revoked" : "released") : std::string(reason);
  if (!kill) {
    end(l, LeaseState::kReleased, why, now, out);
    return Status::success();
  }
  if (l.state == LeaseState::kRevoking) return Status::success();  // already asked; run.finished will free it
  l.state = LeaseState::kRevoking;
  l.revoke_reason = why;
  l.revoke_cause = cause;
  if (grace_s > 0) l.grace_s = grace_s;
  l.revoked_mono_ns = now.mono_ns;
  out.leases.insert(l.id);
  Event e{EventKind::kLeaseRevoked, l.node};
  e.lease = l;
  e.reason = why;
  e.grace_s = l.grace_s;
  e.cause = cause;
  out.events.push_back(std::move(e));
  return Status::success();
}

void Cluster::interrupt(std::string_view name, int64_t deadline_ns, std::string_view reason, Now now, Effects& out,
                        fb::RevokeCause cause) {
  (void)drain(name, true, reason, out);
  // 0: release keeps each lease's own grace (its job's grace_s).
  auto grace = deadline_ns == 0
                   ? 0u
                   : static_cast<uint32_t>(std::clamp<int64_t>((deadline_ns - now.wall_ns) / 1'000'000'000, 1, 3600));
  std::vector<uint64_t> ids;
  for (const Lease* l : live_leases(name)) ids.push_back(l->id);
  for (uint64_t id : ids) (void)release(id, true, reason, grace, now, out, cause);
}

Status Cluster::drain(std::string_view name, bool drain, std::string_view reason, Effects& out) {
  auto it = nodes_.find(name);
  if (it == nodes_.end()) {
    return Status::not_found(fmt::format("DrainNode.name: node {} is not registered (ListNodes shows the nodes)", name));
  }
  Node& n = it->second;
  std::string why = drain ? std::string(reason) : std::string();
  if (n.drained == drain && n.drain_reason == why) return Status::success();
  n.drained = drain;
  n.drain_reason = why;
  out.nodes.insert(n.name());
  Event e{EventKind::kNodeDrain, n.name()};
  e.drained = drain;
  e.reason = drain ? why : std::string(reason);
  out.events.push_back(std::move(e));
  return Status::success();
}

// --- bus events ---

void Cluster::run_started(uint64_t lease_id, std::string_view node, Effects& out) {
  auto it = leases_.find(lease_id);
  if (it == leases_.end() || !it->second.live() || it->second.node != node || it->second.started) return;
  it->second.started = true;
  out.leases.insert(lease_id);
}

void Cluster::run_finished(uint64_t lease_id, std::string_view node, std::string_view reason, Now now, Effects& out) {
  auto it = leases_.find(lease_id);
  // Ended already (lost with its node, released without kill): nothing held.
  if (it == leases_.end() || !it->second.live() || it->second.node != node) return;
  end(it->second, LeaseState::kReleased, reason.empty() ? "run finished" : reason, now, out);
}

// --- time ---

void Cluster::check_liveness(Now now, Effects& out) {
  for (auto& [name, n] : nodes_) {
    if (!n.up) continue;
    int64_t silent = now.mono_ns - n.last_seen_mono_ns;
    if (silent > options_.node_timeout_ns) {
      mark_down(n, fmt::format("no heartbeat for {} ms", silent / 1'000'000), now, out);
    }
  }
}

void Cluster::node_gone(std::string_view name, std::string_view reason, Now now, Effects& out) {
  auto it = nodes_.find(name);
  if (it == nodes_.end() || !it->second.up) return;
  mark_down(it->second, reason, now, out);
}

void Cluster::mark_down(Node& n, std::string_view reason, Now now, Effects& out) {
  n.up = false;
  n.down_reason = reason;
  out.nodes.insert(n.name());
  Event e{EventKind::kNodeDown, n.name()};
  e.reason = std::string(reason);
  out.events.push_back(std::move(e));
  lose_leases(n, fmt::format("node {} down: {}", n.name(), reason), now, out);
}

void Cluster::lose_leases(Node& n, const std::string& reason, Now now, Effects& out) {
  std::vector<uint64_t> held(n.leases.begin(), n.leases.end());
  for (auto id : held) end(leases_.at(id), LeaseState::kLost, reason, now, out);
}

void Cluster::forget_ended_before(int64_t wall_ns, size_t max, Effects& out) {
  size_t n = 0;
  std::vector<std::pair<int64_t, uint64_t>> later;
  while (!ended_.empty() && ended_.begin()->first < wall_ns && n < max) {
    auto [ended_ns, id] = *ended_.begin();
    ended_.erase(ended_.begin());
    auto it = leases_.find(id);
    if (it == leases_.end() || it->second.live()) continue;
    JobAttempt key{it->second.job_id, it->second.attempt};
    // A gang's attempt is forgotten only once none of its leases is live.
    auto& ids = by_job_[key];
    bool any_live = std::any_of(ids.begin(), ids.end(), [&](uint64_t other) {
      auto o = leases_.find(other);
      return o != leases_.end() && o->second.live();
    });
    if (any_live) {
      later.emplace_back(ended_ns, id);
      continue;
    }
    ids.erase(std::remove(ids.begin(), ids.end(), id), ids.end());
    if (ids.empty()) by_job_.erase(key);
    leases_.erase(it);
    out.leases.erase(id);
    out.forgotten.insert(id);
    ++n;
  }
  for (auto& e : later) ended_.insert(e);
}

// --- internals ---

void Cluster::take(Node& n, const Lease& l) {
  for (auto g : l.gpus) n.gpu_holder[g] = l.id;
  n.cpus_used += l.cpus;
  n.memory_used_mb += l.memory_mb;
  n.leases.insert(l.id);
}

void Cluster::give_back(Node& n, const Lease& l) {
  for (auto g : l.gpus) {
    auto h = n.gpu_holder.find(g);
    if (h != n.gpu_holder.end() && h->second == l.id) n.gpu_holder.erase(h);
  }
  n.cpus_used -= std::min(n.cpus_used, l.cpus);
  n.memory_used_mb -= std::min(n.memory_used_mb, l.memory_mb);
  n.leases.erase(l.id);
}

void Cluster::end(Lease& l, LeaseState state, std::string_view reason, Now now, Effects& out) {
  if (auto it = nodes_.find(l.node); it != nodes_.end()) give_back(it->second, l);
  l.state = state;
  l.end_reason = reason;
  l.ended_ns = now.wall_ns;
  l.spec.reset();
  --live_count_;
  ended_.emplace(l.ended_ns, l.id);
  out.leases.insert(l.id);
  Event e{state == LeaseState::kLost ? EventKind::kLeaseLost : EventKind::kLeaseReleased, l.node};
  e.lease = l;
  e.reason = std::string(reason);
  out.events.push_back(std::move(e));
}

void Cluster::revoke_zombie(Node& n, uint64_t lease_id, std::string_view why, Effects& out) {
  if (!n.zombies_revoked.insert(lease_id).second) return;
  Event e{EventKind::kLeaseRevoked, n.name()};
  e.lease.id = lease_id;
  e.lease.node = n.name();
  e.grace_s = 30;
  if (auto it = leases_.find(lease_id); it != leases_.end()) {
    e.lease.job_id = it->second.job_id;
    e.lease.attempt = it->second.attempt;
    if (it->second.grace_s > 0) e.grace_s = it->second.grace_s;
  }
  e.reason = fmt::format("lease {} is {}: the node must not run it", lease_id, why);
  out.events.push_back(std::move(e));
}

// --- views ---

const Node* Cluster::node(std::string_view name) const {
  auto it = nodes_.find(name);
  return it == nodes_.end() ? nullptr : &it->second;
}

const Lease* Cluster::lease(uint64_t id) const {
  auto it = leases_.find(id);
  return it == leases_.end() ? nullptr : &it->second;
}

std::vector<const Lease*> Cluster::live_leases(std::string_view node) const {
  std::vector<const Lease*> out;
  auto it = nodes_.find(node);
  if (it == nodes_.end()) return out;
  for (auto id : it->second.leases) out.push_back(&leases_.at(id));
  return out;
}

size_t Cluster::total_gpus() const {
  size_t n = 0;
  for (auto& [name, node] : nodes_) n += node.info->gpus.size();
  return n;
}

size_t Cluster::free_gpus() const {
  size_t n = 0;
  for (auto& [name, node] : nodes_) {
    if (!node.up || node.drained) continue;
    n += node.info->gpus.size() - std::min(node.info->gpus.size(), node.gpu_holder.size());
  }
  return n;
}

}  // namespace trainyard::broker

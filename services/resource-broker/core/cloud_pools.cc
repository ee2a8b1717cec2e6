// CloudPools: the lease lifecycle and what the drivers answered. The
// renting and releasing policy is in cloud_policy.cc.
#include "core/cloud_pools.h"

#include <algorithm>

#include <fmt/format.h>

namespace trainyard::broker {

std::string_view to_string(CloudState s) {
  switch (s) {
    case CloudState::kRequested: return "requested";
    case CloudState::kProvisioning: return "provisioning";
    case CloudState::kRegistering: return "registering";
    case CloudState::kReady: return "ready";
    case CloudState::kDraining: return "draining";
    case CloudState::kReleasing: return "releasing";
    case CloudState::kReleased: return "released";
    case CloudState::kFailed: return "failed";
  }
  return "unknown";
}

CloudPools::CloudPools(CloudOptions options, std::vector<PoolConfig> pools)
    : options_(options), pools_(std::move(pools)) {
  for (auto& p : pools_) states_[p.name];
}

// --- recovery ---

void CloudPools::restore(CloudLease lease) {
  next_id_ = std::max(next_id_, lease.id + 1);
  if (!lease.node.empty()) {
    // A node name is reused by a pool's later leases: it is the newest one's.
    auto [it, fresh] = by_node_.emplace(lease.node, lease.id);
    if (!fresh && it->second < lease.id) it->second = lease.id;
  }
  leases_.insert_or_assign(lease.id, std::move(lease));
}

void CloudPools::restore_pause(std::string_view pool, bool paused, std::string reason) {
  PoolState& s = pool.empty() ? global_ : state_of(pool);
  s.paused = paused;
  s.pause_reason = std::move(reason);
}

void CloudPools::resume(int64_t now_ns, CloudEffects& out) {
  for (auto& [id, l] : leases_) {
    if (l.ended()) continue;
    if (!pool(l.pool) && l.state != CloudState::kReleasing) {
      start_release(l, "", fmt::format("pool {} is no longer configured", l.pool), now_ns, out);
      continue;
    }
    if (l.state == CloudState::kRequested) {
      l.call_in_flight = true;
      out.calls.push_back({DriverCall::kLaunch, l.pool, l.id, {}});
    } else if (l.state == CloudState::kReleasing) {
      l.call_in_flight = true;
      out.calls.push_back({DriverCall::kTerminate, l.pool, l.id, l.instance_id});
    }
    if (l.state == CloudState::kReady) l.idle_since_ns = now_ns;
  }
}

// --- driver answers ---

void CloudPools::launched(uint64_t id, const LaunchOutcome& r, int64_t now_ns, CloudEffects& out) {
  auto it = leases_.find(id);
  if (it == leases_.end()) return;
  CloudLease& l = it->second;
  l.call_in_flight = false;
  if (l.state != CloudState::kRequested) {
    // Ended or ending meanwhile: make sure what was created goes away.
    if (r.ok && l.instance_id.empty()) l.instance_id = r.instance_id;
    return;
  }
  if (r.ok) {
    l.instance_id = r.instance_id;
    move(l, CloudState::kProvisioning, fmt::format("instance {} booting", r.instance_id), now_ns, out);
    return;
  }
  std::string kind = r.error_kind == "capacity" || r.error_kind == "quota" || r.error_kind == "config"
                         ? r.error_kind
                         : std::string("driver");
  std::string why = fmt::format("{}: {}", kind, r.message);
  if (kind == "config") {
    PoolState& s = state_of(l.pool);
    s.paused = true;
    s.pause_reason = "config error: " + r.message + " (fix the pool, then ty cloud resume " + l.pool + ")";
    out.pauses = true;
  } else {
    back_off(l.pool, why, now_ns);
    if (kind == "quota") state_of(l.pool).backoff_until_ns = now_ns + options_.backoff_max_s * 1'000'000'000;
  }
  l.failure = kind;
  l.ended_ns = now_ns;
  move(l, CloudState::kFailed, why, now_ns, out);
}

void CloudPools::terminated(uint64_t id, bool ok, std::string_view message, int64_t now_ns, CloudEffects& out) {
  auto it = leases_.find(id);
  if (it == leases_.end()) return;
  CloudLease& l = it->second;
  l.call_in_flight = false;
  if (!ok) {
    l.retry_after_ns = now_ns + options_.terminate_retry_s * 1'000'000'000;
    l.reason = fmt::format("terminate failed ({}); retrying", message);
    out.leases.insert(l.id);
    return;
  }
  l.terminate_acked_ns = now_ns;
  ask_list(l.pool, out);  // verified gone by the pool's next list
}

void CloudPools::reconcile(CloudEffects& out) {
  for (auto& p : pools_) ask_list(p.name, out);
  // Leases of pools no longer configured are listed through their last driver: none; they end at once.
}

void CloudPools::ask_list(const std::string& pool_name, CloudEffects& out) {
  PoolState& s = state_of(pool_name);
  if (s.list_in_flight || !pool(pool_name)) return;
  s.list_in_flight = true;
  out.calls.push_back({DriverCall::kList, pool_name, 0, {}});
}

void CloudPools::listed(std::string_view pool_name, const std::vector<ListedInstance>& instances, int64_t asked_ns,
                        int64_t now_ns, CloudEffects& out) {
  state_of(pool_name).list_in_flight = false;
  std::set<uint64_t> present;
  std::set<std::string> listed_ids;
  std::set<std::string>& orphan_nodes = orphan_nodes_[std::string(pool_name)];
  orphan_nodes.clear();
  for (const auto& inst : instances) {
    listed_ids.insert(inst.instance_id);
    auto it = leases_.find(inst.lease);
    bool owned = it != leases_.end() && it->second.pool == pool_name && !it->second.ended();
    if (owned) {
      CloudLease& l = it->second;
      present.insert(l.id);
      if (l.instance_id.empty()) l.instance_id = inst.instance_id;
      if (l.state == CloudState::kProvisioning && inst.state == "running") {
        move(l, CloudState::kRegistering, "instance running; waiting for its agent to register", now_ns, out);
      }
      if (inst.interrupt_at_ns > 0 && l.interrupt_at_ns == 0) notice(l, inst.interrupt_at_ns, now_ns, out);
      orphans_seen_.erase(inst.instance_id);
      continue;
    }
    if (it != leases_.end() && it->second.pool == pool_name) orphan_nodes.insert(it->second.node);
    auto [seen, fresh] = orphans_seen_.emplace(inst.instance_id, now_ns);
    if (!fresh && now_ns - seen->second >= options_.orphan_grace_s * 1'000'000'000 && inst.state != "terminating") {
      out.calls.push_back({DriverCall::kTerminate, std::string(pool_name), 0, inst.instance_id});
      seen->second = now_ns;  // at most once per grace period
    }
  }
  for (auto it = orphans_seen_.begin(); it != orphans_seen_.end();) {
    it = listed_ids.count(it->first) ? std::next(it) : orphans_seen_.erase(it);
  }
  for (auto& [id, l] : leases_) {
    if (l.pool != pool_name || l.ended() || l.call_in_flight || present.count(id)) continue;
    if (l.state == CloudState::kReleasing) {
      // A release is confirmed once the instance is gone from the inventory.
      if (l.terminate_acked_ns == 0 || l.terminate_acked_ns > asked_ns) continue;
      l.ended_ns = now_ns;
      if (l.failure.empty()) {
        move(l, CloudState::kReleased, "terminated; gone from the driver's list", now_ns, out);
      } else {
        move(l, CloudState::kFailed, l.reason, now_ns, out);
      }
    } else if (l.state != CloudState::kRequested && l.state_ns < asked_ns) {
      // Gone without being asked: a spot interruption or a terminate outside Trainyard.
      l.failure = "lost";
      l.ended_ns = now_ns;
      l.for_job = 0;
      move(l, CloudState::kFailed, "lost: instance " + l.instance_id + " is gone from the driver's list", now_ns, out);
    }
  }
}

void CloudPools::call_failed(const DriverCall& call, std::string_view message, int64_t now_ns, CloudEffects& out) {
  if (call.kind == DriverCall::kLaunch) {
    launched(call.lease, LaunchOutcome{false, {}, "driver", std::string(message)}, now_ns, out);
  } else if (call.kind == DriverCall::kTerminate && call.lease != 0) {
    terminated(call.lease, false, message, now_ns, out);
  } else if (call.kind == DriverCall::kList) {
    state_of(call.pool).list_in_flight = false;
  }
}

void CloudPools::node_registered(std::string_view node, Cluster& cluster, int64_t now_ns, CloudEffects& out) {
  auto n = by_node_.find(node);
  if (n == by_node_.end()) return;
  CloudLease& l = leases_.at(n->second);
  switch (l.state) {
    case CloudState::kRequested:
    case CloudState::kProvisioning:
    case CloudState::kRegistering:
      l.ready_ns = now_ns;
      l.idle_since_ns = now_ns;
      {
        PoolState& s = state_of(l.pool);
        s.backoff_ns = 0;
        int64_t boot = now_ns - l.requested_ns;
        s.boot_estimate_ns = s.boot_estimate_ns == 0 ? boot : (s.boot_estimate_ns * 3 + boot) / 4;
      }
      move(l, CloudState::kReady, "its agent registered", now_ns, out);
      // A slot's earlier instance was drained on its way out (idle, a spot
      // notice): that drain was the broker's and is not this machine's.
      if (const Node* n = cluster.node(node); n && n->drained && n->drain_reason.rfind("cloud", 0) == 0) {
        (void)cluster.drain(node, false, "", out.cluster);
      }
      // rented_for_eligible_only: a node no job is meant for stays closed
      // until an eligible job claims it (CloudPools::gate).
      if (options_.rented_for_eligible_only && l.for_job == 0) {
        (void)cluster.drain(node, true, "cloud: kept for burst-eligible jobs", out.cluster);
      }
      break;
    case CloudState::kReady:
      break;
    default:
      // Ending: it must take nothing.
      (void)cluster.drain(node, true, fmt::format("cloud lease {} is {}", l.id, to_string(l.state)), out.cluster);
  }
}

// --- operator ---

Status CloudPools::pause(std::string_view name, bool pause, std::string_view reason, CloudEffects& out) {
  if (!name.empty() && !pool(name)) {
    std::string known;
    for (auto& p : pools_) known += (known.empty() ? "" : ", ") + p.name;
    return Status::not_found(fmt::format("CloudPause.pool: no pool named {} (configured: {})", name,
                                         known.empty() ? "none" : known));
  }
  PoolState& s = name.empty() ? global_ : state_of(name);
  s.paused = pause;
  s.pause_reason = pause ? std::string(reason.empty() ? "paused by an operator" : reason) : std::string();
  out.pauses = true;
  return Status::success();
}

// --- internals ---

void CloudPools::move(CloudLease& l, CloudState to, std::string_view reason, int64_t now_ns, CloudEffects& out) {
  l.state = to;
  l.reason = reason;
  l.state_ns = now_ns;
  out.leases.insert(l.id);
  if (is_ended(to) && !l.node.empty()) {
    out.nodes_gone.emplace_back(l.node, fmt::format("cloud lease {} {}: {}", l.id, to_string(to), reason));
  }
}

void CloudPools::notice(CloudLease& l, int64_t at_ns, int64_t now_ns, CloudEffects& out) {
  l.interrupt_at_ns = at_ns;
  l.for_job = 0;
  std::string why = fmt::format("spot interruption notice: the cloud reclaims instance {} in {} s", l.instance_id,
                                std::max<int64_t>(0, (at_ns - now_ns) / 1'000'000'000));
  out.interruptions.push_back({l.node, at_ns, why});
  if (l.state == CloudState::kReady || l.state == CloudState::kRegistering || l.state == CloudState::kProvisioning) {
    move(l, CloudState::kDraining, why, now_ns, out);
  } else {
    out.leases.insert(l.id);
  }
}

void CloudPools::start_release(CloudLease& l, std::string_view failure, std::string_view reason, int64_t now_ns,
                               CloudEffects& out) {
  if (!failure.empty()) l.failure = failure;
  l.for_job = 0;
  if (l.state == CloudState::kRequested && l.call_in_flight) {
    // The launch is still out: terminate once it answers (see retry_calls).
    move(l, CloudState::kReleasing, reason, now_ns, out);
    return;
  }
  move(l, CloudState::kReleasing, reason, now_ns, out);
  l.call_in_flight = true;
  out.calls.push_back({DriverCall::kTerminate, l.pool, l.id, l.instance_id});
}

void CloudPools::back_off(const std::string& pool_name, std::string_view why, int64_t now_ns) {
  PoolState& s = state_of(pool_name);
  if (s.backoff_ns == 0) s.backoff_ns = options_.backoff_s * 1'000'000'000;
  s.backoff_until_ns = now_ns + s.backoff_ns;
  s.backoff_reason = why;
  s.backoff_ns = std::min(s.backoff_ns * 2, options_.backoff_max_s * 1'000'000'000);
}

PoolState& CloudPools::state_of(std::string_view name) {
  auto it = states_.find(name);
  if (it == states_.end()) it = states_.emplace(std::string(name), PoolState{}).first;
  return it->second;
}

// --- views ---

const PoolConfig* CloudPools::pool(std::string_view name) const {
  for (auto& p : pools_) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

const PoolState& CloudPools::pool_state(std::string_view name) const {
  static const PoolState kNone;
  auto it = states_.find(name);
  return it == states_.end() ? kNone : it->second;
}

const CloudLease* CloudPools::lease(uint64_t id) const {
  auto it = leases_.find(id);
  return it == leases_.end() ? nullptr : &it->second;
}

const CloudLease* CloudPools::lease_of_node(std::string_view node) const {
  auto it = by_node_.find(node);
  return it == by_node_.end() ? nullptr : lease(it->second);
}

size_t CloudPools::live(std::string_view name) const {
  return static_cast<size_t>(std::count_if(leases_.begin(), leases_.end(), [&](auto& kv) {
    return kv.second.pool == name && !kv.second.ended();
  }));
}

size_t CloudPools::in_state(std::string_view name, CloudState s) const {
  return static_cast<size_t>(std::count_if(leases_.begin(), leases_.end(), [&](auto& kv) {
    return kv.second.pool == name && kv.second.state == s;
  }));
}

int64_t CloudPools::boot_estimate_ns(std::string_view name) const {
  int64_t seen = pool_state(name).boot_estimate_ns;
  if (seen > 0) return seen;
  const PoolConfig* p = pool(name);
  return p ? p->boot_timeout_s * 1'000'000'000 / 2 : 0;
}

bool CloudPools::forget_job(uint64_t job) {
  size_t n = spot_interruptions_.erase(job) + moved_.erase(job);
  moving_.erase(job);  // a moved job cancelled before it started again: the rented nodes open at the next plan
  return n > 0;
}

size_t CloudPools::jobs_remembered() const {
  size_t n = spot_interruptions_.size();
  for (uint64_t job : moved_) n += spot_interruptions_.count(job) ? 0 : 1;
  return n;
}

std::string CloudPools::waiting_reason(uint64_t job, int64_t now_ns) const {
  for (auto& [id, l] : leases_) {
    if (l.for_job != job || l.ended() || l.state == CloudState::kReady) continue;
    return cloud_wait_reason(l.pool, l.expected_ready_ns, now_ns);
  }
  return {};
}

std::string cloud_wait_reason(std::string_view pool, int64_t expected_ready_ns, int64_t now_ns) {
  int64_t left_s = std::max<int64_t>(0, (expected_ready_ns - now_ns) / 1'000'000'000);
  return fmt::format("waiting for cloud node (pool {}, ready in ~{} min)", pool, (left_s + 59) / 60);
}

}  // namespace trainyard::broker

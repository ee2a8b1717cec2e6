// The simulator's cloud: the broker's CloudPools and Cluster (the same code
// the resource broker runs), with simulated time and a driver that answers
// at once and boots each node after its pool's boot delay.
#include <algorithm>
#include <cmath>
#include <map>
#include <random>

#include "cloud.h"
#include "core/cloud_pools.h"
#include "core/cluster.h"

namespace trainyard::scheduler::sim {
namespace {

constexpr int64_t kSecond = 1'000'000'000;
constexpr int64_t kNeverS = 100LL * 365 * 86400;  // "never": longer than any trace

broker::PoolConfig to_config(const CloudPoolSpec& s, int64_t burst_after_s) {
  broker::PoolConfig p;
  p.name = s.name;
  p.driver = {"ty-sim"};
  p.gpu_type = s.gpu_type;
  p.gpus_per_node = s.gpus;
  p.cpus = s.gpus * 16;
  p.memory_mb = s.gpus * 128'000ull;
  p.min_nodes = s.min_nodes;
  p.max_nodes = s.max_nodes;
  p.price_micros_per_hour = std::llround(s.price * 1e6);
  p.spot_price_micros_per_hour = s.spot > 0 ? std::llround(s.price * s.spot * 1e6) : 0;
  p.spot = s.spot > 0;
  // Well past the slowest boot: only a node that never registers (bootfail) times out.
  p.boot_timeout_s = std::max<int64_t>(600, 3 * std::max(s.boot_s, s.boot_max_s));
  p.idle_release_s = s.idle_s;
  if (s.launches > 0) p.max_concurrent_launches = s.launches;
  p.max_wait_before_burst_s = burst_after_s == kBurstNever ? kNeverS : std::max<int64_t>(0, burst_after_s);
  return p;
}

std::vector<broker::PoolConfig> to_configs(const std::vector<CloudPoolSpec>& specs, int64_t burst_after_s) {
  std::vector<broker::PoolConfig> out;
  for (auto& s : specs) out.push_back(to_config(s, burst_after_s));
  return out;
}

std::shared_ptr<fb::NodeInfoT> node_info(const std::string& name, const std::string& type, uint32_t gpus) {
  auto n = std::make_shared<fb::NodeInfoT>();
  n->name = name;
  for (uint32_t k = 0; k < gpus; ++k) {
    auto g = std::make_unique<fb::GpuInfoT>();
    g->index = k;
    g->type = type;
    g->memory_mb = 80'000;
    n->gpus.push_back(std::move(g));
  }
  n->cpus = gpus * 16;
  n->memory_mb = gpus * 128'000ull;
  n->simulated = true;
  return n;
}

broker::WaitingJob to_broker(const CloudWaiting& w) {
  broker::WaitingJob j;
  j.id = w.id;
  j.account = w.account;
  j.gpu_type = w.gpu_type;
  j.gpus_per_node = w.gpus_per_node;
  j.nodes = w.nodes;
  j.submit_ns = w.submit_ns;
  j.expected_start_ns = w.expected_start_ns;
  j.time_limit_s = w.time_limit_s;
  j.waits_for_resources = w.waits_for_resources;
  return j;
}

broker::CloudOptions options(const BurstPolicy& policy) {
  broker::CloudOptions o;
  o.burst_wait_per_gpu_hour_s = policy.per_gpu_hour_s;
  o.rented_for_eligible_only = policy.eligible_only;
  o.burst_large_gpu_hours = policy.large_gpu_hours;
  o.burst_large_wait_s = policy.large_wait_s;
  o.estimate_owned_start = policy.estimate_owned;
  o.move_to_owned_min_left_s = policy.move_min_left_s;
  return o;
}

bool booting(broker::CloudState s) {
  return s == broker::CloudState::kRequested || s == broker::CloudState::kProvisioning ||
         s == broker::CloudState::kRegistering;
}

}  // namespace

struct CloudModel::Impl {
  Impl(const std::vector<CloudPoolSpec>& specs, const BurstPolicy& policy, uint64_t seed)
      : pools(options(policy), to_configs(specs, policy.after_s)),
        resumable(policy.move_min_left_s > 0),
        rng(seed ^ 0x636c6f7564ULL) {
    for (auto& s : specs) spec[s.name] = s;
  }
  int64_t draw_boot_ns(const CloudPoolSpec& s) {
    if (s.boot_max_s <= s.boot_s) return s.boot_s * kSecond;
    std::uniform_int_distribution<int64_t> d(s.boot_s * kSecond, s.boot_max_s * kSecond);
    return d(rng);
  }

  // Feeds what the core asked back into it (driver answers) until it asks nothing more.
  void drive(broker::CloudEffects fx, int64_t now, CloudChanges& out);
  void call(const broker::DriverCall& c, int64_t now, broker::CloudEffects& next, CloudChanges& out);

  broker::CloudPools pools;
  broker::Cluster cluster;
  bool resumable = false;  // every run's spec says resumable (moves are on)
  uint64_t moves = 0;
  std::map<std::string, CloudPoolSpec> spec;
  std::mt19937_64 rng;
  uint64_t boot_failures = 0, interruptions = 0, runs_interrupted = 0;
  std::map<std::string, std::pair<std::string, uint64_t>> instances;  // live at the "driver": id -> (pool, lease)
  std::map<uint64_t, uint64_t> runs;                                 // simulation lease -> broker lease
  int64_t last_ns = -1;
  double busy_s = 0, idle_s = 0;
  uint32_t peak = 0;
};

void CloudModel::Impl::drive(broker::CloudEffects fx, int64_t now, CloudChanges& out) {
  broker::Now n{now, now};
  for (int round = 0; round < 64; ++round) {
    for (auto& i : fx.interruptions) {
      if (!i.move_to_owned()) continue;  // spot reclaims are the simulation's own events (reclaim)
      cluster.interrupt(i.node, 0, i.reason, n, fx.cluster, fb::RevokeCause::Preemption);
      out.moves.push_back(i.node);
      ++moves;
    }
    for (auto& [node, why] : fx.nodes_gone) {
      cluster.node_gone(node, why, n, fx.cluster);
      out.gone.push_back(node);
    }
    for (auto& e : fx.cluster.events) {
      if (e.kind == broker::EventKind::kNodeDrain) (e.drained ? out.drained : out.undrained).push_back(e.node);
    }
    broker::CloudEffects next;
    for (auto& c : fx.calls) call(c, now, next, out);
    if (next.calls.empty() && next.nodes_gone.empty() && next.cluster.events.empty() && next.interruptions.empty()) {
      break;
    }
    fx = std::move(next);
  }
  uint32_t live = 0;
  for (auto& [id, l] : pools.leases()) live += l.ended() ? 0 : 1;
  peak = std::max(peak, live);
}

void CloudModel::Impl::call(const broker::DriverCall& c, int64_t now, broker::CloudEffects& next, CloudChanges& out) {
  switch (c.kind) {
    case broker::DriverCall::kLaunch: {
      const broker::CloudLease* l = pools.lease(c.lease);
      if (!l) return;
      std::string id = "i-" + std::to_string(c.lease);
      instances[id] = {c.pool, c.lease};
      pools.launched(c.lease, broker::LaunchOutcome{true, id, {}, {}}, now, next);
      const CloudPoolSpec& s = spec.at(c.pool);
      if (s.boot_fail > 0 && std::uniform_real_distribution<double>(0, 1)(rng) < s.boot_fail) {
        ++boot_failures;  // it never registers: the core terminates it at the boot timeout
        return;
      }
      out.booting.emplace_back(l->node, now + draw_boot_ns(s));
      return;
    }
    case broker::DriverCall::kTerminate:
      instances.erase(c.instance_id);
      if (c.lease != 0) pools.terminated(c.lease, true, {}, now, next);
      return;
    case broker::DriverCall::kList: {
      std::vector<broker::ListedInstance> list;
      for (auto& [id, owner] : instances) {
        if (owner.first == c.pool) list.push_back({id, owner.first, owner.second, "pending"});
      }
      pools.listed(c.pool, list, now, now, next);
      return;
    }
  }
}

CloudModel::CloudModel(const std::vector<CloudPoolSpec>& pools, const BurstPolicy& policy, uint64_t seed)
    : impl_(std::make_unique<Impl>(pools, policy, seed)) {}

CloudModel::~CloudModel() = default;

void CloudModel::add_owned(const std::string& name, const std::string& gpu_type, uint32_t gpus) {
  broker::Effects e;
  (void)impl_->cluster.register_node(node_info(name, gpu_type, gpus), {}, broker::Now{0, 0}, e);
}

void CloudModel::plan(const std::vector<CloudWaiting>& waiting, int64_t now_ns, CloudChanges& out) {
  std::vector<broker::WaitingJob> jobs;
  jobs.reserve(waiting.size());
  for (auto& w : waiting) jobs.push_back(to_broker(w));
  broker::CloudEffects fx;
  impl_->pools.plan(jobs, impl_->cluster, now_ns, fx);
  impl_->drive(std::move(fx), now_ns, out);
}

bool CloudModel::node_ready(const std::string& node, int64_t now_ns, CloudNodeShape* shape, CloudChanges& out) {
  const broker::CloudLease* l = impl_->pools.lease_of_node(node);
  if (!l || !booting(l->state)) return false;
  *shape = CloudNodeShape{node, l->gpu_type, l->gpus};
  broker::Effects e;
  (void)impl_->cluster.register_node(node_info(node, l->gpu_type, l->gpus), {}, broker::Now{now_ns, now_ns}, e);
  broker::CloudEffects fx;
  impl_->pools.node_registered(node, impl_->cluster, now_ns, fx);
  impl_->drive(std::move(fx), now_ns, out);
  // A spot node is reclaimed after an exponential time (its pool's rate).
  const CloudPoolSpec& s = impl_->spec.at(l->pool);
  if (l->spot && s.interrupts_per_hour > 0) {
    double hours = std::exponential_distribution<double>(s.interrupts_per_hour)(impl_->rng);
    out.reclaims.push_back({node, l->id, now_ns + static_cast<int64_t>(std::min(hours, 1e5) * 3600e9)});
  }
  return true;
}

bool CloudModel::reclaim(const std::string& node, uint64_t lease, int64_t now_ns, CloudChanges& out) {
  Impl& m = *impl_;
  const broker::CloudLease* l = m.pools.lease(lease);
  if (!l || l->ended() || l->node != node) return false;
  ++m.interruptions;
  std::string pool = l->pool;
  // Gone from the inventory: the core ends the lease (lost), the node goes down.
  for (auto it = m.instances.begin(); it != m.instances.end();) {
    it = it->second.second == lease ? m.instances.erase(it) : std::next(it);
  }
  std::vector<broker::ListedInstance> list;
  for (auto& [id, owner] : m.instances) {
    if (owner.first == pool) list.push_back({id, owner.first, owner.second, "running"});
  }
  broker::CloudEffects fx;
  m.pools.listed(pool, list, now_ns - 1, now_ns, fx);
  m.drive(std::move(fx), now_ns, out);
  return true;
}

void CloudModel::spot_interrupted(uint64_t job, uint64_t runs) {
  impl_->pools.spot_interrupted(job);
  impl_->runs_interrupted += runs;
}

bool CloudModel::is_cloud(std::string_view node) const { return impl_->pools.is_cloud_node(node); }

void CloudModel::run_started(uint64_t key, const std::string& node, const std::vector<uint32_t>& gpus,
                             int64_t time_limit_s, int64_t now_ns) {
  broker::AllocateRequest req;
  req.job_id = key;
  req.attempt = 1;
  auto spec = std::make_shared<fb::JobSpecT>();
  spec->time_limit_s = static_cast<uint64_t>(std::max<int64_t>(0, time_limit_s));
  spec->resumable = impl_->resumable;
  req.spec = std::move(spec);
  req.placements.push_back(broker::PlacementRequest{node, gpus, 1, 0});
  broker::Effects e;
  auto ids = impl_->cluster.allocate(req, broker::Now{now_ns, now_ns}, e);
  if (ids && !ids->empty()) impl_->runs[key] = ids->front();
}

void CloudModel::run_ended(uint64_t key, int64_t now_ns) {
  auto it = impl_->runs.find(key);
  if (it == impl_->runs.end()) return;
  broker::Effects e;
  (void)impl_->cluster.release(it->second, false, "run ended", 0, broker::Now{now_ns, now_ns}, e);
  impl_->runs.erase(it);
}

void CloudModel::account(int64_t now_ns) {
  Impl& m = *impl_;
  if (m.last_ns >= 0 && now_ns > m.last_ns) {
    double dt = static_cast<double>(now_ns - m.last_ns) / 1e9;
    for (auto& [id, l] : m.pools.leases()) {
      if (l.state != broker::CloudState::kReady && l.state != broker::CloudState::kDraining) continue;
      const broker::Node* n = m.cluster.node(l.node);
      (n && !n->leases.empty() ? m.busy_s : m.idle_s) += dt;
    }
  }
  m.last_ns = std::max(m.last_ns, now_ns);
}

int64_t CloudModel::next_wake_ns(const std::vector<CloudWaiting>& waiting, int64_t now_ns) const {
  int64_t wake = 0;
  auto consider = [&](int64_t t) {
    if (t > now_ns && (wake == 0 || t < wake)) wake = t;
  };
  for (auto& p : impl_->pools.pools()) {
    if (p.max_wait_before_burst_s >= kNeverS) continue;
    for (auto& w : waiting) {
      if (!w.waits_for_resources || w.expected_start_ns != 0) continue;
      consider(w.submit_ns + impl_->pools.burst_threshold_ns(p, to_broker(w)));
    }
  }
  for (auto& [id, l] : impl_->pools.leases()) {
    const broker::PoolConfig* bp = impl_->pools.pool(l.pool);
    // A node that never registers is terminated at its boot timeout.
    if (bp && l.state == broker::CloudState::kProvisioning) consider(l.requested_ns + bp->boot_timeout_s * kSecond + 1);
    if (l.state != broker::CloudState::kReady || l.idle_since_ns == 0) continue;
    const broker::PoolConfig* p = impl_->pools.pool(l.pool);
    if (p) consider(l.idle_since_ns + p->idle_release_s * kSecond);
  }
  return wake;
}

bool CloudModel::live() const {
  const auto& ls = impl_->pools.leases();
  return std::any_of(ls.begin(), ls.end(), [](auto& kv) { return !kv.second.ended(); });
}

CloudStats CloudModel::stats(int64_t now_ns) const {
  CloudStats s;
  for (auto& [id, l] : impl_->pools.leases()) {
    ++s.launches;
    if (l.state == broker::CloudState::kReleased) ++s.released;
    double hours = static_cast<double>(l.metered_ns(now_ns)) / 3600e9;
    s.node_hours += hours;
    s.gpu_hours += hours * l.gpus;
    s.cost += hours * static_cast<double>(l.price_micros_per_hour) / 1e6;
    int64_t ready = l.ready_ns > 0 ? l.ready_ns : (l.ended() ? l.ended_ns : now_ns);
    s.boot_node_hours += static_cast<double>(ready - l.requested_ns) / 3600e9;
  }
  s.busy_node_hours = impl_->busy_s / 3600;
  s.idle_node_hours = impl_->idle_s / 3600;
  s.peak_nodes = impl_->peak;
  s.boot_failures = impl_->boot_failures;
  s.interruptions = impl_->interruptions;
  s.runs_interrupted = impl_->runs_interrupted;
  s.moves = impl_->moves;
  return s;
}

}  // namespace trainyard::scheduler::sim

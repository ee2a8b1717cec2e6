// CloudPools' policy: when to rent (a waiting job that owned nodes cannot
// take within max_wait_before_burst), which pool (the cheapest that fits),
// when to give back (idle past idle_release_s and no waiting job fits, or
// unused for long while the jobs that fit it are placed elsewhere), and the
// boot timeout.
#include <algorithm>
#include <iterator>

#include <fmt/format.h>

#include "core/cloud_pools.h"
#include "money/money.h"
#include "text/gpu_type.h"

namespace trainyard::broker {

namespace {

constexpr int64_t kSecond = 1'000'000'000;

// How long a ready node may stay unused while waiting jobs that fit it are
// not placed on it: three idle times, and never under five minutes (a few
// scheduler cycles and a gang's last node booting).
int64_t stranded_after_ns(int64_t idle_release_ns) {
  return std::max<int64_t>(3 * idle_release_ns, 300 * kSecond);
}

uint32_t gpus_of_type(const Node& n, std::string_view type) {
  uint32_t count = 0;
  for (auto& g : n.info->gpus) {
    if (g && (type.empty() || text::same_gpu_type(g->type, type))) ++count;
  }
  return count;
}

// estimate_owned_start: the owned GPUs of one type over time. From each
// step's time until the next step's, that many GPUs are free; the last
// step lasts for ever. Running leases free theirs at their time limits, a
// job placed in the estimate holds its own for its time limit.
class FreeGpus {
 public:
  explicit FreeGpus(int64_t now_ns) : steps_{{now_ns, 0}} {}
  // `n` more GPUs free from `from_ns` on.
  void add(int64_t from_ns, int64_t n) { change(from_ns, kForever, n); }
  // The earliest start from which `n` GPUs stay free for `d_ns` (kForever: never).
  int64_t earliest(int64_t n, int64_t d_ns) const {
    for (size_t k = 0; k < steps_.size();) {
      int64_t start = steps_[k].first;
      size_t m = k;
      while (m < steps_.size() && steps_[m].first < start + d_ns && steps_[m].second >= n) ++m;
      if (m == steps_.size() || steps_[m].first >= start + d_ns) return start;
      k = m + 1;
    }
    return kForever;
  }
  void take(int64_t start_ns, int64_t d_ns, int64_t n) { change(start_ns, start_ns + d_ns, -n); }

  static constexpr int64_t kForever = INT64_MAX / 2;

 private:
  void change(int64_t from_ns, int64_t to_ns, int64_t n) {
    split(from_ns);
    split(to_ns);
    for (auto& [at, free] : steps_) {
      if (at >= from_ns && at < to_ns) free += n;
    }
  }
  void split(int64_t at_ns) {
    auto it = std::lower_bound(steps_.begin(), steps_.end(), std::pair<int64_t, int64_t>{at_ns, INT64_MIN});
    if (at_ns >= kForever || (it != steps_.end() && it->first == at_ns) || it == steps_.begin()) return;
    steps_.insert(it, {at_ns, std::prev(it)->second});
  }
  std::vector<std::pair<int64_t, int64_t>> steps_;  // (from, free GPUs), by time
};

// A job or lease with no time limit is expected to hold its GPUs this long.
constexpr int64_t kUnknownLimitNs = 3600 * kSecond;

int64_t limit_ns(int64_t limit_s) {
  return limit_s > 0 ? std::min<int64_t>(limit_s, 365LL * 86400) * kSecond : kUnknownLimitNs;
}

}  // namespace

void CloudPools::plan(const std::vector<WaitingJob>& waiting, Cluster& cluster, int64_t now_ns, CloudEffects& out) {
  check_boot_timeouts(now_ns, out);
  refused_.clear();
  std::set<uint64_t> ids;
  for (auto& j : waiting) ids.insert(j.id);
  for (auto& [id, l] : leases_) {
    if (l.for_job != 0 && !ids.count(l.for_job)) l.for_job = 0;  // started elsewhere, or gone
  }
  estimate_owned_starts(waiting, cluster, now_ns);
  if (options_.rented_for_eligible_only) gate(waiting, cluster, now_ns, out);
  move_to_owned(waiting, cluster, now_ns, out);
  if (!global_.paused) {
    for (auto& j : waiting) rent_for(j, cluster, now_ns, out);
    for (auto& p : pools_) {
      while (live(p.name) < p.min_nodes && can_launch(p, 1, now_ns)) launch(p, nullptr, now_ns, out);
    }
  }
  release_idle(waiting, cluster, now_ns, out);
  retry_calls(now_ns, out);
}

bool CloudPools::fits(const PoolConfig& p, const WaitingJob& j) const {
  if (!j.gpu_type.empty() && !text::same_gpu_type(p.gpu_type, j.gpu_type)) return false;
  if (j.gpus_per_node > p.gpus_per_node) return false;
  if (!j.partition.empty() && !p.partition.empty() && j.partition != p.partition) return false;
  return j.nodes <= p.max_nodes;
}

// Whether enough owned nodes (up, not drained) have the GPUs the job asks,
// ignoring what runs there: if not, no wait on owned nodes ever ends.
bool CloudPools::owned_could_take(const WaitingJob& j, const Cluster& cluster) const {
  uint32_t nodes = 0;
  for (auto& [name, n] : cluster.nodes()) {
    if (!n.up || n.drained || is_cloud_node(name)) continue;
    if (gpus_of_type(n, j.gpu_type) >= std::max<uint32_t>(1, j.gpus_per_node)) ++nodes;
  }
  return nodes >= std::max<uint32_t>(1, j.nodes);
}

int64_t CloudPools::threshold_ns(const PoolConfig& p) const {
  return (p.max_wait_before_burst_s >= 0 ? p.max_wait_before_burst_s : options_.max_wait_before_burst_s) * kSecond;
}

int64_t CloudPools::burst_threshold_ns(const PoolConfig& p, const WaitingJob& j) const {
  int64_t t = threshold_ns(p);
  if (j.time_limit_s <= 0) return t;  // its compute is unknown
  double gpu_hours = static_cast<double>(std::max<uint32_t>(1, j.gpus_per_node) * std::max<uint32_t>(1, j.nodes)) *
                     static_cast<double>(j.time_limit_s) / 3600;
  double budget_s = 0;
  // Compute-weighted: seconds of wait per GPU-hour the job asks.
  if (options_.burst_wait_per_gpu_hour_s > 0) budget_s = options_.burst_wait_per_gpu_hour_s * gpu_hours;
  // A large job (more GPU-hours than burst_large_gpu_hours) waits for owned
  // nodes up to burst_large_wait_s: most of a bill, and a short wait of a
  // few jobs costs the average completion time little.
  if (options_.burst_large_gpu_hours > 0 && gpu_hours > options_.burst_large_gpu_hours) {
    budget_s = std::max(budget_s, static_cast<double>(options_.burst_large_wait_s));
  }
  return std::max(t, static_cast<int64_t>(std::min(budget_s, 365.0 * 86400)) * kSecond);
}

bool CloudPools::burst_eligible(const PoolConfig& p, const WaitingJob& j, bool owned, int64_t now_ns) const {
  if (!j.waits_for_resources || !fits(p, j)) return false;
  if (!owned) return true;
  int64_t threshold = burst_threshold_ns(p, j);
  // Expected wait on owned nodes: the estimate (estimate_owned_start), else
  // the backfill reservation's start (which may be on a rented node), else
  // how long it has waited already.
  int64_t start = owned_start_estimate(j.id);
  if (start == 0) start = j.expected_start_ns;
  if (start > 0) return start - now_ns > threshold;
  return now_ns - j.submit_ns >= threshold;
}

int64_t CloudPools::owned_start_estimate(uint64_t job) const {
  auto it = owned_start_.find(job);
  return it == owned_start_.end() ? 0 : it->second;
}

void CloudPools::estimate_owned_starts(const std::vector<WaitingJob>& waiting, const Cluster& cluster,
                                       int64_t now_ns) {
  owned_start_.clear();
  if (!options_.estimate_owned_start) return;
  std::vector<std::pair<std::string, FreeGpus>> free;  // per GPU type of the owned nodes
  for (auto& [name, n] : cluster.nodes()) {
    if (!n.up || n.drained || is_cloud_node(name)) continue;
    for (auto& g : n.info->gpus) {
      if (!g) continue;
      auto f = std::find_if(free.begin(), free.end(),
                            [&](auto& t) { return text::same_gpu_type(t.first, g->type); });
      if (f == free.end()) f = free.insert(free.end(), {g->type, FreeGpus(now_ns)});
      auto held = n.gpu_holder.find(g->index);
      const Lease* l = held == n.gpu_holder.end() ? nullptr : cluster.lease(held->second);
      int64_t end = l ? l->granted_ns + limit_ns(l->spec ? static_cast<int64_t>(l->spec->time_limit_s) : 0) : now_ns;
      f->second.add(std::max(end, now_ns), 1);
    }
  }
  std::set<uint64_t> renting;
  for (auto& [id, l] : leases_) {
    if (l.for_job != 0 && !l.ended()) renting.insert(l.for_job);
  }
  for (auto& j : waiting) {
    if (!j.waits_for_resources || renting.count(j.id)) continue;
    int64_t gpus = std::max<uint32_t>(1, j.gpus_per_node) * std::max<uint32_t>(1, j.nodes);
    int64_t d_ns = limit_ns(j.time_limit_s);
    FreeGpus* best = nullptr;
    int64_t start = FreeGpus::kForever;
    for (auto& [type, f] : free) {
      int64_t s = j.gpu_type.empty() || text::same_gpu_type(type, j.gpu_type) ? f.earliest(gpus, d_ns) : start;
      if (s < start) best = &f, start = s;
    }
    if (!best) continue;  // no owned GPUs could hold it
    owned_start_[j.id] = start;
    bool owned = owned_could_take(j, cluster);
    bool rents =
        std::any_of(pools_.begin(), pools_.end(), [&](auto& p) { return burst_eligible(p, j, owned, now_ns); });
    if (!rents) best->take(start, d_ns, gpus);  // it waits: the jobs behind it wait for it too
  }
}

void CloudPools::gate(const std::vector<WaitingJob>& waiting, Cluster& cluster, int64_t now_ns, CloudEffects& out) {
  eligible_.clear();
  for (auto& j : waiting) {
    if (moving_.count(j.id)) continue;  // it starts on owned GPUs (move_to_owned)
    bool owned = owned_could_take(j, cluster);
    for (auto& p : pools_) {
      if (burst_eligible(p, j, owned, now_ns)) eligible_[p.name].push_back(&j);
    }
  }
  for (auto& [id, l] : leases_) {
    const Node* n = l.state == CloudState::kReady ? cluster.node(l.node) : nullptr;
    if (!n) continue;
    // Open: to the job it was rented for (or handed), or, while it runs
    // something and an eligible job waits for its pool, to any job (the
    // scheduler cannot tell eligible jobs from others). An idle node opens
    // only when an eligible job claims it (reuse_idle), so a waiting job
    // that may not rent (a large one, or one about to start on owned
    // nodes) does not take a whole idle node, or make one a gang's last.
    bool open = l.for_job != 0 || (eligible_.count(l.pool) > 0 && !n->leases.empty());
    if (!moving_.empty()) open = open && l.for_job != 0;  // moved jobs start on owned GPUs (move_to_owned)
    if (n->drained != open) continue;
    (void)cluster.drain(l.node, !open, open ? "cloud: a burst-eligible job waits" : "cloud: kept for burst-eligible jobs",
                        out.cluster);
  }
}

// A ready rented node (open to it) with room for `j` now: the scheduler places it there.
bool CloudPools::ready_room(const WaitingJob& j, const Cluster& cluster) const {
  uint32_t nodes = 0;
  for (auto& [id, l] : leases_) {
    const PoolConfig* p = l.state == CloudState::kReady ? pool(l.pool) : nullptr;
    const Node* n = p && fits(*p, j) ? cluster.node(l.node) : nullptr;
    if (!n || n->drained) continue;
    if (gpus_of_type(*n, j.gpu_type) >= n->gpu_holder.size() + std::max<uint32_t>(1, j.gpus_per_node)) ++nodes;
  }
  return nodes >= std::max<uint32_t>(1, j.nodes);
}

bool CloudPools::can_launch(const PoolConfig& p, uint32_t n, int64_t now_ns) const {
  const PoolState& s = pool_state(p.name);
  if (s.paused || now_ns < s.backoff_until_ns) return false;
  if (auto hold = no_rent_.find(p.name); hold != no_rent_.end() && now_ns < hold->second.until_ns) return false;
  if (live(p.name) + n > p.max_nodes || free_slots(p).size() < n) return false;
  size_t booting = in_state(p.name, CloudState::kRequested);
  // A gang larger than max_concurrent_launches still goes, alone.
  return booting + n <= p.max_concurrent_launches || (booting == 0 && n > p.max_concurrent_launches);
}

std::vector<std::string> CloudPools::free_slots(const PoolConfig& p) const {
  std::set<std::string, std::less<>> taken;
  for (auto& [id, l] : leases_) {
    if (l.pool == p.name && !l.ended()) taken.insert(l.node);
  }
  auto orphans = orphan_nodes_.find(p.name);
  std::vector<std::string> free;
  for (uint32_t slot = 0; slot < p.max_nodes; ++slot) {
    std::string node = fmt::format("{}-{}", p.name, slot);
    if (taken.count(node) || (orphans != orphan_nodes_.end() && orphans->second.count(node))) continue;
    free.push_back(std::move(node));
  }
  return free;
}

void CloudPools::rent_for(const WaitingJob& j, Cluster& cluster, int64_t now_ns, CloudEffects& out) {
  // A job moved to owned nodes waits for the owned GPUs it was moved for.
  if (!j.waits_for_resources || moving_.count(j.id)) return;
  for (auto& [id, l] : leases_) {
    if (l.for_job == j.id && !l.ended()) return;  // already booting (or ready) for it
  }

  bool owned = owned_could_take(j, cluster);
  const PoolConfig* best = nullptr;
  bool eligible = false;
  for (auto& p : pools_) {
    if (!fits(p, j) || !burst_eligible(p, j, owned, now_ns)) continue;
    eligible = true;
    if (!can_launch(p, j.nodes, now_ns)) continue;
    if (!best || p.price(now_ns) < best->price(now_ns)) best = &p;
  }
  if (!eligible || (options_.rented_for_eligible_only && ready_room(j, cluster)) || reuse_booting(j, out) ||
      (options_.rented_for_eligible_only && reuse_idle(j, cluster, out)) || !best) {
    return;
  }
  // Budgets are checked before a launch: the cheapest pool's estimate must
  // fit in what the job's account has left this month.
  if (auto left = budget_left_.find(j.account); left != budget_left_.end()) {
    int64_t cost = estimated_cost_micros(*best, j, now_ns);
    if (cost > left->second) {
      refused_[j.id] = fmt::format(
          "not rented: renting {} node(s) of pool {} would cost about {} (boot, time limit, idle release) and account "
          "{} has {} of its budget left this month",
          std::max<uint32_t>(1, j.nodes), best->name, format_micros(cost), j.account,
          format_micros(std::max<int64_t>(0, left->second)));
      return;
    }
  }
  for (uint32_t i = 0; i < std::max<uint32_t>(1, j.nodes); ++i) launch(*best, &j, now_ns, out);
}

namespace {

// Gives `j` as many of `free` as it has nodes (a gang all or none): false,
// and nothing given, when there are too few. `free` keeps those given.
bool claim(const WaitingJob& j, std::vector<CloudLease*>& free, CloudEffects& out) {
  size_t need = std::max<uint32_t>(1, j.nodes);
  if (free.size() < need) return false;
  free.resize(need);
  for (auto* l : free) {
    l->for_job = j.id;
    l->account = j.account;
    out.leases.insert(l->id);
  }
  return true;
}

}  // namespace

// rented_for_eligible_only: idle ready nodes (closed, no job meant for them)
// that fit this one are its, opened to it, before anything new is rented.
bool CloudPools::reuse_idle(const WaitingJob& j, Cluster& cluster, CloudEffects& out) {
  std::vector<CloudLease*> free;
  for (auto& [id, l] : leases_) {
    const PoolConfig* p = l.state == CloudState::kReady && l.for_job == 0 ? pool(l.pool) : nullptr;
    const Node* n = p && fits(*p, j) ? cluster.node(l.node) : nullptr;
    if (n && n->leases.empty()) free.push_back(&l);
  }
  if (!claim(j, free, out)) return false;
  for (auto* l : free) (void)cluster.drain(l->node, false, "cloud: a burst-eligible job waits", out.cluster);
  return true;
}

// Booting nodes no job is waiting for that fit this one: they are its.
bool CloudPools::reuse_booting(const WaitingJob& j, CloudEffects& out) {
  std::vector<CloudLease*> free;
  for (auto& [id, l] : leases_) {
    bool booting = l.state == CloudState::kRequested || l.state == CloudState::kProvisioning ||
                   l.state == CloudState::kRegistering;
    const PoolConfig* p = pool(l.pool);
    if (booting && l.for_job == 0 && p && fits(*p, j)) free.push_back(&l);
  }
  return claim(j, free, out);
}

void CloudPools::launch(const PoolConfig& p, const WaitingJob* j, int64_t now_ns, CloudEffects& out) {
  CloudLease l;
  l.id = next_id_++;
  l.pool = p.name;
  l.node = free_slots(p).at(0);  // can_launch said there is one
  l.gpu_type = p.gpu_type;
  l.gpus = p.gpus_per_node;
  Offer o = offer(p, j, now_ns);
  l.spot = o.spot;
  // The price in effect now, kept in the lease: billing charges it for the
  // node's whole life, so replaying the lease's events bills the same.
  l.price_micros_per_hour = o.price_micros_per_hour;
  l.requested_ns = now_ns;
  l.state_ns = now_ns;
  l.state = CloudState::kRequested;
  l.expected_ready_ns = now_ns + boot_estimate_ns(p.name);
  if (j) {
    l.for_job = j->id;
    l.account = j->account;
    l.reason = fmt::format("rented for job {} ({} node(s) of {}x{}){}", j->id, std::max<uint32_t>(1, j->nodes),
                           p.gpus_per_node, p.gpu_type,
                           o.fallback ? fmt::format(", on-demand after {} spot interruptions",
                                                    spot_interruptions(j->id))
                                      : "");
  } else {
    l.reason = fmt::format("kept up to min_nodes={}", p.min_nodes);
  }
  l.call_in_flight = true;
  out.calls.push_back({DriverCall::kLaunch, p.name, l.id, {}});
  out.leases.insert(l.id);
  by_node_[l.node] = l.id;
  leases_.emplace(l.id, std::move(l));
}

void CloudPools::release_idle(const std::vector<WaitingJob>& waiting, Cluster& cluster, int64_t now_ns,
                              CloudEffects& out) {
  for (auto& [id, l] : leases_) {
    const Node* n = cluster.node(l.node);
    bool busy = n && !n->leases.empty();
    if (l.state == CloudState::kDraining && !busy) {
      start_release(l, "", "idle; terminating", now_ns, out);
      continue;
    }
    if (l.state != CloudState::kReady) continue;
    const PoolConfig* p = pool(l.pool);
    if (busy) {
      l.idle_since_ns = 0;
      l.unused_since_ns = 0;
      if (auto hold = no_rent_.find(l.pool); hold != no_rent_.end()) hold->second.next_ns = 0;
      continue;
    }
    if (l.idle_since_ns == 0) l.idle_since_ns = now_ns;
    if (l.unused_since_ns == 0) l.unused_since_ns = now_ns;
    bool wanted = l.for_job != 0 || (options_.rented_for_eligible_only
                                         ? eligible_.count(l.pool) > 0
                                         : std::any_of(waiting.begin(), waiting.end(), [&](const WaitingJob& j) {
                                             return p && j.waits_for_resources && fits(*p, j);
                                           }));
    int64_t idle_release_ns = p ? p->idle_release_s * kSecond : 0;
    std::string why;
    // A node rented for one job waits for the rest of its gang to boot.
    int64_t stranded_ns = stranded_after_ns(idle_release_ns) + (l.for_job && p ? p->boot_timeout_s * kSecond : 0);
    if (wanted && now_ns - l.unused_since_ns >= stranded_ns) {
      // Jobs that fit it wait, yet the scheduler has put none on it (a gang
      // wider than the idle nodes, one behind a reservation, strict FIFO):
      // keeping it would bill idle hours for nobody. The pool rents
      // nothing more until as long has passed once more.
      why = fmt::format("unused for {} s while waiting jobs that fit it were not placed on it",
                        (now_ns - l.unused_since_ns) / kSecond);
      auto& hold = no_rent_[l.pool];
      hold.next_ns = hold.next_ns == 0 ? stranded_ns : std::min<int64_t>(2 * hold.next_ns, 4 * 3600 * kSecond);
      hold.until_ns = now_ns + hold.next_ns;
    } else if (wanted) {
      // Hysteresis: a node some waiting job fits starts its idle time again.
      l.idle_since_ns = now_ns;
      continue;
    }
    if (p && live(l.pool) <= p->min_nodes) continue;
    if (why.empty() && now_ns - l.idle_since_ns < idle_release_ns) continue;
    if (why.empty()) {
      why = fmt::format("idle for {} s (idle_release_s={})", (now_ns - l.idle_since_ns) / kSecond,
                        p ? p->idle_release_s : 0);
    }
    (void)cluster.drain(l.node, true, "cloud: " + why, out.cluster);
    move(l, CloudState::kDraining, why, now_ns, out);
    if (!busy) start_release(l, "", why + "; terminating", now_ns, out);
  }
}

void CloudPools::check_boot_timeouts(int64_t now_ns, CloudEffects& out) {
  for (auto& [id, l] : leases_) {
    bool booting = l.state == CloudState::kRequested || l.state == CloudState::kProvisioning ||
                   l.state == CloudState::kRegistering;
    const PoolConfig* p = pool(l.pool);
    if (!booting || !p || now_ns - l.requested_ns < p->boot_timeout_s * kSecond) continue;
    std::string why = fmt::format("boot_timeout: not ready within boot_timeout_s={} ({}); terminating",
                                  p->boot_timeout_s, to_string(l.state));
    back_off(l.pool, why, now_ns);
    start_release(l, "boot_timeout", why, now_ns, out);
  }
}

// Terminates that failed or waited for a launch's answer, and releases not
// yet verified by a list.
void CloudPools::retry_calls(int64_t now_ns, CloudEffects& out) {
  for (auto& [id, l] : leases_) {
    if (l.state != CloudState::kReleasing || l.call_in_flight) continue;
    if (l.terminate_acked_ns != 0) {
      ask_list(l.pool, out);
    } else if (now_ns >= l.retry_after_ns) {
      l.call_in_flight = true;
      out.calls.push_back({DriverCall::kTerminate, l.pool, l.id, l.instance_id});
    }
  }
}

}  // namespace trainyard::broker

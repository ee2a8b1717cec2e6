#include "sim/simulator.h"

#include <algorithm>
#include <cmath>
#include <queue>
#include <random>
#include <tuple>

#include "core/policy.h"
#include "core/scheduler.h"

namespace trainyard::scheduler::sim {
namespace {

constexpr int64_t kSecond = 1'000'000'000;

int64_t to_ns(double s) { return static_cast<int64_t>(std::llround(s * 1e9)); }
double to_s(int64_t ns) { return static_cast<double>(ns) / 1e9; }

std::string size_bucket(uint32_t gpus) {
  if (gpus <= 1) return "1";
  if (gpus <= 4) return "2-4";
  if (gpus <= 8) return "5-8";
  return "9+";
}

enum class Kind : uint8_t { kRunEnd = 0, kArrival = 1 };

struct Event {
  int64_t time;
  uint64_t seq;
  Kind kind;
  size_t index;      // arrival: trace index; run end: trace index
  uint32_t attempt;  // run end: the attempt it ends
  bool operator>(const Event& o) const { return std::tie(time, seq) > std::tie(o.time, o.seq); }
};

}  // namespace

Percentiles percentiles(std::vector<double> v) {
  Percentiles p;
  p.count = v.size();
  if (v.empty()) return p;
  std::sort(v.begin(), v.end());
  double sum = 0;
  for (double x : v) sum += x;
  p.avg = sum / static_cast<double>(v.size());
  auto rank = [&](double q) {
    size_t i = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
    return v[std::min(v.size() - 1, i == 0 ? 0 : i - 1)];
  };
  p.p50 = rank(0.5);
  p.p99 = rank(0.99);
  p.max = v.back();
  return p;
}

double jain_index(const std::vector<double>& x) {
  double sum = 0, sq = 0;
  for (double v : x) {
    sum += v;
    sq += v * v;
  }
  if (x.empty() || sq == 0) return 1;
  return sum * sum / (static_cast<double>(x.size()) * sq);
}

Result<SimResult> simulate(const std::vector<TraceJob>& trace, const SimOptions& options) {
  SchedulerConfig config = options.config;
  if (!options.keep_backfill) config.backfill = backfill_for(options.policy);
  auto policy = make_policy(options.policy, config.fairshare);
  if (!policy) {
    return Status::invalid("--policy: unknown policy '" + options.policy +
                           "' (known: fifo, priority, fairshare, fairshare+backfill)");
  }
  if (options.limit_factor < 1) return Status::invalid("--limit-factor: must be at least 1 (limits are never short)");
  Scheduler core(config, std::move(policy));

  // Simulated nodes, named by type: v100-0, v100-1, ...
  uint64_t total_gpus = 0;
  uint32_t widest = 0;
  std::map<std::string, int> per_type;
  for (auto& g : options.nodes) {
    for (uint32_t i = 0; i < g.count; ++i) {
      fb::NodeInfoT n;
      std::string base = g.type.empty() ? "node" : g.type;
      std::transform(base.begin(), base.end(), base.begin(), [](unsigned char c) { return std::tolower(c); });
      n.name = base + "-" + std::to_string(per_type[base]++);
      for (uint32_t k = 0; k < g.gpus; ++k) {
        auto gpu = std::make_unique<fb::GpuInfoT>();
        gpu->index = k;
        gpu->type = g.type;
        gpu->memory_mb = 80'000;
        n.gpus.push_back(std::move(gpu));
      }
      n.cpus = g.gpus * 16;
      n.memory_mb = g.gpus * 128'000ull;
      n.simulated = true;
      core.node_up(n);
    }
    total_gpus += uint64_t{g.count} * g.gpus;
    widest = std::max(widest, g.gpus);
  }
  if (total_gpus == 0) return Status::invalid("--nodes: the cluster has no GPUs");

  std::mt19937_64 rng(options.seed);
  std::uniform_real_distribution<double> spread(1.0, std::max(1.0, options.limit_factor));

  SimResult res;
  res.policy = options.policy;
  res.jobs = trace.size();
  res.gpus = total_gpus;
  res.outcomes.resize(trace.size());
  std::vector<JobId> ids(trace.size(), 0);
  std::map<JobId, size_t> index_of;
  std::vector<int64_t> run_start(trace.size(), 0);
  std::vector<std::vector<uint64_t>> leases(trace.size());
  std::vector<bool> started(trace.size(), false), ended(trace.size(), false);

  std::priority_queue<Event, std::vector<Event>, std::greater<>> events;
  uint64_t seq = 0;
  for (size_t i = 0; i < trace.size(); ++i) events.push(Event{to_ns(trace[i].submit_s), seq++, Kind::kArrival, i, 0});
  int64_t first_submit = trace.empty() ? 0 : to_ns(trace.front().submit_s);

  uint64_t next_lease = 1;
  uint64_t busy = 0;            // GPUs running now
  double busy_gpu_s = 0;        // integral of busy GPUs
  std::vector<double> bucket_busy;  // GPU-seconds per sample bucket
  double frag_weighted = 0, frag_time = 0;
  double queued_busy_gpu_s = 0, queued_time = 0;
  int64_t last_t = first_submit;
  int64_t last_end = first_submit;
  int64_t bucket_ns = std::max<int64_t>(1, to_ns(options.sample_s));

  auto account_time = [&](int64_t t) {
    if (t <= last_t) return;
    // Utilisation: busy GPUs over [last_t, t), split over sample buckets.
    int64_t a = last_t;
    while (a < t) {
      size_t b = static_cast<size_t>((a - first_submit) / bucket_ns);
      int64_t bucket_end = first_submit + static_cast<int64_t>(b + 1) * bucket_ns;
      int64_t e = std::min(t, bucket_end);
      if (bucket_busy.size() <= b) bucket_busy.resize(b + 1, 0);
      bucket_busy[b] += static_cast<double>(busy) * to_s(e - a);
      a = e;
    }
    busy_gpu_s += static_cast<double>(busy) * to_s(t - last_t);
    if (core.queued() > 0) {
      queued_busy_gpu_s += static_cast<double>(busy) * to_s(t - last_t);
      queued_time += to_s(t - last_t);
    }
    // Fragmentation matters while jobs wait for room.
    auto f = core.cluster().fragmentation();
    if (core.queued() > 0 && f.free_gpus > 0) {
      frag_weighted += f.ratio() * to_s(t - last_t);
      frag_time += to_s(t - last_t);
    }
    last_t = t;
  };

  auto end_run = [&](size_t i, fb::RunOutcome outcome, int64_t t) {
    JobId id = ids[i];
    const Job* j = core.job(id);
    if (!j || leases[i].empty()) return;
    busy -= j->shape.gpus * j->shape.nodes;
    core.run_finished(RunEnd{id, j->attempt, leases[i][0], outcome, 0, 0, ""}, t);
    for (uint64_t l : leases[i]) core.lease_released(l, id, t);
    leases[i].clear();
    last_end = std::max(last_end, t);
  };

  // What the core asked for: grant every allocation at once; stop the
  // runs it preempts after their grace period (or when they end anyway).
  auto apply = [&](int64_t t) {
    Output out = core.take_output();
    for (auto& a : out.allocations) {
      size_t i = index_of.at(a.job);
      std::vector<uint64_t> ls;
      for (size_t r = 0; r < a.nodes.size(); ++r) ls.push_back(next_lease++);
      core.allocated(a.job, a.attempt, ls, t);
      for (size_t r = 0; r < a.nodes.size(); ++r) {
        core.lease_granted(Grant{ls[r], a.job, a.attempt, a.nodes[r].node, a.nodes[r].gpus, a.nodes[r].cpus,
                                 a.nodes[r].memory_mb, static_cast<uint32_t>(r)},
                           t);
      }
      core.run_started(a.job, a.attempt, ls[0], t, t);
      leases[i] = ls;
      const Job* j = core.job(a.job);
      busy += j->shape.gpus * j->shape.nodes;
      if (!started[i]) {
        started[i] = true;
        res.outcomes[i].start_s = to_s(t);
      }
      run_start[i] = t;
      // A preempted job starts over (no checkpoint); a run longer than
      // its limit is stopped at the limit.
      int64_t dur = to_ns(trace[i].duration_s);
      int64_t limit = static_cast<int64_t>(j->spec->time_limit_s) * kSecond;
      events.push(Event{t + std::min(dur, limit), seq++, Kind::kRunEnd, i, a.attempt});
    }
    for (auto& r : out.releases) {
      auto it = index_of.find(r.job);
      if (it == index_of.end()) continue;
      size_t i = it->second;
      const Job* j = core.job(r.job);
      if (!j || leases[i].empty() || leases[i][0] != r.lease_id) continue;
      // SIGTERM now, the run is gone after its grace (or its natural end).
      int64_t stop = t + static_cast<int64_t>(r.grace_s) * kSecond;
      events.push(Event{stop, seq++, Kind::kRunEnd, i, j->attempt + 1000000});
    }
    (void)core.take_output();
  };

  while (!events.empty()) {
    int64_t t = events.top().time;
    account_time(t);
    while (!events.empty() && events.top().time == t) {
      Event ev = events.top();
      events.pop();
      if (ev.kind == Kind::kArrival) {
        const TraceJob& tj = trace[ev.index];
        fb::JobSpecT spec;
        spec.name = tj.id;
        spec.user = tj.user;
        spec.account = tj.user;
        spec.sim_duration_s = tj.duration_s;
        uint32_t nodes = tj.gpus > widest && widest > 0 ? (tj.gpus + widest - 1) / widest : 1;
        spec.nodes = nodes;
        spec.gpus_per_node = (tj.gpus + nodes - 1) / nodes;
        spec.gpu_type = tj.gpu_type;
        spec.cpus = 1;
        double factor = options.limit_random ? spread(rng) : options.limit_factor;
        spec.time_limit_s = static_cast<uint64_t>(std::max(1.0, std::ceil(tj.duration_s * factor - 1e-9)));
        spec.grace_s = 30;
        auto r = core.submit(spec, t);
        if (!r) return Status::invalid("job " + tj.id + ": " + r.status().message());
        ids[ev.index] = r->job_ids.at(0);
        index_of[ids[ev.index]] = ev.index;
        auto& o = res.outcomes[ev.index];
        o.id = tj.id;
        o.user = tj.user;
        o.gpus = spec.gpus_per_node * spec.nodes;
        o.submit_s = to_s(t);
        o.duration_s = tj.duration_s;
      } else {
        size_t i = ev.index;
        const Job* j = core.job(ids[i]);
        if (!j || j->terminal()) continue;
        bool preempt_stop = ev.attempt >= 1000000;
        uint32_t attempt = preempt_stop ? ev.attempt - 1000000 : ev.attempt;
        if (attempt != j->attempt || leases[i].empty()) continue;
        if (preempt_stop) {
          end_run(i, fb::RunOutcome::Preempted, t);
        } else {
          bool timed_out = to_ns(trace[i].duration_s) > static_cast<int64_t>(j->spec->time_limit_s) * kSecond;
          end_run(i, timed_out ? fb::RunOutcome::TimedOut : fb::RunOutcome::Succeeded, t);
        }
      }
      (void)core.take_output();
    }
    core.tick(t);
    for (int guard = 0; core.wants_cycle() && guard < 16; ++guard) {
      core.cycle(t);
      apply(t);
    }
  }

  // Results.
  std::vector<double> jct, wait, slow;
  std::map<std::string, std::vector<double>> wait_by, slow_by_user;
  for (size_t i = 0; i < trace.size(); ++i) {
    auto& o = res.outcomes[i];
    const Job* j = core.job(ids[i]);
    if (!j) continue;
    o.state = fb::EnumNameJobState(j->state);
    o.preemptions = j->preemptions;
    if (!j->terminal()) continue;
    ++res.finished;
    o.end_s = to_s(j->end_time_ns);
    double c = o.end_s - o.submit_s;
    jct.push_back(c);
    wait.push_back(o.start_s - o.submit_s);
    wait_by[size_bucket(o.gpus)].push_back(o.start_s - o.submit_s);
    slow_by_user[o.user].push_back(c / std::max(1e-9, o.duration_s));
    if (o.preemptions) res.preemptions_by_user[o.user] += o.preemptions;
  }
  res.jct = percentiles(jct);
  res.wait = percentiles(wait);
  for (auto& [b, v] : wait_by) res.wait_by_size[b] = percentiles(v);
  res.makespan_s = to_s(last_end - first_submit);
  res.utilisation = res.makespan_s > 0 ? busy_gpu_s / (static_cast<double>(total_gpus) * res.makespan_s) : 0;
  res.utilisation_queued = queued_time > 0 ? queued_busy_gpu_s / (static_cast<double>(total_gpus) * queued_time) : 0;
  for (size_t b = 0; b < bucket_busy.size(); ++b) {
    double start = to_s(static_cast<int64_t>(b) * bucket_ns);
    double len = std::min(to_s(bucket_ns), res.makespan_s - start);
    if (len <= 0) break;
    res.utilisation_series.emplace_back(start, bucket_busy[b] / (static_cast<double>(total_gpus) * len));
  }
  res.fragmentation = frag_time > 0 ? frag_weighted / frag_time : 0;
  res.preemptions = core.stats().preemptions;
  std::vector<double> per_user;
  for (auto& [u, v] : slow_by_user) per_user.push_back(percentiles(v).avg);
  res.jain_fairness = jain_index(per_user);
  res.backfilled = core.stats().backfilled;
  res.cycles = core.stats().cycles;
  return res;
}

}  // namespace trainyard::scheduler::sim

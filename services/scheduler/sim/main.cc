// ty-sim: replays a job trace through the scheduler core with a virtual
// clock and simulated nodes, and compares scheduling policies. See
// services/scheduler/README.md ("Trace simulator").
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <tuple>

#include <CLI/CLI.hpp>

#include "config_keys.h"
#include "sim/report.h"
#include "sim/simulator.h"
#include "sim/trace.h"

using namespace trainyard;
using namespace trainyard::scheduler;

namespace {

struct Args {
  std::string trace_path, nodes = "64x8:V100,32x8:A100", policies = "fairshare+backfill", json_path, config_path,
      jobs_path;
  std::vector<std::string> sets, pools;
  std::string burst_after, burst_sweep;
  double limit_factor = 1, sample_s = 3600, burst_per_gpu_hour = -1;
  std::string eligible_only, large_wait, estimate_owned, move_min_left, move_loss;
  double large_gpu_hours = -1;
  bool limit_random = false;
  uint64_t seed = 1;
};

void add_options(CLI::App& app, Args& a) {
  app.add_option("trace", a.trace_path, "The trace (CSV)")->required();
  app.add_option("--nodes", a.nodes, "Simulated nodes: COUNTxGPUS:TYPE,... (e.g. 64x8:V100,32x8:A100)");
  app.add_option("--policy", a.policies,
                 "fifo | priority | fairshare | fairshare+backfill; several separated by commas, or 'all'");
  app.add_option("--limit-factor", a.limit_factor, "Time limits are the duration times this factor (>= 1; 1: exact)");
  app.add_flag("--limit-random", a.limit_random, "Draw each job's factor from [1, --limit-factor] (seeded)");
  app.add_option("--seed", a.seed, "Seed of the random choices (same seed, same results)");
  app.add_option("--json", a.json_path, "Also write the results as JSON here");
  app.add_option("--jobs-csv", a.jobs_path,
                 "Also write each job's outcome here (policy,job_id,user,gpus,submit_s,start_s,end_s,duration_s,"
                 "preemptions,state,cloud)");
  app.add_option("--sample-s", a.sample_s, "Step of the utilisation-over-time series, seconds");
  app.add_option("--config", a.config_path, "A trainyard TOML config: its [scheduler] keys (fair share, quotas...)");
  app.add_option("--set", a.sets, "Override a config key: section.key=value (repeatable)");
  app.add_option("--pool", a.pools,
                 "A rented cloud pool (repeatable): NAME:NODESxGPUS:TYPE[,boot=180s|120s-300s][,bootfail=0.02]"
                 "[,price=29.39][,spot=0.37][,interrupt=0.05][,max=N][,min=N][,idle=300s][,launches=N]. NODES: the "
                 "most rented at once; boot: launch to ready (a range: uniform draws); bootfail: share of nodes that "
                 "never register (terminated at the boot timeout, the pool backs off); price: per node-hour; spot: "
                 "rent spot at this share of price; interrupt: spot reclaims per node-hour (the node's runs are "
                 "preempted and start over; cloud.spot_fallback_after of them and a job rents on-demand); idle: "
                 "released after this idle time; launches: max concurrent launches (default 4). Driven by the "
                 "resource broker's cloud core; owned nodes (--nodes) always first; draws follow --seed. See "
                 "docs/cloud.md");
  app.add_option("--burst-after", a.burst_after,
                 "max_wait_before_burst: rent once a job would wait longer than this on owned nodes (0: always "
                 "burst, never: never; 90s, 5m, 1h...). Default: the broker's cloud.max_wait_before_burst_s");
  app.add_option("--burst-per-gpu-hour", a.burst_per_gpu_hour,
                 "burst_wait_per_gpu_hour_s: a job may also wait this many seconds per GPU-hour it asks (GPUs x "
                 "time limit) before it rents (compute-weighted, after Starburst; 0: off, the broker's default)");
  app.add_option("--rented-for-eligible-only", a.eligible_only,
                 "on: rented nodes take only jobs eligible to burst (closed to others, released when idle); off: "
                 "any job. Default: the broker's cloud.rented_for_eligible_only")
      ->check(CLI::IsMember({"on", "off"}));
  app.add_option("--burst-large", a.large_gpu_hours,
                 "burst_large_gpu_hours: a job asking more GPU-hours than this (GPUs x time limit) is large: it rents "
                 "only once its expected wait on owned nodes passes --burst-large-wait (0: off, the broker's default)");
  app.add_option("--burst-large-wait", a.large_wait,
                 "burst_large_wait_s: how long a large job may wait for owned nodes (0s to 30d; default the broker's)");
  app.add_option("--estimate-owned-start", a.estimate_owned,
                 "estimate_owned_start: on: every waiting job's start on owned nodes is estimated (the queue placed "
                 "on the owned GPUs by time limits), so a job rents at once when that wait passes its threshold; off: "
                 "only the backfill reservation's, else the wait so far. Default: the broker's")
      ->check(CLI::IsMember({"on", "off"}));
  app.add_option("--move-to-owned", a.move_min_left,
                 "move_to_owned_min_left_s: a rented node whose jobs all have at least this long left of their time "
                 "limits is emptied once owned nodes have room for them and no waiting job wants it; its jobs are "
                 "requeued onto the owned GPUs (0: off, the broker's default; 30m, 2h...). Every trace job counts as "
                 "resumable (it checkpoints)");
  app.add_option("--move-loss", a.move_loss,
                 "With --move-to-owned: what a move costs the job, added to what it had left (the work since its "
                 "last checkpoint and the restart; default 10m)");
  app.add_option("--burst-sweep", a.burst_sweep,
                 "Run once per threshold (e.g. always,0,5m,15m,30m,1h,never) with the first --policy and print the "
                 "cost/JCT curve: avg JCT, p50/p95 wait, cloud GPU-hours, cost, idle and boot node-hours. 'always': "
                 "burst at once with every other option off (always-burst), and each row's JCT and cost as shares of it");
}

struct CloudArgs {
  std::vector<sim::CloudPoolSpec> pools;
  std::vector<int64_t> thresholds;  // one run each (sweep), or the one --burst-after
  bool sweep = false;
  int64_t large_wait_s = -1;  // --burst-large-wait (-1: the broker's default)
  int64_t move_min_left_s = -1;  // --move-to-owned (-1: the broker's default)
  int64_t move_loss_s = -1;      // --move-loss (-1: 10 min)
};

Result<CloudArgs> cloud_args(const Args& a) {
  CloudArgs c;
  for (auto& text : a.pools) {
    auto p = sim::parse_pool(text);
    if (!p) return p.status();
    c.pools.push_back(std::move(p).value());
  }
  if (c.pools.empty() && (!a.burst_after.empty() || !a.burst_sweep.empty())) {
    return Status::invalid("--burst-after and --burst-sweep need at least one --pool");
  }
  if (!a.burst_sweep.empty()) {
    if (!a.burst_after.empty()) return Status::invalid("--burst-after and --burst-sweep: give one or the other");
    auto t = sim::parse_burst_sweep(a.burst_sweep);
    if (!t) return t.status();
    c.thresholds = *t;
    c.sweep = true;
  } else if (!a.burst_after.empty()) {
    auto t = sim::parse_burst_after(a.burst_after);
    if (!t) return t.status();
    c.thresholds = {*t};
  } else {
    c.thresholds = {sim::default_burst_policy().after_s};
  }
  if (!a.large_wait.empty()) {
    auto w = sim::parse_burst_large_wait(a.large_wait);
    if (!w) return w.status();
    c.large_wait_s = *w;
  }
  for (auto [flag, text, out] : {std::tuple{"--move-to-owned", &a.move_min_left, &c.move_min_left_s},
                                 std::tuple{"--move-loss", &a.move_loss, &c.move_loss_s}}) {
    if (text->empty()) continue;
    auto d = sim::parse_burst_after(*text);
    if (!d || *d < 0 || *d > 365LL * 86400) {
      return Status::invalid(std::string(flag) + " '" + *text + "': must be a duration from 0 to 365d (90s, 30m, 2h)");
    }
    *out = *d;
  }
  return c;
}

// One run of the trace per policy named in --policy.
Result<std::vector<sim::SimResult>> simulate_all(const Args& a, const CloudArgs& cloud,
                                                 const std::vector<sim::TraceJob>& trace) {
  auto groups = sim::parse_nodes(a.nodes);
  if (!groups) return groups.status();
  auto config = Config::load(a.config_path, a.sets);
  if (!config) return config.status();
  auto choice = scheduler_config_from(*config);
  if (!choice) return Status::invalid("config: " + choice.status().message());
  std::string policies = a.policies == "all" ? "fifo,priority,fairshare,fairshare+backfill" : a.policies;
  std::vector<sim::SimResult> runs;
  std::stringstream list(policies);
  std::string policy;
  std::vector<sim::SimOptions> todo;
  while (std::getline(list, policy, ',')) {
    sim::SimOptions o;
    o.nodes = *groups;
    o.policy = policy;
    o.config = choice->core;
    o.keep_backfill = config->has("scheduler.backfill");
    o.limit_factor = a.limit_factor;
    o.limit_random = a.limit_random;
    o.seed = a.seed;
    o.sample_s = a.sample_s;
    o.pools = cloud.pools;
    o.burst = sim::default_burst_policy();
    if (a.burst_per_gpu_hour >= 0) o.burst.per_gpu_hour_s = a.burst_per_gpu_hour;
    if (!a.eligible_only.empty()) o.burst.eligible_only = a.eligible_only == "on";
    if (a.large_gpu_hours >= 0) o.burst.large_gpu_hours = a.large_gpu_hours;
    if (cloud.large_wait_s >= 0) o.burst.large_wait_s = cloud.large_wait_s;
    if (!a.estimate_owned.empty()) o.burst.estimate_owned = a.estimate_owned == "on";
    if (cloud.move_min_left_s >= 0) o.burst.move_min_left_s = cloud.move_min_left_s;
    if (cloud.move_loss_s >= 0) o.burst.move_loss_s = cloud.move_loss_s;
    if (cloud.sweep) {
      for (int64_t t : cloud.thresholds) {
        sim::SimOptions run = o;
        // always: the baseline, every option off.
        run.burst = t == sim::kBurstAlways ? sim::BurstPolicy{t, 0, false, 0, 0, false} : o.burst;
        run.burst.after_s = t;
        todo.push_back(run);
      }
      break;  // a sweep runs the first policy only
    }
    o.burst.after_s = cloud.thresholds.at(0);
    todo.push_back(o);
  }
  for (auto& o : todo) {
    auto r = sim::simulate(trace, o);
    if (!r) return r.status();
    runs.push_back(std::move(r).value());
  }
  return runs;
}

bool write_json(const Args& a, const std::vector<sim::SimResult>& runs) {
  nlohmann::json out = {{"trace", a.trace_path},
                        {"nodes", a.nodes},
                        {"limit_factor", a.limit_factor},
                        {"limit_random", a.limit_random},
                        {"seed", a.seed},
                        {"pools", a.pools},
                        {"runs", nlohmann::json::array()}};
  for (auto& r : runs) out["runs"].push_back(sim::to_json(r));
  std::ofstream f(a.json_path);
  f << out.dump(2) << "\n";
  return static_cast<bool>(f);
}

bool write_jobs(const std::string& path, const std::vector<sim::SimResult>& runs) {
  std::ofstream f(path);
  f << "policy,job_id,user,gpus,submit_s,start_s,end_s,duration_s,preemptions,state,cloud\n";
  for (auto& r : runs) {
    for (auto& o : r.outcomes) {
      f << r.policy << ',' << o.id << ',' << o.user << ',' << o.gpus << ',' << o.submit_s << ',' << o.start_s << ','
        << o.end_s << ',' << o.duration_s << ',' << o.preemptions << ',' << o.state << ',' << (o.cloud ? 1 : 0)
        << '\n';
    }
  }
  return static_cast<bool>(f);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ty-sim: replay a job trace (CSV: job_id,submit_time_s,num_gpus,duration_s,user,gpu_type) through the "
               "scheduler core on simulated nodes and report completion times, queueing delay, makespan, GPU "
               "utilisation, fragmentation, preemptions and fairness. With --pool, rented cloud pools too (the resource "
               "broker's cloud core decides when to rent and release): cloud GPU-hours, cost, idle and boot hours. "
               "Deterministic for the same trace and seed."};
  Args a;
  add_options(app, a);
  CLI11_PARSE(app, argc, argv);

  auto trace = sim::read_trace(a.trace_path);
  if (!trace) {
    std::fprintf(stderr, "ty-sim: %s\n", trace.status().message().c_str());
    return 2;
  }
  auto cloud = cloud_args(a);
  if (!cloud) {
    std::fprintf(stderr, "ty-sim: %s\n", cloud.status().message().c_str());
    return 2;
  }
  auto runs = simulate_all(a, *cloud, *trace);
  if (!runs) {
    std::fprintf(stderr, "ty-sim: %s\n", runs.status().message().c_str());
    return 2;
  }
  uint64_t gpus = runs->empty() ? 0 : (*runs)[0].gpus;
  std::printf("trace %s: %zu jobs on %s (%llu GPUs), limits = duration x %s%.2f%s, seed %llu\n", a.trace_path.c_str(),
              trace->size(), a.nodes.c_str(), static_cast<unsigned long long>(gpus), a.limit_random ? "U[1, " : "",
              a.limit_factor, a.limit_random ? "]" : "", static_cast<unsigned long long>(a.seed));
  for (auto& p : a.pools) std::printf("pool %s\n", p.c_str());
  if (!cloud->sweep) {
    std::printf("%s", sim::format_table(*runs).c_str());
    std::printf("%s", sim::format_wait_by_size(*runs).c_str());
  }
  if (!cloud->pools.empty()) {
    if (!runs->empty()) {
      const sim::SimResult& r = runs->back();  // a sweep's last row is not "always" unless all are
      const sim::BurstPolicy& b = r.burst;
      std::printf(
          "%s (policy %s, burst_wait_per_gpu_hour_s %g, rented_for_eligible_only %s, burst_large_gpu_hours "
          "%g, burst_large_wait_s %lld, estimate_owned_start %s, move_to_owned_min_left_s %lld): times in s, cost "
          "at the pools' prices\n",
          cloud->sweep ? "burst threshold sweep" : "cloud", r.policy.c_str(), b.per_gpu_hour_s,
          b.eligible_only ? "on" : "off", b.large_gpu_hours, static_cast<long long>(b.large_wait_s),
          b.estimate_owned ? "on" : "off", static_cast<long long>(b.move_min_left_s));
    }
    std::printf("%s", sim::format_cloud_table(*runs).c_str());
  }
  if (!a.json_path.empty() && !write_json(a, *runs)) {
    std::fprintf(stderr, "ty-sim: cannot write %s\n", a.json_path.c_str());
    return 1;
  }
  if (!a.jobs_path.empty() && !write_jobs(a.jobs_path, *runs)) {
    std::fprintf(stderr, "ty-sim: cannot write %s\n", a.jobs_path.c_str());
    return 1;
  }
  return 0;
}

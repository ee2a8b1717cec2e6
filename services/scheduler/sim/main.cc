// ty-sim: replays a job trace through the scheduler core with a virtual
// clock and simulated nodes, and compares scheduling policies. See
// services/scheduler/README.md ("Trace simulator").
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include <CLI/CLI.hpp>

#include "config_keys.h"
#include "sim/report.h"
#include "sim/simulator.h"
#include "sim/trace.h"

using namespace trainyard;
using namespace trainyard::scheduler;

int main(int argc, char** argv) {
  CLI::App app{"ty-sim: replay a job trace (CSV: job_id,submit_time_s,num_gpus,duration_s,user,gpu_type) through the "
               "scheduler core on simulated nodes and report completion times, queueing delay, makespan, GPU "
               "utilisation, fragmentation, preemptions and fairness. Deterministic for the same trace and seed."};
  std::string trace_path, nodes = "64x8:V100,32x8:A100", policies = "fairshare+backfill", json_path, config_path,
      jobs_path;
  std::vector<std::string> sets;
  double limit_factor = 1, sample_s = 3600;
  bool limit_random = false;
  uint64_t seed = 1;
  app.add_option("trace", trace_path, "The trace (CSV)")->required();
  app.add_option("--nodes", nodes, "Simulated nodes: COUNTxGPUS:TYPE,... (e.g. 64x8:V100,32x8:A100)");
  app.add_option("--policy", policies,
                 "fifo | priority | fairshare | fairshare+backfill; several separated by commas, or 'all'");
  app.add_option("--limit-factor", limit_factor, "Time limits are the duration times this factor (>= 1; 1: exact)");
  app.add_flag("--limit-random", limit_random, "Draw each job's factor from [1, --limit-factor] (seeded)");
  app.add_option("--seed", seed, "Seed of the random choices (same seed, same results)");
  app.add_option("--json", json_path, "Also write the results as JSON here");
  app.add_option("--jobs-csv", jobs_path,
                 "Also write each job's outcome here (policy,job_id,user,gpus,submit_s,start_s,end_s,duration_s,"
                 "preemptions,state)");
  app.add_option("--sample-s", sample_s, "Step of the utilisation-over-time series, seconds");
  app.add_option("--config", config_path, "A trainyard TOML config: its [scheduler] keys (fair share, quotas...)");
  app.add_option("--set", sets, "Override a config key: section.key=value (repeatable)");
  CLI11_PARSE(app, argc, argv);

  auto trace = sim::read_trace(trace_path);
  if (!trace) {
    std::fprintf(stderr, "ty-sim: %s\n", trace.status().message().c_str());
    return 2;
  }
  auto groups = sim::parse_nodes(nodes);
  if (!groups) {
    std::fprintf(stderr, "ty-sim: %s\n", groups.status().message().c_str());
    return 2;
  }
  auto config = Config::load(config_path, sets);
  if (!config) {
    std::fprintf(stderr, "ty-sim: %s\n", config.status().message().c_str());
    return 2;
  }
  auto choice = scheduler_config_from(*config);
  if (!choice) {
    std::fprintf(stderr, "ty-sim: config: %s\n", choice.status().message().c_str());
    return 2;
  }
  if (policies == "all") policies = "fifo,priority,fairshare,fairshare+backfill";
  std::vector<sim::SimResult> runs;
  std::stringstream list(policies);
  std::string policy;
  while (std::getline(list, policy, ',')) {
    sim::SimOptions o;
    o.nodes = *groups;
    o.policy = policy;
    o.config = choice->core;
    o.keep_backfill = config->has("scheduler.backfill");
    o.limit_factor = limit_factor;
    o.limit_random = limit_random;
    o.seed = seed;
    o.sample_s = sample_s;
    auto r = sim::simulate(*trace, o);
    if (!r) {
      std::fprintf(stderr, "ty-sim: %s\n", r.status().message().c_str());
      return 2;
    }
    runs.push_back(std::move(r).value());
  }
  uint64_t gpus = runs.empty() ? 0 : runs[0].gpus;
  std::printf("trace %s: %zu jobs on %s (%llu GPUs), limits = duration x %s%.2f%s, seed %llu\n", trace_path.c_str(),
              trace->size(), nodes.c_str(), static_cast<unsigned long long>(gpus), limit_random ? "U[1, " : "",
              limit_factor, limit_random ? "]" : "", static_cast<unsigned long long>(seed));
  std::printf("%s", sim::format_table(runs).c_str());
  std::printf("%s", sim::format_wait_by_size(runs).c_str());
  if (!json_path.empty()) {
    nlohmann::json out = {{"trace", trace_path},
                          {"nodes", nodes},
                          {"limit_factor", limit_factor},
                          {"limit_random", limit_random},
                          {"seed", seed},
                          {"runs", nlohmann::json::array()}};
    for (auto& r : runs) out["runs"].push_back(sim::to_json(r));
    std::ofstream f(json_path);
    f << out.dump(2) << "\n";
    if (!f) {
      std::fprintf(stderr, "ty-sim: cannot write %s\n", json_path.c_str());
      return 1;
    }
  }
  if (!jobs_path.empty()) {
    std::ofstream f(jobs_path);
    f << "policy,job_id,user,gpus,submit_s,start_s,end_s,duration_s,preemptions,state\n";
    for (auto& r : runs) {
      for (auto& o : r.outcomes) {
        f << r.policy << ',' << o.id << ',' << o.user << ',' << o.gpus << ',' << o.submit_s << ',' << o.start_s << ','
          << o.end_s << ',' << o.duration_s << ',' << o.preemptions << ',' << o.state << '\n';
      }
    }
    if (!f) {
      std::fprintf(stderr, "ty-sim: cannot write %s\n", jobs_path.c_str());
      return 1;
    }
  }
  return 0;
}

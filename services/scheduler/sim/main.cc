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

namespace {

struct Args {
  std::string trace_path, nodes = "64x8:V100,32x8:A100", policies = "fairshare+backfill", json_path, config_path,
      jobs_path;
  std::vector<std::string> sets;
  double limit_factor = 1, sample_s = 3600;
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
                 "preemptions,state)");
  app.add_option("--sample-s", a.sample_s, "Step of the utilisation-over-time series, seconds");
  app.add_option("--config", a.config_path, "A trainyard TOML config: its [scheduler] keys (fair share, quotas...)");
  app.add_option("--set", a.sets, "Override a config key: section.key=value (repeatable)");
}

// One run of the trace per policy named in --policy.
Result<std::vector<sim::SimResult>> simulate_all(const Args& a, const std::vector<sim::TraceJob>& trace) {
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
                        {"runs", nlohmann::json::array()}};
  for (auto& r : runs) out["runs"].push_back(sim::to_json(r));
  std::ofstream f(a.json_path);
  f << out.dump(2) << "\n";
  return static_cast<bool>(f);
}

bool write_jobs(const std::string& path, const std::vector<sim::SimResult>& runs) {
  std::ofstream f(path);
  f << "policy,job_id,user,gpus,submit_s,start_s,end_s,duration_s,preemptions,state\n";
  for (auto& r : runs) {
    for (auto& o : r.outcomes) {
      f << r.policy << ',' << o.id << ',' << o.user << ',' << o.gpus << ',' << o.submit_s << ',' << o.start_s << ','
        << o.end_s << ',' << o.duration_s << ',' << o.preemptions << ',' << o.state << '\n';
    }
  }
  return static_cast<bool>(f);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ty-sim: replay a job trace (CSV: job_id,submit_time_s,num_gpus,duration_s,user,gpu_type) through the "
               "scheduler core on simulated nodes and report completion times, queueing delay, makespan, GPU "
               "utilisation, fragmentation, preemptions and fairness. Deterministic for the same trace and seed."};
  Args a;
  add_options(app, a);
  CLI11_PARSE(app, argc, argv);

  auto trace = sim::read_trace(a.trace_path);
  if (!trace) {
    std::fprintf(stderr, "ty-sim: %s\n", trace.status().message().c_str());
    return 2;
  }
  auto runs = simulate_all(a, *trace);
  if (!runs) {
    std::fprintf(stderr, "ty-sim: %s\n", runs.status().message().c_str());
    return 2;
  }
  uint64_t gpus = runs->empty() ? 0 : (*runs)[0].gpus;
  std::printf("trace %s: %zu jobs on %s (%llu GPUs), limits = duration x %s%.2f%s, seed %llu\n", a.trace_path.c_str(),
              trace->size(), a.nodes.c_str(), static_cast<unsigned long long>(gpus), a.limit_random ? "U[1, " : "",
              a.limit_factor, a.limit_random ? "]" : "", static_cast<unsigned long long>(a.seed));
  std::printf("%s", sim::format_table(*runs).c_str());
  std::printf("%s", sim::format_wait_by_size(*runs).c_str());
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

#include "sim/report.h"

#include <cstdio>

namespace trainyard::scheduler::sim {
namespace {

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

nlohmann::json pct(const Percentiles& p) {
  return {{"count", p.count}, {"avg_s", p.avg}, {"p50_s", p.p50}, {"p95_s", p.p95}, {"p99_s", p.p99}, {"max_s", p.max}};
}

}  // namespace

std::string format_table(const std::vector<SimResult>& runs) {
  std::string out;
  char line[512];
  std::snprintf(line, sizeof line, "%-20s %9s %9s %9s %9s %9s %9s %10s %6s %7s %6s %7s %6s\n", "policy", "avg JCT",
                "p50 JCT", "p99 JCT", "avg wait", "p99 wait", "max wait", "makespan", "util", "util|q", "frag",
                "preempt", "Jain");
  out += line;
  for (auto& r : runs) {
    std::snprintf(line, sizeof line,
                  "%-20s %9.0f %9.0f %9.0f %9.0f %9.0f %9.0f %10.0f %5.1f%% %6.1f%% %5.1f%% %7llu %6.3f\n",
                  r.policy.c_str(), r.jct.avg, r.jct.p50, r.jct.p99, r.wait.avg, r.wait.p99, r.wait.max, r.makespan_s,
                  100 * r.utilisation, 100 * r.utilisation_queued, 100 * r.fragmentation,
                  static_cast<unsigned long long>(r.preemptions), r.jain_fairness);
    out += line;
  }
  return out;
}

std::string format_wait_by_size(const std::vector<SimResult>& runs) {
  std::string out = "queueing delay by job size (GPUs): count, avg / p50 / p99 s\n";
  for (auto& r : runs) {
    out += "  " + r.policy + ":";
    for (auto& [bucket, p] : r.wait_by_size) {
      out += "  [" + bucket + "] " + std::to_string(p.count) + ", " + fmt("%.0f", p.avg) + " / " + fmt("%.0f", p.p50) +
             " / " + fmt("%.0f", p.p99);
    }
    out += "\n";
  }
  return out;
}

std::string format_cloud_table(const std::vector<SimResult>& runs) {
  // With an always-burst row (a sweep's "always"), each row's JCT and cost
  // as shares of its: the target is JCT <= 1.10 at cost <= 0.50.
  const SimResult* always = nullptr;
  for (auto& r : runs) {
    if (r.cloud && r.burst.after_s == kBurstAlways) always = &r;
  }
  std::string out;
  char line[512];
  std::snprintf(line, sizeof line, "%-12s %9s %9s %9s %11s %11s %10s %10s %8s %5s %8s %8s %6s%s\n", "burst after",
                "avg JCT", "p50 wait", "p95 wait", "cloud GPU-h", "cloud cost", "idle nd-h", "boot nd-h", "launches",
                "peak", "reclaims", "bootfail", "moves", always ? "  JCT/always cost/always" : "");
  out += line;
  for (auto& r : runs) {
    if (!r.cloud) continue;
    const CloudStats& c = r.cloud_stats;
    std::snprintf(line, sizeof line, "%-12s %9.0f %9.0f %9.0f %11.1f %11.2f %10.1f %10.1f %8llu %5u %8llu %8llu %6llu",
                  format_burst_after(r.burst.after_s).c_str(), r.jct.avg, r.wait.p50, r.wait.p95, c.gpu_hours, c.cost,
                  c.idle_node_hours, c.boot_node_hours, static_cast<unsigned long long>(c.launches), c.peak_nodes,
                  static_cast<unsigned long long>(c.interruptions), static_cast<unsigned long long>(c.boot_failures),
                  static_cast<unsigned long long>(c.moves));
    out += line;
    if (always && always->jct.avg > 0 && always->cloud_stats.cost > 0) {
      std::snprintf(line, sizeof line, "  %10.3f %11.3f", r.jct.avg / always->jct.avg, c.cost / always->cloud_stats.cost);
      out += line;
    }
    out += "\n";
  }
  return out;
}

nlohmann::json cloud_json(const SimResult& r) {
  const CloudStats& c = r.cloud_stats;
  nlohmann::json after = r.burst.after_s == kBurstNever    ? nlohmann::json("never")
                         : r.burst.after_s == kBurstAlways ? nlohmann::json("always")
                                                           : nlohmann::json(r.burst.after_s);
  return {{"burst_after_s", after},
          {"burst_wait_per_gpu_hour_s", r.burst.per_gpu_hour_s},
          {"rented_for_eligible_only", r.burst.eligible_only},
          {"burst_large_gpu_hours", r.burst.large_gpu_hours},
          {"burst_large_wait_s", r.burst.large_wait_s},
          {"estimate_owned_start", r.burst.estimate_owned},
          {"move_to_owned_min_left_s", r.burst.move_min_left_s},
          {"move_loss_s", r.burst.move_loss_s},
          {"moves", c.moves},
          {"launches", c.launches},
          {"released", c.released},
          {"peak_nodes", c.peak_nodes},
          {"node_hours", c.node_hours},
          {"gpu_hours", c.gpu_hours},
          {"cost", c.cost},
          {"busy_node_hours", c.busy_node_hours},
          {"idle_node_hours", c.idle_node_hours},
          {"boot_node_hours", c.boot_node_hours},
          {"boot_failures", c.boot_failures},
          {"interruptions", c.interruptions},
          {"runs_interrupted", c.runs_interrupted}};
}

nlohmann::json to_json(const SimResult& r) {
  nlohmann::json by_size = nlohmann::json::object();
  for (auto& [b, p] : r.wait_by_size) by_size[b] = pct(p);
  nlohmann::json series = nlohmann::json::array();
  for (auto& [t, u] : r.utilisation_series) series.push_back({{"t_s", t}, {"utilisation", u}});
  nlohmann::json preempted = nlohmann::json::object();
  for (auto& [u, n] : r.preemptions_by_user) preempted[u] = n;
  nlohmann::json out = {{"policy", r.policy},
          {"jobs", r.jobs},
          {"finished", r.finished},
          {"gpus", r.gpus},
          {"jct", pct(r.jct)},
          {"queueing_delay", pct(r.wait)},
          {"queueing_delay_by_size", by_size},
          {"makespan_s", r.makespan_s},
          {"utilisation", r.utilisation},
          {"utilisation_while_jobs_wait", r.utilisation_queued},
          {"utilisation_over_time", series},
          {"fragmentation", r.fragmentation},
          {"preemptions", r.preemptions},
          {"preemptions_by_user", preempted},
          {"jain_fairness", r.jain_fairness},
          {"backfilled", r.backfilled},
          {"cycles", r.cycles}};
  if (r.cloud) out["cloud"] = cloud_json(r);
  return out;
}

}  // namespace trainyard::scheduler::sim

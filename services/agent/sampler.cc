// Periodic samples: each running job's CPU, memory and GPU use as sys/*
// metrics, and the agent's own ops.metrics.agent gauges.
#include "point_batch.h"
#include "shell.h"

namespace trainyard::agent {

void AgentShell::sample_resources() {
  int64_t now = clock_.now_ns();
  for (auto& [lease, run] : runs_) {
    auto& r = run->rec;
    if (r.simulated || r.finished() || r.job_pid <= 0 || r.start_ns == 0) continue;
    RunResources res = sample_run(r.job_pid, r.cgroup);
    if (res.processes == 0) continue;
    PointBatch points;
    int64_t step = (now - r.start_ns) / 1'000'000;
    if (run->prev_sample_ns > 0 && now > run->prev_sample_ns && res.cpu_ns >= run->prev_cpu_ns) {
      double pct = static_cast<double>(res.cpu_ns - run->prev_cpu_ns) / static_cast<double>(now - run->prev_sample_ns) * 100;
      points.add("sys/cpu_percent", step, now, pct);
    }
    run->prev_cpu_ns = res.cpu_ns;
    run->prev_sample_ns = now;
    points.add("sys/rss_mb", step, now, static_cast<double>(res.rss_bytes) / (1024.0 * 1024.0));
    if (nvml_ && options_.gpus_from_nvml && !r.gpu_indices.empty()) {
      double util = 0, mem = 0;
      int n = 0;
      for (auto idx : r.gpu_indices) {
        if (auto s = nvml_->sample(idx)) {
          util += s->util_percent;
          mem += s->memory_used_mb;
          ++n;
        }
      }
      if (n > 0) {
        points.add("sys/gpu_util", step, now, util / n);
        points.add("sys/gpu_mem_mb", step, now, mem);
      }
    }
    points.publish(*publisher_, runtime_.batch(), r.job_id, r.attempt, r.experiment, options_.metrics_batch_points);
  }
}

void AgentShell::publish_ops() {
  size_t running = 0, finished = 0;
  uint64_t points = 0, bad = 0;
  for (auto& [lease, run] : runs_) {
    auto& r = run->rec;
    (r.finished() ? finished : running) += 1;
    points += r.points;
    for (auto c : r.bad_lines) bad += c;
  }
  size_t registered = 0;
  for (auto& st : node_state_) registered += st.registered ? 1 : 0;
  auto& stats = publisher_->stats();
  bus::Gauges g;
  auto gauge = [&](const char* name, double v) { g.emplace_back(name, v); };
  gauge("runs_running", static_cast<double>(running));
  gauge("runs_kept_finished", static_cast<double>(finished));
  gauge("nodes", static_cast<double>(nodes_.size()));
  gauge("nodes_registered", static_cast<double>(registered));
  gauge("metric_points_of_kept_runs", static_cast<double>(points));
  gauge("bad_metric_lines_of_kept_runs", static_cast<double>(bad));
  gauge("job_files_refused", static_cast<double>(job_files_refused_));
  gauge("events_published", static_cast<double>(stats.published));
  gauge("lease_events_applied", static_cast<double>(subscriber_->stats().applied));
  gauge("lease_events_refused", static_cast<double>(refused_leases_));
  for (auto& kv : audit_->gauges()) g.emplace_back(kv);
  gauge("directory_version", static_cast<double>(directory_->current().version));
  bus::publish_ops_metrics(*publisher_, runtime_.batch(), "agent", options_.node, g);
}

}  // namespace trainyard::agent

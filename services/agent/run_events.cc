// What a run publishes: run.started, the usage.tick tiling of its time and
// run.finished with its outcome.
#include <algorithm>

#include <spdlog/spdlog.h>

#include "shell.h"

namespace trainyard::agent {

void AgentShell::publish_started(const Run& run) {
  auto& r = run.rec;
  auto& b = publisher_->builder();
  auto node = b.CreateString(r.node);
  auto ev = fb::CreateRunStarted(b, r.lease_id, r.job_id, r.attempt, node, r.job_pid, r.start_ns);
  publisher_->append(runtime_.batch(), "run.started", fb::Payload::RunStarted, ev.Union());
}

void AgentShell::publish_usage(Run& run, int64_t end_ns, bool final) {
  auto& r = run.rec;
  auto tick = next_usage_tick(r.usage_until_ns, end_ns);
  if (!tick && !final) return;
  int64_t start = r.usage_until_ns;
  int64_t end = tick ? tick->second : r.usage_until_ns;
  auto& b = publisher_->builder();
  auto account = b.CreateString(r.account);
  auto user = b.CreateString(r.user);
  auto partition = b.CreateString(r.partition);
  auto node = b.CreateString(r.node);
  auto gpu_type = b.CreateString(r.gpu_type);
  auto ev = fb::CreateUsageTick(b, r.lease_id, r.job_id, account, user, partition, node, gpu_type, r.gpus, r.cpus,
                                r.memory_mb, start, end, final);
  publisher_->append(runtime_.batch(), "usage.tick", fb::Payload::UsageTick, ev.Union());
  r.usage_until_ns = end;
}

void AgentShell::finish(Run& run, int exit_code, int signal, int64_t end_ns, const std::string& reason) {
  auto& r = run.rec;
  if (r.finished()) return;
  r.outcome = decide_outcome(r.stop_reason, exit_code, signal);
  r.exit_code = exit_code;
  r.signal = signal;
  if (r.start_ns > 0) {
    // The final tick closes the tiling; a tick already past the reported end
    // moves the end (by at most one check period) so the sum stays exact.
    r.end_ns = std::max(end_ns, r.usage_until_ns);
    publish_usage(run, r.end_ns, true);
  } else {
    r.end_ns = end_ns;
  }
  r.reason = reason;
  r.state = RunState::kFinished;
  run.launch_due = false;
  auto& b = publisher_->builder();
  auto node = b.CreateString(r.node);
  auto why = b.CreateString(reason);
  auto ev = fb::CreateRunFinished(b, r.lease_id, r.job_id, r.attempt, node, r.outcome, exit_code, signal, r.end_ns, why);
  publisher_->append(runtime_.batch(), "run.finished", fb::Payload::RunFinished, ev.Union());
  save(run);
  if (!r.simulated) {
    spdlog::info("job {} attempt {} finished (lease {}): {} ({})", r.job_id, r.attempt, r.lease_id,
                 fb::EnumNameRunOutcome(r.outcome), reason);
  }
}

void AgentShell::usage_ticks() {
  int64_t now = clock_.now_ns();
  for (auto& [lease, run] : runs_) {
    auto& r = run->rec;
    if (r.finished() || r.start_ns == 0) continue;
    int64_t end = now;
    if (r.simulated) {
      // A simulated run ends exactly at its declared end, not when a check notices.
      end = std::min(end, r.sim_end_ns);
      if (r.deadline_ns > 0) end = std::min(end, r.deadline_ns);
    }
    if (end <= r.usage_until_ns) continue;
    publish_usage(*run, end, false);
    save(*run);
  }
}

}  // namespace trainyard::agent

// The lease.<node>.* stream: a grant becomes a run (launched after the
// commit, or simulated at once); a revocation, release or loss stops it.
#include <signal.h>

#include <algorithm>
#include <cstdlib>

#include <spdlog/spdlog.h>

#include "lease_key.h"
#include "shell.h"
#include "supervisor.h"

namespace trainyard::agent {

void AgentShell::on_lease_event(const bus::Event& e, storage::Batch& batch) {
  if (directory_->apply(e, batch)) return;
  // Grants and revocations come from the broker's streams only: under CURVE
  // the forwarder let only service:<broker.instance> publish there.
  if (e.stream().substr(e.stream().rfind('@') + 1) != options_.broker_instance) {
    ++refused_leases_;
    spdlog::warn("ignored {} on stream {}: leases come from the broker ({}) only", e.topic, e.stream(),
                 options_.broker_instance);
    return;
  }
  switch (e.type()) {
    case fb::Payload::LeaseGranted: {
      auto* g = e.as<fb::LeaseGranted>();
      if (!g || !g->node() || !node_set_.count(g->node()->string_view())) return;
      on_granted(*g, e);
      return;
    }
    case fb::Payload::LeaseRevoked: {
      auto* r = e.as<fb::LeaseRevoked>();
      Run* run = r ? find(r->lease_id()) : nullptr;
      if (!run || run->rec.finished()) return;
      std::string why = r->reason() ? r->reason()->str() : std::string();
      // A preemption or a spot reclaim ends the run as Preempted: the
      // scheduler requeues the job without spending a retry. The cause is a
      // field; only events from before it existed say so in words.
      auto cause = r->cause();
      bool preempt = cause == fb::RevokeCause::Preemption || cause == fb::RevokeCause::SpotInterruption ||
                     (cause == fb::RevokeCause::Unknown && why.find("preempt") != std::string::npos);
      stop_run(*run, preempt ? StopReason::kPreempted : StopReason::kRevoked,
               "revoked" + (why.empty() ? std::string() : ": " + why), r->grace_s());
      return;
    }
    case fb::Payload::LeaseReleased:
    case fb::Payload::LeaseLost: {
      bool lost = e.type() == fb::Payload::LeaseLost;
      uint64_t lease = lost ? e.as<fb::LeaseLost>()->lease_id() : e.as<fb::LeaseReleased>()->lease_id();
      Run* run = find(lease);
      if (!run || run->rec.finished()) return;
      if (run->rec.state == RunState::kPending && !started_before_restart(*run)) {
        // Replayed history: the lease ended before this agent ever started it.
        run->launch_due = false;
        run->rec.state = RunState::kFinished;
        run->rec.reason = lost ? "lease lost before the run started" : "lease released before the run started";
        run->rec.metrics_done = true;
        save(*run);
        return;
      }
      stop_run(*run, lost ? StopReason::kLost : StopReason::kRevoked,
               lost ? "the broker declared the lease lost" : "the lease was released", lost ? 0 : run->rec.grace_s);
      return;
    }
    default:
      return;
  }
}

void AgentShell::on_granted(const fb::LeaseGranted& g, const bus::Event& e) {
  if (find(g.lease_id())) return;  // a grant seen twice (replay) starts nothing twice
  auto run = std::make_unique<Run>();
  RunRecord& r = run->rec;
  int64_t now = clock_.now_ns();
  r.lease_id = g.lease_id();
  r.job_id = g.job_id();
  r.attempt = g.attempt();
  r.array_index = g.array_index();
  r.node = g.node()->str();
  r.simulated = options_.simulate > 0;
  r.granted_ns = now;
  if (g.gpu_indices()) r.gpu_indices.assign(g.gpu_indices()->begin(), g.gpu_indices()->end());
  r.gpus = static_cast<uint32_t>(r.gpu_indices.size());
  r.cpus = g.cpus();
  r.memory_mb = g.memory_mb();
  r.gpu_type = g.gpu_type() ? g.gpu_type()->str() : std::string();
  if (r.gpu_type.empty() && !r.gpu_indices.empty()) {
    for (auto& gpu : options_.gpus) {
      if (gpu.index == r.gpu_indices[0]) r.gpu_type = gpu.type;
    }
  }
  r.partition = options_.partition;
  if (auto* spec = g.spec()) {
    if (spec->account()) r.account = spec->account()->str();
    if (spec->user()) r.user = spec->user()->str();
    if (spec->partition() && spec->partition()->size() > 0) r.partition = spec->partition()->str();
    if (spec->experiment()) r.experiment = spec->experiment()->str();
    r.grace_s = capped_grace_s(spec->grace_s(), options_.max_grace_s);
    r.time_limit_s = spec->time_limit_s();
    if (r.simulated) {
      // Up to about 31 years (and NaN as 0): beyond, the double would not fit an int64 of ns.
      double d = spec->sim_duration_s() > 0 ? std::min(spec->sim_duration_s(), 1e9) : 0.0;
      r.sim_end_ns = add_ns(now, static_cast<int64_t>(d * 1e9));
      if (spec->env()) {
        for (auto* kv : *spec->env()) {
          if (kv->key() && kv->value() && kv->key()->string_view() == "TY_SIM_EXIT_CODE") {
            r.sim_exit_code = std::atoi(kv->value()->c_str());
          }
        }
      }
    }
  }
  run->grant.assign(reinterpret_cast<const char*>(e.bytes.data()), e.bytes.size());
  runtime_.batch().put(grants_cf_, lease_key(r.lease_id), run->grant);
  if (r.simulated) {
    r.state = RunState::kRunning;
    r.start_ns = now;
    r.usage_until_ns = now;
    if (r.time_limit_s > 0) r.deadline_ns = add_ns(now, seconds_to_ns(r.time_limit_s));
    r.metrics_done = true;
    publish_started(*run);
  } else {
    run->launch_due = true;
    launch_queue_.push_back(r.lease_id);
  }
  save(*run);
  spdlog::debug("lease {} granted: job {} attempt {} on {}", r.lease_id, r.job_id, r.attempt, r.node);
  runs_.emplace(r.lease_id, std::move(run));
}

void AgentShell::stop_run(Run& run, StopReason why, const std::string& message, uint32_t grace_s) {
  auto& r = run.rec;
  if (r.finished()) return;
  int64_t now = clock_.now_ns();
  grace_s = capped_grace_s(grace_s, options_.max_grace_s);
  if (r.state == RunState::kStopping) {
    // Asked again (a revoke after the time limit...): keep the first reason, the sooner kill.
    r.kill_at_ns = std::min(r.kill_at_ns, add_ns(now, seconds_to_ns(grace_s)));
    save(run);
    return;
  }
  r.stop_reason = why;
  r.stop_message = message;
  if (r.simulated) {
    finish(run, -1, SIGTERM, now, message);
    return;
  }
  if (r.state == RunState::kPending && started_before_restart(run)) launch(run);  // adopt it, then stop it
  if (r.state == RunState::kPending) {
    // Not started yet: nothing to kill.
    run.launch_due = false;
    finish(run, -1, 0, now, message + " before it started");
    return;
  }
  r.state = RunState::kStopping;
  r.kill_at_ns = add_ns(now, seconds_to_ns(grace_s));
  if (r.supervisor_pid > 1 && (run.our_child || supervisor_alive(state_dir_for(r)))) {
    ::kill(r.supervisor_pid, grace_s == 0 ? SIGUSR1 : SIGTERM);
    if (grace_s == 0) run.last_kill_ms = monotonic_ms();
  }
  spdlog::info("stopping job {} (lease {}): {}; SIGKILL in {} s", r.job_id, r.lease_id, message, grace_s);
  save(run);
}

}  // namespace trainyard::agent

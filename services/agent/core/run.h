// A run: one lease being executed on this node, as the agent remembers it in
// its RocksDB across restarts, plus the pure rules about runs (outcome,
// usage tiling, the job's environment and log paths).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/metric_line.h"
#include "core/slurm_env.h"
#include "trainyard/fb/runs_generated.h"

namespace trainyard::agent {

enum class RunState : uint8_t {
  kPending = 0,  // granted, supervisor not started yet
  kRunning,      // supervisor started (the job may still be exec'ing)
  kStopping,     // SIGTERM sent; SIGKILL at kill_at_ns
  kFinished,     // run.finished published
};

enum class StopReason : uint8_t { kNone = 0, kRevoked, kPreempted, kTimeLimit, kLost };

struct RunRecord {
  uint64_t lease_id = 0;
  uint64_t job_id = 0;
  uint32_t attempt = 0;
  int32_t array_index = -1;
  std::string node;
  bool simulated = false;
  RunState state = RunState::kPending;

  // Real runs: where things are and who runs them.
  std::string run_dir;
  std::string stdout_path;
  std::string stderr_path;
  std::string metrics_path;
  std::string cgroup;            // empty: no cgroup
  int supervisor_pid = 0;
  int job_pid = 0;               // also the job's process group id

  // Time (wall clock, ns since the epoch).
  int64_t granted_ns = 0;
  int64_t start_ns = 0;          // 0 until run.started
  int64_t deadline_ns = 0;       // start_ns + the time limit; 0: none
  uint64_t time_limit_s = 0;
  int sim_exit_code = 0;         // simulated: the exit code it "ends" with
  int64_t sim_end_ns = 0;        // simulated: when the job "ends" by itself
  StopReason stop_reason = StopReason::kNone;
  std::string stop_message;
  int64_t kill_at_ns = 0;        // stopping: SIGKILL of the group then
  uint32_t grace_s = 30;

  // Usage: what the ticks report, and the end of the last tick.
  int64_t usage_until_ns = 0;
  std::string account, user, partition, gpu_type, experiment;
  uint32_t gpus = 0, cpus = 0;
  uint64_t memory_mb = 0;
  std::vector<uint32_t> gpu_indices;

  // The end.
  fb::RunOutcome outcome = fb::RunOutcome::Succeeded;
  int exit_code = 0;
  int signal = 0;
  int64_t end_ns = 0;
  std::string reason;

  // Metrics file follower (resumes here after a restart).
  uint64_t metrics_offset = 0;
  bool metrics_skipping = false;
  bool metrics_done = false;
  uint32_t warned_kinds = 0;     // bit per BadLine kind already warned about
  std::array<uint64_t, kBadLineKinds> bad_lines{};
  uint64_t points = 0;

  bool finished() const { return state == RunState::kFinished; }
};

std::string encode_run(const RunRecord& r);
std::optional<RunRecord> decode_run(std::string_view bytes);

// How a run ended: a stop the agent caused names the outcome; otherwise the
// exit status does (0 and no signal: Succeeded).
fb::RunOutcome decide_outcome(StopReason stop, int exit_code, int signal);

// "exit code 3", "killed by signal 9 (Killed)": how a run ended, for its reason.
std::string exit_reason(int exit_code, int signal);

// The usage tick due for a run whose ticks cover up to `until_ns`, at `now_ns`:
// [until_ns, now_ns), or nothing when no time has passed. Consecutive ticks
// share their boundaries, so their lengths add up to the run's exact life.
std::optional<std::pair<int64_t, int64_t>> next_usage_tick(int64_t until_ns, int64_t now_ns);

// Checked time arithmetic: a job's time limit or grace can be any u64/u32
// from a spec, and `seconds * 1e9` or `now + that` must not overflow. Both
// saturate at INT64_MAX ("never" in practice) instead.
int64_t seconds_to_ns(uint64_t seconds);
int64_t add_ns(int64_t a, int64_t b);
// The grace a stop actually gets: the asked one, capped by the agent's
// agent.max_grace_s, so a job cannot out-wait a cancel or a time limit.
uint32_t capped_grace_s(uint64_t asked_s, uint32_t max_grace_s);

// The value of a run cgroup's memory.max for a lease of `memory_mb`: bytes,
// or "max" (no limit) when the bytes would not fit in 64 bits, never a
// wrapped tiny limit.
std::string cgroup_memory_max(uint64_t memory_mb);

// What the job's environment is built from.
struct JobEnvInput {
  uint64_t job_id = 0;
  uint32_t attempt = 0;
  int32_t array_index = -1;
  uint32_t node_rank = 0;
  std::vector<std::string> nodes;   // every node of the job, rank order (empty: just this one)
  std::string node;                 // this node
  std::vector<uint32_t> gpu_indices;
  std::string metrics_file;
  std::vector<std::pair<std::string, std::string>> spec_env;
  SlurmFacts slurm;                 // the SLURM_* variables and their TY_* twins
};

// The job's environment: `base` (the agent's own, minus CUDA_VISIBLE_DEVICES,
// TY_* and SLURM_* variables), then the spec's env, then the Trainyard and
// Slurm variables, which win so a job cannot widen its GPUs. Sorted by name.
std::vector<std::pair<std::string, std::string>> job_environment(
    const JobEnvInput& in, const std::vector<std::pair<std::string, std::string>>& base);

}  // namespace trainyard::agent

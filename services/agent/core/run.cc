#include "core/run.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>

#include <nlohmann/json.hpp>

namespace trainyard::agent {

using nlohmann::json;

// JSON: small, and readable with `ldb` when an operator has to look.
std::string encode_run(const RunRecord& r) {
  json j{
      {"lease", r.lease_id},
      {"job", r.job_id},
      {"attempt", r.attempt},
      {"array_index", r.array_index},
      {"node", r.node},
      {"sim", r.simulated},
      {"state", static_cast<int>(r.state)},
      {"run_dir", r.run_dir},
      {"stdout", r.stdout_path},
      {"stderr", r.stderr_path},
      {"metrics", r.metrics_path},
      {"cgroup", r.cgroup},
      {"sup_pid", r.supervisor_pid},
      {"job_pid", r.job_pid},
      {"granted_ns", r.granted_ns},
      {"start_ns", r.start_ns},
      {"deadline_ns", r.deadline_ns},
      {"sim_end_ns", r.sim_end_ns},
      {"time_limit_s", r.time_limit_s},
      {"sim_exit", r.sim_exit_code},
      {"stop", static_cast<int>(r.stop_reason)},
      {"stop_msg", r.stop_message},
      {"kill_at_ns", r.kill_at_ns},
      {"grace_s", r.grace_s},
      {"usage_until_ns", r.usage_until_ns},
      {"account", r.account},
      {"user", r.user},
      {"partition", r.partition},
      {"gpu_type", r.gpu_type},
      {"experiment", r.experiment},
      {"gpus", r.gpus},
      {"cpus", r.cpus},
      {"memory_mb", r.memory_mb},
      {"gpu_indices", r.gpu_indices},
      {"outcome", static_cast<int>(r.outcome)},
      {"exit_code", r.exit_code},
      {"signal", r.signal},
      {"end_ns", r.end_ns},
      {"reason", r.reason},
      {"m_off", r.metrics_offset},
      {"m_skip", r.metrics_skipping},
      {"m_done", r.metrics_done},
      {"warned", r.warned_kinds},
      {"bad", r.bad_lines},
      {"points", r.points},
  };
  return j.dump();
}

std::optional<RunRecord> decode_run(std::string_view bytes) {
  json j = json::parse(bytes, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  RunRecord r;
  try {
    r.lease_id = j.at("lease");
    r.job_id = j.at("job");
    r.attempt = j.at("attempt");
    r.array_index = j.value("array_index", -1);
    r.node = j.value("node", "");
    r.simulated = j.value("sim", false);
    r.state = static_cast<RunState>(j.value("state", 0));
    r.run_dir = j.value("run_dir", "");
    r.stdout_path = j.value("stdout", "");
    r.stderr_path = j.value("stderr", "");
    r.metrics_path = j.value("metrics", "");
    r.cgroup = j.value("cgroup", "");
    r.supervisor_pid = j.value("sup_pid", 0);
    r.job_pid = j.value("job_pid", 0);
    r.granted_ns = j.value("granted_ns", int64_t{0});
    r.start_ns = j.value("start_ns", int64_t{0});
    r.deadline_ns = j.value("deadline_ns", int64_t{0});
    r.sim_end_ns = j.value("sim_end_ns", int64_t{0});
    r.time_limit_s = j.value("time_limit_s", uint64_t{0});
    r.sim_exit_code = j.value("sim_exit", 0);
    r.stop_reason = static_cast<StopReason>(j.value("stop", 0));
    r.stop_message = j.value("stop_msg", "");
    r.kill_at_ns = j.value("kill_at_ns", int64_t{0});
    r.grace_s = j.value("grace_s", 30u);
    r.usage_until_ns = j.value("usage_until_ns", int64_t{0});
    r.account = j.value("account", "");
    r.user = j.value("user", "");
    r.partition = j.value("partition", "");
    r.gpu_type = j.value("gpu_type", "");
    r.experiment = j.value("experiment", "");
    r.gpus = j.value("gpus", 0u);
    r.cpus = j.value("cpus", 0u);
    r.memory_mb = j.value("memory_mb", uint64_t{0});
    r.gpu_indices = j.value("gpu_indices", std::vector<uint32_t>{});
    r.outcome = static_cast<fb::RunOutcome>(j.value("outcome", 0));
    r.exit_code = j.value("exit_code", 0);
    r.signal = j.value("signal", 0);
    r.end_ns = j.value("end_ns", int64_t{0});
    r.reason = j.value("reason", "");
    r.metrics_offset = j.value("m_off", uint64_t{0});
    r.metrics_skipping = j.value("m_skip", false);
    r.metrics_done = j.value("m_done", false);
    r.warned_kinds = j.value("warned", 0u);
    if (j.contains("bad")) {
      auto bad = j["bad"].get<std::vector<uint64_t>>();
      for (size_t i = 0; i < bad.size() && i < r.bad_lines.size(); ++i) r.bad_lines[i] = bad[i];
    }
    r.points = j.value("points", uint64_t{0});
  } catch (const json::exception&) {
    return std::nullopt;
  }
  return r;
}

fb::RunOutcome decide_outcome(StopReason stop, int exit_code, int signal) {
  switch (stop) {
    case StopReason::kRevoked: return fb::RunOutcome::Cancelled;
    case StopReason::kPreempted: return fb::RunOutcome::Preempted;
    case StopReason::kTimeLimit: return fb::RunOutcome::TimedOut;
    case StopReason::kLost: return fb::RunOutcome::Lost;
    case StopReason::kNone: break;
  }
  return exit_code == 0 && signal == 0 ? fb::RunOutcome::Succeeded : fb::RunOutcome::Failed;
}

std::optional<std::pair<int64_t, int64_t>> next_usage_tick(int64_t until_ns, int64_t now_ns) {
  if (now_ns <= until_ns) return std::nullopt;
  return std::make_pair(until_ns, now_ns);
}

std::string exit_reason(int exit_code, int signal) {
  if (signal != 0) return "killed by signal " + std::to_string(signal) + " (" + strsignal(signal) + ")";
  return "exit code " + std::to_string(exit_code);
}

std::string cgroup_memory_max(uint64_t memory_mb) {
  if (memory_mb > (UINT64_MAX >> 20)) return "max";
  return std::to_string(memory_mb << 20);
}

int64_t seconds_to_ns(uint64_t seconds) {
  constexpr int64_t kNsPerS = 1'000'000'000;
  constexpr uint64_t kMaxS = static_cast<uint64_t>(INT64_MAX / kNsPerS);
  if (seconds > kMaxS) return INT64_MAX;
  return static_cast<int64_t>(seconds) * kNsPerS;
}

int64_t add_ns(int64_t a, int64_t b) {
  int64_t out = 0;
  if (__builtin_add_overflow(a, b, &out)) return b > 0 ? INT64_MAX : INT64_MIN;
  return out;
}

uint32_t capped_grace_s(uint64_t asked_s, uint32_t max_grace_s) {
  return static_cast<uint32_t>(std::min<uint64_t>(asked_s, max_grace_s));
}

std::vector<std::pair<std::string, std::string>> job_environment(
    const JobEnvInput& in, const std::vector<std::pair<std::string, std::string>>& base) {
  std::map<std::string, std::string> env;
  for (auto& [k, v] : base) {
    if (k == "CUDA_VISIBLE_DEVICES" || k.rfind("TY_", 0) == 0 || k.rfind("SLURM", 0) == 0) continue;
    env[k] = v;
  }
  for (auto& [k, v] : in.spec_env) env[k] = v;
  std::string gpus;
  for (auto g : in.gpu_indices) {
    if (!gpus.empty()) gpus += ',';
    gpus += std::to_string(g);
  }
  std::vector<std::string> nodes = in.nodes.empty() ? std::vector<std::string>{in.node} : in.nodes;
  std::string node_list;
  for (auto& n : nodes) {
    if (!node_list.empty()) node_list += ',';
    node_list += n;
  }
  // An empty CUDA_VISIBLE_DEVICES hides every GPU, which is what a job
  // granted none must see.
  env["CUDA_VISIBLE_DEVICES"] = gpus;
  for (auto& [k, v] : slurm_variables(in.slurm)) env[k] = v;
  env["TY_JOB_ID"] = std::to_string(in.job_id);
  env["TY_ATTEMPT"] = std::to_string(in.attempt);
  if (in.array_index >= 0) env["TY_ARRAY_INDEX"] = std::to_string(in.array_index);
  env["TY_METRICS_FILE"] = in.metrics_file;
  env["TY_NODE_RANK"] = std::to_string(in.node_rank);
  env["TY_NUM_NODES"] = std::to_string(nodes.size());
  env["TY_NODES"] = node_list;
  env["TY_NODE"] = in.node;
  env["MASTER_ADDR"] = nodes.front();
  // NVML numbers GPUs in PCI order; CUDA must agree for the indices to mean the same GPUs.
  if (!env.count("CUDA_DEVICE_ORDER")) env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID";
  // A port every rank derives alike, unless the job picked one.
  if (!env.count("MASTER_PORT")) env["MASTER_PORT"] = std::to_string(20000 + in.job_id % 20000);
  return {env.begin(), env.end()};
}

}  // namespace trainyard::agent

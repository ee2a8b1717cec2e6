#include "srun_tasks.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>

namespace trainyard::ty {
namespace {

std::string env_or(const char* name, const char* fallback = "") {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

Status read_number(const char* name, uint32_t* out) {
  std::string v = env_or(name);
  if (v.empty()) return Status::success();
  uint32_t n = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || end != v.data() + v.size()) {
    return Status::invalid(std::string(name) + " is '" + v + "', not a number");
  }
  *out = n;
  return Status::success();
}

}  // namespace

Result<StepEnv> read_step_env() {
  StepEnv e;
  std::string job = env_or("TY_JOB_ID", env_or("SLURM_JOB_ID").c_str());
  if (job.empty()) return Status::failed_precondition("not inside a Trainyard job (TY_JOB_ID is not set)");
  auto [end, ec] = std::from_chars(job.data(), job.data() + job.size(), e.job_id);
  if (ec != std::errc() || end != job.data() + job.size()) {
    return Status::invalid("TY_JOB_ID is '" + job + "', not a job id");
  }
  for (auto [name, field] : {std::pair{"SLURM_NTASKS", &e.job_ntasks}, {"SLURM_JOB_NUM_NODES", &e.num_nodes},
                             {"SLURM_NODEID", &e.node_id}}) {
    if (auto s = read_number(name, field); !s) return s;
  }
  if (!env_or("SLURM_NTASKS_PER_NODE").empty() && env_or("SLURM_NTASKS_PER_NODE").find_first_not_of("0123456789") ==
                                                      std::string::npos) {
    uint32_t per = 0;
    if (auto s = read_number("SLURM_NTASKS_PER_NODE", &per); !s) return s;
    // Set from --ntasks-per-node, or computed: only a given one is binding.
    if (per > 0 && per * e.num_nodes == e.job_ntasks) e.tasks_per_node = per;
  }
  e.num_nodes = std::max<uint32_t>(e.num_nodes, 1);
  e.job_ntasks = std::max<uint32_t>(e.job_ntasks, 1);
  e.tmpdir = env_or("SLURM_TMPDIR");
  return e;
}

std::vector<TaskPlacement> place_tasks(uint32_t ntasks, const StepEnv& env) {
  std::vector<TaskPlacement> out;
  uint32_t nodes = std::max<uint32_t>(env.num_nodes, 1);
  uint32_t procid = 0;
  for (uint32_t node = 0; node < nodes && procid < ntasks; ++node) {
    uint32_t here = ntasks / nodes + (node < ntasks % nodes ? 1 : 0);
    if (env.tasks_per_node && *env.tasks_per_node * nodes >= ntasks) here = *env.tasks_per_node;
    for (uint32_t local = 0; local < here && procid < ntasks; ++local) out.push_back({procid++, local, node});
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> task_variables(const StepEnv& env, const TaskPlacement& p) {
  auto n = [](uint64_t v) { return std::to_string(v); };
  uint32_t nodes = std::min(env.num_nodes, std::max<uint32_t>(env.step_ntasks, 1));
  return {{"SLURM_PROCID", n(p.procid)},          {"SLURM_LOCALID", n(p.localid)},
          {"SLURM_NODEID", n(p.node_id)},         {"SLURM_STEP_ID", n(env.step_id)},
          {"SLURM_STEPID", n(env.step_id)},       {"SLURM_STEP_NUM_TASKS", n(env.step_ntasks)},
          {"SLURM_STEP_NUM_NODES", n(nodes)},     {"SLURM_NTASKS", n(env.step_ntasks)},
          {"SLURM_NPROCS", n(env.step_ntasks)},   {"TY_PROCID", n(p.procid)},
          {"TY_LOCALID", n(p.localid)}};
}

uint32_t next_step_id(const StepEnv& env) {
  if (env.tmpdir.empty()) return 0;
  std::string path = env.tmpdir + "/.srun-steps";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return 0;
  ::flock(fd, LOCK_EX);
  char buf[32] = {0};
  ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  uint32_t id = n > 0 ? static_cast<uint32_t>(std::strtoul(buf, nullptr, 10)) : 0;
  std::string next = std::to_string(id + 1);
  if (::ftruncate(fd, 0) == 0) (void)!::pwrite(fd, next.data(), next.size(), 0);
  ::close(fd);  // releases the lock
  return id;
}

void StepOutcome::note(uint32_t, int exit_code, int signal) {
  if (code_ != 0) return;
  if (signal > 0) {
    code_ = 128 + signal;
  } else if (exit_code != 0) {
    code_ = exit_code < 0 ? 1 : exit_code;
  }
}

}  // namespace trainyard::ty

// SpecBuilder::finish: what several options combine into (GPUs over nodes
// and tasks, CPUs, memory), the defaults of a submission (directories, log
// paths, name, whom notifications go to) and the environment --export
// passes on. The options themselves are spec_option_table.cc's table.
#include <algorithm>
#include <cctype>
#include <limits>
#include <map>
#include <set>

#include "paths.h"
#include "trainyard/job_spec.h"

namespace trainyard::client {

using detail::absolute;
using detail::basename_of;

namespace {

// Variables of the submitting shell that describe its own session or
// devices and must not leak into the job under --export=ALL.
bool is_local_variable(const std::string& name) {
  static const std::set<std::string> kNames = {"CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES",
                                               "HIP_VISIBLE_DEVICES",  "GPU_DEVICE_ORDINAL",     "PWD",
                                               "OLDPWD",               "SHLVL",                  "_"};
  if (kNames.count(name)) return true;
  for (const char* p : {"TY_", "SLURM_", "SSH_"}) {
    if (name.rfind(p, 0) == 0) return true;
  }
  return false;
}


}  // namespace

// Nodes, GPUs, tasks, CPUs and memory: what several options combine into.
Status SpecBuilder::finish_gpus(uint32_t tasks_per_node) {
  auto& spec = request_.spec;
  if (gpus_total_) {
    if (gpus_total_->count % spec.nodes != 0) {
      return Status::invalid("--gpus " + std::to_string(gpus_total_->count) + " cannot be split evenly over " +
                             std::to_string(spec.nodes) + " nodes; use --gpus-per-node");
    }
    spec.gpus_per_node = gpus_total_->count / spec.nodes;
    if (!gpus_total_->type.empty()) spec.gpu_type = gpus_total_->type;
  }
  if (gpus_per_task_) {
    if (gpus_total_) return Status::invalid("--gpus-per-task and --gpus ask for GPUs twice; give one of them");
    uint64_t per_node = uint64_t{gpus_per_task_->count} * tasks_per_node;
    if (per_node > 64) {
      return Status::invalid("--gpus-per-task " + std::to_string(gpus_per_task_->count) + " times " +
                             std::to_string(tasks_per_node) + " tasks per node is " + std::to_string(per_node) +
                             " GPUs on a node (at most 64)");
    }
    spec.gpus_per_node = static_cast<uint32_t>(per_node);
    if (!gpus_per_task_->type.empty()) spec.gpu_type = gpus_per_task_->type;
  }
  return Status::success();
}

Status SpecBuilder::finish_cpus_and_memory(uint32_t tasks_per_node) {
  auto& spec = request_.spec;
  if (cpus_per_gpu_ && cpus_per_task_) {
    return Status::invalid("--cpus-per-gpu and --cpus-per-task size the CPUs twice; give one of them");
  }
  // CPUs per node, checked: a product past 32 bits would wrap to a small ask.
  auto set_cpus = [&spec](uint64_t cpus, const char* how) -> Status {
    if (cpus > std::numeric_limits<uint32_t>::max()) {
      return Status::invalid(std::string(how) + " comes to " + std::to_string(cpus) + " CPUs on a node, too many");
    }
    spec.cpus = static_cast<uint32_t>(cpus);
    return Status::success();
  };
  if (cpus_per_task_ || tasks_per_node_ || ntasks_) {
    if (auto s = set_cpus(uint64_t{cpus_per_task_.value_or(1)} * tasks_per_node, "--cpus-per-task times the tasks");
        !s) {
      return s;
    }
  }
  if (cpus_per_gpu_) {
    if (spec.gpus_per_node == 0) return Status::invalid("--cpus-per-gpu needs GPUs (--gres, --gpus or --gpus-per-node)");
    if (auto s = set_cpus(uint64_t{*cpus_per_gpu_} * spec.gpus_per_node, "--cpus-per-gpu times the GPUs"); !s) return s;
  }
  if (mem_per_cpu_mb_) spec.memory_mb = *mem_per_cpu_mb_ * std::max<uint32_t>(1, spec.cpus);
  if (mem_per_gpu_mb_) {
    if (spec.gpus_per_node == 0) return Status::invalid("--mem-per-gpu needs GPUs (--gres, --gpus or --gpus-per-node)");
    spec.memory_mb = *mem_per_gpu_mb_ * spec.gpus_per_node;
  }
  return Status::success();
}

// Directories, log paths, the user, the name and whom notifications go to.
void SpecBuilder::finish_defaults() {
  auto& spec = request_.spec;
  if (spec.workdir.empty()) spec.workdir = ctx_.cwd;
  if (spec.submit_dir.empty()) spec.submit_dir = ctx_.cwd;
  if (spec.submit_host.empty()) spec.submit_host = ctx_.host;
  // sbatch's default log, in the work dir: the agent fills in the ids.
  if (batch_script_ && spec.stdout_path.empty()) {
    spec.stdout_path = spec.array.empty() ? "slurm-%j.out" : "slurm-%A_%a.out";
  }
  spec.stdout_path = absolute(spec.workdir, spec.stdout_path);
  spec.stderr_path = absolute(spec.workdir, spec.stderr_path);
  // As sbatch: with --output alone, stderr goes to the same file.
  if (spec.stderr_path.empty()) spec.stderr_path = spec.stdout_path;
  if (spec.user.empty()) spec.user = ctx_.user;
  // Notifications: --notify alone means on END and FAIL; --mail-type alone
  // goes to the submitting user, as sbatch's.
  if (notify_default_ && spec.notify_on == fb::NotifyOn::NONE) spec.notify_on = fb::NotifyOn::End | fb::NotifyOn::Fail;
  if (spec.notify_on != fb::NotifyOn::NONE && spec.notify.empty()) spec.notify.push_back(spec.user);
  if (spec.name.empty() && !spec.command.empty()) {
    spec.name = default_name_.empty() ? basename_of(spec.command.front()) : default_name_;
  }
}

// The environment: what --export passes on, then the spec's own entries
// (--env, the spec file) over it.
Status SpecBuilder::finish_environment() {
  auto& spec = request_.spec;
  std::string exp = export_.value_or(default_export_);
  std::map<std::string, std::string> env;
  auto upper = [](std::string t) {
    for (auto& c : t) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return t;
  };
  if (upper(exp) != "NONE" && upper(exp) != "NIL") {
    size_t start = 0;
    while (start <= exp.size()) {
      auto comma = exp.find(',', start);
      auto item = exp.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      start = comma == std::string::npos ? exp.size() + 1 : comma + 1;
      if (item.empty()) continue;
      std::string item_upper = upper(item);
      if (item_upper == "ALL") {
        for (auto& [k, v] : ctx_.env) {
          if (!is_local_variable(k)) env[k] = v;
        }
      } else if (item_upper == "NONE" || item_upper == "NIL") {
        continue;
      } else if (auto eq = item.find('='); eq != std::string::npos) {
        if (eq == 0) return Status::invalid("--export item '" + item + "' has no variable name");
        env[item.substr(0, eq)] = item.substr(eq + 1);
      } else if (auto it = ctx_.env.find(item); it != ctx_.env.end()) {
        env[item] = it->second;
      }
    }
  }
  for (auto& kv : spec.env) env[kv->key] = kv->value;
  spec.env.clear();
  for (auto& [k, v] : env) {
    auto kv = std::make_unique<fb::KeyValueT>();
    kv->key = k;
    kv->value = v;
    spec.env.push_back(std::move(kv));
  }
  return Status::success();
}

Result<JobRequest> SpecBuilder::finish() {
  auto& spec = request_.spec;
  if (!spec.nodelist.empty() && !nodes_given_) spec.nodes = static_cast<uint32_t>(spec.nodelist.size());
  if (spec.nodes == 0) spec.nodes = 1;
  uint32_t tasks_per_node = 1;
  if (tasks_per_node_) {
    tasks_per_node = *tasks_per_node_;
  } else if (ntasks_) {
    tasks_per_node = (*ntasks_ + spec.nodes - 1) / spec.nodes;
  }
  if (auto s = finish_gpus(tasks_per_node); !s) return s;
  if (auto s = finish_cpus_and_memory(tasks_per_node); !s) return s;
  if (spec.command.empty()) {
    return Status::invalid("no command to run: give a batch script, a command after the options, --wrap, or a spec file "
                           "with 'command'");
  }
  finish_defaults();
  if (auto s = finish_environment(); !s) return s;
  return std::move(request_);
}

}  // namespace trainyard::client

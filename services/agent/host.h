// What the agent learns from its host: name, CPUs, memory, GPUs (NVML or
// declared in the config), the processes of a run (/proc), and cgroup v2
// limits for runs where the host lets the agent create cgroups.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "util/config.h"
#include "util/status.h"

namespace trainyard::agent {

struct HostGpu {
  uint32_t index = 0;
  std::string type;
  uint64_t memory_mb = 0;
  std::string uuid;
};

std::string host_name();
uint32_t host_cpus();
uint64_t host_memory_mb();

// agent.gpus = [{type = "A100", memory_gb = 80, count = 2, uuid = "..."}, ...]:
// indices are given in order. InvalidArgument naming the entry at fault.
Result<std::vector<HostGpu>> declared_gpus(const Config& config);

// CPU time (ns) and resident memory (bytes) of a run, from its cgroup when
// it has one, else from /proc summed over its process group.
struct RunResources {
  uint64_t cpu_ns = 0;
  uint64_t rss_bytes = 0;
  int processes = 0;
};
RunResources sample_run(int pgid, const std::string& cgroup);

// Creates a cgroup v2 per run under a root the agent may manage.
class Cgroups {
 public:
  // `root`: "auto" (below the agent's own cgroup, on a host whose only
  // hierarchy is cgroup v2), "off", or a directory of a cgroup v2 hierarchy
  // delegated to the agent (a hybrid host's /sys/fs/cgroup/unified/... too:
  // without cpu and memory controllers a run is contained and killed, not
  // limited). A Status saying why not when the host does not allow it.
  static Result<std::unique_ptr<Cgroups>> open(const std::string& root);
  // The path of a new cgroup for a run with its limits (0: none), or a
  // Status saying why there is none.
  Result<std::string> create(const std::string& name, uint32_t cpus, uint64_t memory_mb);
  // Kills what is left in it and removes it (best effort).
  static void remove(const std::string& path);
  const std::string& root() const { return root_; }
  // What the runs get: "cpu and memory limits", or containment only.
  std::string limits() const;

 private:
  std::string root_;
  bool cpu_ = false;     // the cpu controller is enabled for the runs
  bool memory_ = false;  // the memory controller is enabled for the runs
};

}  // namespace trainyard::agent

#include "sim/cloud_jobs.h"

#include <algorithm>

namespace trainyard::scheduler::sim {

std::vector<CloudWaiting> waiting_for_cloud(const Scheduler& core, JobId* first_live) {
  std::vector<CloudWaiting> out;
  bool ended_so_far = true;
  core.for_each_job(*first_live, [&](const Job& j) {
    if (j.terminal()) {
      if (ended_so_far) *first_live = j.id + 1;
      return true;
    }
    ended_so_far = false;
    if (j.state != JobState::Pending) return true;
    // As the broker's shell reads a reason (cloud_shell.cc): waiting for room.
    std::string reason = core.reason_of(j);
    CloudWaiting w;
    w.id = j.id;
    w.account = j.spec ? j.spec->account : std::string();
    w.gpu_type = j.spec ? j.spec->gpu_type : std::string();
    w.gpus_per_node = j.shape.gpus;
    w.nodes = std::max<uint32_t>(1, j.shape.nodes);
    w.submit_ns = j.submit_time_ns;
    w.expected_start_ns = j.expected_start_ns;
    w.time_limit_s = j.spec ? static_cast<int64_t>(j.spec->time_limit_s) : 0;
    w.waits_for_resources = reason.rfind("Resources", 0) == 0 || reason.rfind("Priority", 0) == 0;
    out.push_back(std::move(w));
    return true;
  });
  return out;
}

fb::NodeInfoT cloud_node_info(const CloudNodeShape& shape) {
  fb::NodeInfoT n;
  n.name = shape.name;
  for (uint32_t k = 0; k < shape.gpus; ++k) {
    auto gpu = std::make_unique<fb::GpuInfoT>();
    gpu->index = k;
    gpu->type = shape.gpu_type;
    gpu->memory_mb = 80'000;
    n.gpus.push_back(std::move(gpu));
  }
  n.cpus = shape.gpus * 16;
  n.memory_mb = shape.gpus * 128'000ull;
  n.simulated = true;
  return n;
}

}  // namespace trainyard::scheduler::sim

// Job traces for the simulator: CSV rows `job_id,submit_time_s,num_gpus,
// duration_s,user,gpu_type` (a header line is optional; gpu_type "" or
// "any" takes any type), and node lists like `64x8:V100,32x8:A100`.
#pragma once

#include <cstdint>
#include <istream>
#include <string>
#include <vector>

#include "util/status.h"

namespace trainyard::scheduler::sim {

struct TraceJob {
  std::string id;
  double submit_s = 0;
  uint32_t gpus = 0;
  double duration_s = 0;
  std::string user;
  std::string gpu_type;  // empty: any
};

// Errors name the line and the column.
Result<std::vector<TraceJob>> parse_trace(std::istream& in, const std::string& source = "trace");
Result<std::vector<TraceJob>> read_trace(const std::string& path);

struct NodeGroup {
  uint32_t count = 0;
  uint32_t gpus = 0;
  std::string type;
};

// "64x8:V100,32x8:A100" (the type may be left out: "4x8").
Result<std::vector<NodeGroup>> parse_nodes(const std::string& text);

}  // namespace trainyard::scheduler::sim

// The gateway's JSON job-spec body (POST /api/v1/jobs): any bytes as a body.
#include <nlohmann/json.hpp>

#include "core/job_spec_json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto j = nlohmann::json::parse(data, data + size, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return 0;
  trainyard::fb::JobSpecT spec;
  (void)trainyard::gateway::parse_job_spec(j, "alice", false, &spec);
  return 0;
}

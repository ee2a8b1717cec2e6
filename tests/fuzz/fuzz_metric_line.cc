// The agent's parser of the lines a job appends to TY_METRICS_FILE.
#include <cmath>
#include <cstdlib>

#include "core/metric_line.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto line = trainyard::agent::parse_metric_line({reinterpret_cast<const char*>(data), size});
  if (line.bad == trainyard::agent::BadLine::kNone) {
    for (const auto& [name, value] : line.values)
      if (!std::isfinite(value)) std::abort();  // NaN and Inf are refused
  }
  return 0;
}

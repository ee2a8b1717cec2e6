// Job arrays as Slurm writes them: "0-99%8", "1,3,5", "0-15:4", "1-5,10%2".
// One job per index; "%N" caps how many of them hold resources at once.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace trainyard::scheduler {

struct ArraySpec {
  std::vector<int32_t> indices;  // ascending, no duplicates
  uint32_t max_running = 0;      // 0: no cap
};

// Parses `text`; errors name the field "array" and say what was expected.
Result<ArraySpec> parse_array(std::string_view text, uint32_t max_size);

}  // namespace trainyard::scheduler

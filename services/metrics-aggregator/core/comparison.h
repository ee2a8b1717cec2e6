// Comparing runs: each run's final and best value of one metric, ranked best
// first, with the run's name and labels (its parameters) beside it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/rows.h"

namespace trainyard::metrics {

// What the aggregator keeps of a job from job.submitted (and metric.batch).
struct RunInfo {
  std::string name;
  std::string experiment;
  std::vector<std::pair<std::string, std::string>> labels;
  std::string user;     // whose run: who may read its metrics (empty in records of older versions)
  std::string account;
};

std::string encode_run_info(const RunInfo& r);
std::optional<RunInfo> decode_run_info(std::string_view s);

struct RunResult {
  uint64_t job_id = 0;
  std::string name;
  double final_value = 0;
  int64_t final_step = 0;
  double best_value = 0;
  int64_t best_step = 0;
  std::vector<std::pair<std::string, std::string>> labels;
};

// One run's row from its series summary: final = value at the last step,
// best = max (maximize) or min over every point.
RunResult run_result(uint64_t job_id, const Summary& s, bool maximize, const RunInfo* info);

// Best first (highest when maximize, else lowest); ties go to the run that
// got there at an earlier step, then to the lower job id.
void rank_runs(std::vector<RunResult>& rows, bool maximize);

}  // namespace trainyard::metrics

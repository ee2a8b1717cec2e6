// The feeder's plan format, shared by trainyard-metrics-feeder, the tests
// that check what it published, and the benchmarks.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace trainyard::testing_feeder {

// The value of metric number `m` of a plan series at `step`.
inline double metric_value(const nlohmann::json& series, size_t m, int64_t step) {
  double base = series.value("base", 0.0), slope = series.value("slope", 0.0);
  double amp = series.value("amp", 0.0), freq = series.value("freq", 0.0);
  double s = static_cast<double>(step);
  return base + static_cast<double>(m) + slope * s + amp * std::sin(freq * s);
}

// The steps of a plan series: first_step, first_step + stride, ...
inline int64_t step_at(const nlohmann::json& series, uint64_t i) {
  return series.value("first_step", int64_t{0}) + static_cast<int64_t>(i) * series.value("stride", int64_t{1});
}

// One metric.batch event: steps [first, first + count) of a series (every
// metric of the series at each step).
struct BatchPlan {
  size_t series = 0;
  uint64_t first = 0;
  uint64_t count = 0;
};

inline std::vector<BatchPlan> plan_batches(const nlohmann::json& plan, uint32_t points_per_batch) {
  std::vector<BatchPlan> out;
  auto series = plan.value("series", nlohmann::json::array());
  for (size_t i = 0; i < series.size(); ++i) {
    uint64_t steps = series[i].value("steps", uint64_t{0});
    uint64_t metrics = std::max<uint64_t>(1, series[i].value("metrics", nlohmann::json::array()).size());
    uint64_t per = std::max<uint64_t>(1, points_per_batch / metrics);
    for (uint64_t first = 0; first < steps; first += per) out.push_back({i, first, std::min(per, steps - first)});
  }
  return out;
}

}  // namespace trainyard::testing_feeder

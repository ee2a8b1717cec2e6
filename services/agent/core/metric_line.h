// The metrics line format a training script appends to $TY_METRICS_FILE:
// one flat JSON object per line, {"step": 100, "loss": 0.31, "time": 12.5}.
// Pure: parses one line into points or says which kind of bad line it is.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace trainyard::agent {

// Why a line was skipped. Each kind is warned about once per run.
enum class BadLine : uint8_t {
  kNone = 0,
  kNotJson,     // not a JSON object (or trailing garbage)
  kNoStep,      // "step" missing, or not an integer
  kNotNumber,   // a value that is a string, bool, null, array or object
  kNotFinite,   // NaN, Infinity or a number too large for a double
  kTooLong,     // longer than kMaxMetricLineBytes
};
inline constexpr int kBadLineKinds = 6;

// Lines longer than this are skipped whole (a script that prints a tensor).
inline constexpr size_t kMaxMetricLineBytes = 1u << 20;

// "not JSON", "no integer step"... for the warning written to the job's log.
const char* describe(BadLine kind);

struct MetricLine {
  BadLine bad = BadLine::kNone;
  int64_t step = 0;
  bool has_time = false;
  double time_s = 0;                                     // the line's "time", seconds
  std::vector<std::pair<std::string, double>> values;    // in line order, "step"/"time" excluded
};

// Parses one line (without its newline). An empty or all-blank line gives
// a MetricLine with no values and bad == kNone: it is simply ignored.
MetricLine parse_metric_line(std::string_view line);

}  // namespace trainyard::agent

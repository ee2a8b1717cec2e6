// How ty shows things: aligned tables, durations, times, money and a
// terminal line plot. State names (job/job_state.h) and the JSON form of
// records (records/record_json.h, what --json prints) are the gateway's too.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "job/job_state.h"
#include "records/record_json.h"
#include "trainyard/fb/rpc_generated.h"

namespace trainyard::ty {

// A table with a header row; columns are padded to their widest cell.
class Table {
 public:
  explicit Table(std::vector<std::string> header) : rows_{std::move(header)} {}
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  size_t size() const { return rows_.size() - 1; }
  std::string render() const;

 private:
  std::vector<std::vector<std::string>> rows_;
};

// Seconds as Slurm shows them: "45:07", "3:04:05", "2-03:04:05".
std::string format_duration(int64_t seconds);
// Unix nanoseconds as local "2026-11-03 14:05:09"; "-" for 0.
std::string format_time(int64_t ns);
// Micro-units as "12.345678" trimmed to at least 2 decimals ("12.30").
std::string format_money(int64_t micros);
// "12.5" / "500" -> micro-units; false when it is not a plain amount.
bool parse_money(const std::string& text, int64_t* micros);
// Milliseconds of a resource as hours with 2 decimals.
std::string format_hours(uint64_t ms);
// A number for a table: compact, up to 6 significant digits.
std::string format_number(double v);
// "YYYY-MM-DD" or "YYYY-MM-DDTHH:MM[:SS]" (UTC) -> Unix nanoseconds.
bool parse_date(const std::string& text, int64_t* ns);
// A point in time as --since and --until take it: "now", an age before
// `now_ns` ("90s", "30m", "12h", "7d", "2w") or a date (parse_date).
bool parse_time_or_age(const std::string& text, int64_t now_ns, int64_t* ns);

// A state from what a user typed ("timed_out", "TIMED-OUT", "TimedOut"):
// trainyard::parse_state (job/job_state.h); false when it is none.
bool parse_state(const std::string& text, fb::JobState* out);

// A line plot of (step, value) points in `width` x `height` characters
// (plus axis labels), for `ty metrics JOB --metric NAME`.
std::string render_plot(const std::vector<int64_t>& steps, const std::vector<double>& values, int width, int height);

// What --json prints: records/record_json.h, the REST API's JSON.
nlohmann::json to_json(const fb::JobRecordT& job);   // the full record (spec, history)
nlohmann::json to_json(const fb::NodeStatusT& node);

}  // namespace trainyard::ty

// What the metrics-aggregator stores for a series: the aggregate of a block
// of steps (a rollup row), the series summary, and their byte encodings.
// Rollup level L groups steps into blocks of 16^L; levels 1..kLevels.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

namespace trainyard::metrics {

// Rollup levels. A 16x ladder (16, 256, 4096... steps per block) keeps the
// rows a query reads within 16x its bucket count whatever the series' span;
// a 64x ladder would read 4x more rows for one level fewer to write.
inline constexpr int kLevels = 6;
inline constexpr int kLevelBits = 4;

// The block holding `step` at `level` (floor division: arithmetic shift).
inline int64_t block_of(int64_t step, int level) { return step >> (kLevelBits * level); }
inline int64_t block_first_step(int64_t block, int level) { return block * (int64_t{1} << (kLevelBits * level)); }
inline int64_t block_last_step(int64_t block, int level) {
  return block_first_step(block, level) + ((int64_t{1} << (kLevelBits * level)) - 1);
}
inline int64_t level_width(int level) { return int64_t{1} << (kLevelBits * level); }

struct Point {
  int64_t step = 0;
  double value = 0;
};

// Count, first/last by step, min/max by value (the earliest step on ties)
// and the newest wall time of a set of points.
struct Aggregate {
  uint64_t count = 0;
  Point first;
  Point last;
  Point min;
  Point max;
  int64_t newest_time_ns = std::numeric_limits<int64_t>::min();

  bool empty() const { return count == 0; }
  // A point not yet counted.
  void add(int64_t step, double value, int64_t time_ns);
  // A new value for a step already counted: first/last follow it; min/max
  // only widen (the old value was reported too, and a rescan is not worth it).
  void overwrite(int64_t step, double value, int64_t time_ns);
  // Folds another disjoint aggregate in.
  void merge(const Aggregate& other);
};

// The per-series row: its aggregate plus the step below which raw points
// were dropped by retention (only rollups remain there).
struct Summary {
  Aggregate all;
  int64_t raw_from = std::numeric_limits<int64_t>::min();
};

std::string encode_aggregate(const Aggregate& a);
std::optional<Aggregate> decode_aggregate(std::string_view s);
std::string encode_summary(const Summary& s);
std::optional<Summary> decode_summary(std::string_view s);

// A raw point row's value: the value then the wall time.
std::string encode_point(double value, int64_t time_ns);
void encode_point_into(std::string& out, double value, int64_t time_ns);
std::optional<std::pair<double, int64_t>> decode_point(std::string_view s);

// Row keys (storage/keys.h, big-endian): a series is (job, name); a raw
// point is series + step; a rollup row is series + level + block.
std::string series_key(uint64_t job, std::string_view name);
std::string point_key(std::string_view series, int64_t step);
std::string rollup_key(std::string_view series, int level, int64_t block);
// Reads (job, name) back from a series key; false if malformed.
bool parse_series_key(std::string_view key, uint64_t* job, std::string_view* name);

}  // namespace trainyard::metrics

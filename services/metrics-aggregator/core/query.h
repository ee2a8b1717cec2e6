// Series queries: a range of steps downsampled to at most N points keeping
// each bucket's min and max, read from the coarsest rollup level whose blocks
// fit in a bucket, so a query reads O(N) rows whatever the series' length.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "core/rows.h"

namespace trainyard::metrics {

// Where a query reads one series' rows from (the shell: RocksDB iterators;
// tests: maps). Both calls may run concurrently from several threads.
class SeriesRows {
 public:
  virtual ~SeriesRows() = default;
  // Raw points with lo <= step <= hi, in step order.
  virtual void points(int64_t lo, int64_t hi, const std::function<void(const Point&)>& fn) const = 0;
  // Rollup rows of `level` with block in [b_lo, b_hi], in block order.
  virtual void blocks(int level, int64_t b_lo, int64_t b_hi, const std::function<void(const Aggregate&)>& fn) const = 0;
};

// Per-bucket min and max of points; buckets are `width` steps wide from
// `origin`. Rollup blocks never straddle a bucket (the query aligns them), so
// a block's min and max are its bucket's candidates.
class Downsampler {
 public:
  Downsampler(int64_t origin, int64_t width, size_t buckets);
  void add_point(const Point& p);
  void add_block(const Aggregate& a);
  // Folds in another downsampler of the same buckets.
  void merge(const Downsampler& other);
  uint64_t count() const { return count_; }
  // Each bucket's min and max, in step order (one point when they coincide).
  std::vector<Point> finish() const;

 private:
  struct Bucket {
    Point min;
    Point max;
    bool any = false;
  };
  void candidate(const Point& p);
  int64_t origin_;
  int64_t width_;
  std::vector<Bucket> buckets_;
  uint64_t count_ = 0;
};

struct SeriesQuery {
  int64_t from = INT64_MIN;
  int64_t to = INT64_MAX;
  uint32_t max_points = 1000;  // at least 2
};

struct SeriesAnswer {
  std::vector<Point> points;  // in step order
  uint64_t total_points = 0;  // points of the series in [from, to]
  bool downsampled = false;
  int level = 0;              // rollup level read (0: raw points)
  uint64_t rows_read = 0;
  int64_t bucket_origin = 0;  // the bucket layout, when downsampled
  int64_t bucket_width = 1;
};

// Answers `q` for the series summarised by `summary`. Scans of many blocks
// are split across oneTBB tasks when `parallel`.
SeriesAnswer query_series(const Summary& summary, const SeriesRows& rows, const SeriesQuery& q, bool parallel = true);

}  // namespace trainyard::metrics

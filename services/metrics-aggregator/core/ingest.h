// Ingest: folds reported points into each series' summary and rollup blocks
// in memory, and says which raw points to write. The shell writes the rows
// that flush() hands it into the same WriteBatch as the points, so a series,
// its rollups and its points are always committed together.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/rows.h"

namespace trainyard::metrics {

// What ingest needs to read of the committed state (the shell: RocksDB).
class CommittedRows {
 public:
  virtual ~CommittedRows() = default;
  virtual std::optional<Summary> summary(std::string_view series) = 0;
  virtual std::optional<Aggregate> block(std::string_view series, int level, int64_t block) = 0;
  // The committed value of a raw point, if it exists.
  virtual std::optional<double> point(std::string_view series, int64_t step) = 0;
};

enum class PointOutcome {
  kNew,        // counted; write the raw point
  kOverwrite,  // the step existed with another value; write the raw point, count unchanged
  kDuplicate,  // same step, same value: already stored (a replayed report)
  kLate,       // below the series' retention watermark: only rollups exist there; dropped
  kInvalid,    // NaN or infinite
};

class SeriesWriter {
 public:
  // Keeps at most about `max_cached_series` series in memory between flushes.
  explicit SeriesWriter(CommittedRows& committed, size_t max_cached_series = 100'000);

  struct Series;
  // The series (job, name), loaded on first use. Valid until flush().
  Series& open(uint64_t job, std::string_view name);
  // The series' key prefix (core/rows.h series_key).
  static const std::string& key(const Series& s);

  // Applies one point of `s`. The caller writes the raw point for kNew and
  // kOverwrite (point_key(key(s), step)).
  PointOutcome add(Series& s, int64_t step, double value, int64_t time_ns);

  // The series' summary as ingest sees it (committed plus not yet flushed).
  const Summary& summary(std::string_view series_key);
  // Moves the retention watermark of a series (raw points below `step` dropped).
  void set_raw_from(std::string_view series_key, int64_t step);

  using SummarySink = std::function<void(const std::string& series, const Summary&)>;
  using BlockSink = std::function<void(const std::string& series, int level, int64_t block, const Aggregate&)>;
  // Hands every summary and block changed since the last flush to the sinks,
  // then forgets what only this batch needed. Returns how many series were
  // created since the last flush.
  uint64_t flush(const SummarySink& on_summary, const BlockSink& on_block);

  size_t cached_series() const { return series_.size(); }

 private:
  Aggregate& block(Series& s, int level, int64_t b);
  Series& load(std::string key);

  CommittedRows& committed_;
  size_t max_cached_series_;
  std::unordered_map<std::string, Series> series_;
  std::vector<Series*> dirty_;
  uint64_t created_ = 0;
};

struct SeriesWriter::Series {
  struct OpenBlock {
    int64_t block = 0;
    Aggregate agg;
    bool valid = false;
    bool dirty = false;
  };
  std::string key;
  Summary summary;
  bool dirty = false;
  // The highest step committed before this batch (none if !committed_any).
  int64_t committed_max_step = 0;
  bool committed_any = false;
  // Points changed in this batch, sorted by step (duplicate detection).
  std::vector<Point> written;
  // Per level: the block appends go to, kept across batches.
  OpenBlock open[kLevels];
  // Other blocks changed in this batch (out-of-order points).
  std::map<std::pair<int, int64_t>, Aggregate> touched;
};

}  // namespace trainyard::metrics

// Retention: raw points older than metrics.raw_retention_s are dropped,
// series by series in bounded passes, once their rollups hold them.
#include <algorithm>

#include <spdlog/spdlog.h>

#include "shell.h"
#include "store_rows.h"

namespace trainyard::metrics {

void AggregatorShell::retention_pass() {
  retention_due_ = false;
  int64_t cutoff = clock_.now_ns() - options_.raw_retention_s * 1'000'000'000;
  auto& batch = runtime_.batch();
  size_t visited = 0;
  bool finished = true;
  std::vector<std::string> keys;
  read_or_abort(store_.scan(series_, retention_resume_, "", [&](std::string_view k, std::string_view) {
    if (visited++ >= options_.retention_series_per_pass) {
      retention_resume_ = std::string(k);
      finished = false;
      return false;
    }
    keys.emplace_back(k);
    return true;
  }));
  if (finished) retention_resume_.clear();
  uint64_t dropped = 0;
  for (auto& key : keys) {
    const Summary sum = writer_.summary(key);
    if (sum.all.count == 0) continue;
    // The block appends still go to keeps its raw points.
    int64_t last_block = block_of(sum.all.last.step, 1);
    int64_t from_block = block_of(std::max(sum.raw_from, sum.all.first.step), 1);
    if (from_block >= last_block) continue;
    int64_t new_from_block = from_block;
    uint64_t n = 0;
    StoreSeriesRows rows(store_, points_, rollups_, key);
    bool stop = false;
    rows.blocks(1, from_block, last_block - 1, [&](const Aggregate& a) {
      if (stop) return;
      if (a.newest_time_ns >= cutoff) {
        stop = true;
        return;
      }
      new_from_block = block_of(a.first.step, 1) + 1;
      n += a.count;
    });
    read_or_abort(rows.status());  // dropping points past a block that failed to read would lose them
    if (new_from_block <= from_block) continue;
    int64_t new_raw_from = block_first_step(new_from_block, 1);
    int64_t old_lo = sum.raw_from == INT64_MIN ? INT64_MIN : sum.raw_from;
    batch.del_range(points_, point_key(key, old_lo), point_key(key, new_raw_from));
    writer_.set_raw_from(key, new_raw_from);
    dropped += n;
  }
  if (dropped > 0) {
    stats_.raw_points_dropped += dropped;
    spdlog::info("retention: dropped about {} raw points older than {} s (their rollups remain)", dropped,
                 options_.raw_retention_s);
  }
  if (!finished) retention_due_ = true;  // carry on after the next commit
}

}  // namespace trainyard::metrics

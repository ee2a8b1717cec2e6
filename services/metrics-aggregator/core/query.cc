#include "core/query.h"

#include <algorithm>
#include <atomic>

#include <tbb/parallel_for.h>

namespace trainyard::metrics {

namespace {

// Rows per oneTBB task when a middle range is scanned in parallel, and the
// most tasks one scan is split into.
constexpr int64_t kBlocksPerTask = 2048;
constexpr int64_t kMaxTasks = 32;

bool lower(const Point& a, const Point& b) { return a.value < b.value || (a.value == b.value && a.step < b.step); }
bool higher(const Point& a, const Point& b) { return a.value > b.value || (a.value == b.value && a.step < b.step); }

// floor(a / b) in 128 bits: a step minus an origin may not fit in int64
// (a query from INT64_MIN).
__int128 floor_div(__int128 a, __int128 b) {
  __int128 q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

class Collector {
 public:
  Collector(const Summary& summary, const SeriesRows& rows, bool parallel)
      : raw_from_(summary.raw_from), count_(summary.all.count), rows_(rows), parallel_(parallel) {}

  // Adds every point in [lo, hi] to `ds`, reading rows of `level` where whole
  // blocks lie inside the range and finer ones at its two edges.
  void collect(int level, int64_t lo, int64_t hi, Downsampler& ds) {
    if (lo > hi) return;
    if (level == 0) {
      if (hi < raw_from_) {
        retained(lo, hi, ds);
        return;
      }
      if (lo < raw_from_) {
        retained(lo, raw_from_ - 1, ds);
        lo = raw_from_;
      }
      rows_.points(lo, hi, [&](const Point& p) {
        ++rows_read_;
        ds.add_point(p);
      });
      return;
    }
    int64_t b_lo = block_of(lo, level);
    if (block_first_step(b_lo, level) < lo) ++b_lo;
    int64_t b_hi = block_of(hi, level);
    if (block_last_step(b_hi, level) > hi) --b_hi;
    if (b_lo > b_hi) {
      collect(level - 1, lo, hi, ds);
      return;
    }
    if (block_first_step(b_lo, level) > lo) collect(level - 1, lo, block_first_step(b_lo, level) - 1, ds);
    middle(level, b_lo, b_hi, ds);
    if (block_last_step(b_hi, level) < hi) collect(level - 1, block_last_step(b_hi, level) + 1, hi, ds);
  }

  uint64_t rows_read() const { return rows_read_; }

 private:
  void middle(int level, int64_t b_lo, int64_t b_hi, Downsampler& ds) {
    int64_t n = b_hi - b_lo + 1;
    // Rows present: at most one per block and one per point.
    uint64_t rows = std::min<uint64_t>(static_cast<uint64_t>(n), count_);
    if (!parallel_ || rows <= 2 * kBlocksPerTask) {
      rows_.blocks(level, b_lo, b_hi, [&](const Aggregate& a) {
        ++rows_read_;
        ds.add_block(a);
      });
      return;
    }
    int64_t tasks = std::min<int64_t>(kMaxTasks, static_cast<int64_t>(rows / kBlocksPerTask));
    int64_t chunk = n / tasks + (n % tasks != 0 ? 1 : 0);
    // Each task fills an empty copy of the bucket layout; merged in order.
    std::vector<Downsampler> parts(static_cast<size_t>(tasks), blank_);
    std::atomic<uint64_t> read{0};
    tbb::parallel_for(int64_t{0}, tasks, [&](int64_t i) {
      int64_t lo = b_lo + i * chunk;
      if (lo > b_hi) return;
      int64_t hi = b_hi - lo < chunk ? b_hi : lo + chunk - 1;
      Downsampler& part = parts[static_cast<size_t>(i)];
      uint64_t local = 0;
      rows_.blocks(level, lo, hi, [&](const Aggregate& a) {
        ++local;
        part.add_block(a);
      });
      read += local;
    });
    for (auto& p : parts) ds.merge(p);
    rows_read_ += read.load();
  }

  // Below the retention watermark only level-1 rollups remain: use their
  // min and max where they fall inside the range.
  void retained(int64_t lo, int64_t hi, Downsampler& ds) {
    rows_.blocks(1, block_of(lo, 1), block_of(hi, 1), [&](const Aggregate& a) {
      ++rows_read_;
      if (a.first.step >= lo && a.last.step <= hi) {
        ds.add_block(a);
        return;
      }
      for (const Point& p : {a.min, a.max}) {
        if (p.step >= lo && p.step <= hi) ds.add_point(p);
      }
    });
  }

 public:
  Downsampler blank_{0, 1, 0};

 private:
  int64_t raw_from_;
  uint64_t count_;
  const SeriesRows& rows_;
  bool parallel_;
  uint64_t rows_read_ = 0;
};

}  // namespace

Downsampler::Downsampler(int64_t origin, int64_t width, size_t buckets)
    : origin_(origin), width_(width), buckets_(buckets) {}

void Downsampler::candidate(const Point& p) {
  if (buckets_.empty()) return;
  __int128 q = floor_div(static_cast<__int128>(p.step) - origin_, width_);
  auto i = static_cast<int64_t>(std::clamp<__int128>(q, 0, static_cast<__int128>(buckets_.size()) - 1));
  auto& b = buckets_[static_cast<size_t>(i)];
  if (!b.any) {
    b.min = b.max = p;
    b.any = true;
    return;
  }
  if (lower(p, b.min)) b.min = p;
  if (higher(p, b.max)) b.max = p;
}

void Downsampler::add_point(const Point& p) {
  ++count_;
  candidate(p);
}

void Downsampler::add_block(const Aggregate& a) {
  if (a.count == 0) return;
  count_ += a.count;
  candidate(a.min);
  candidate(a.max);
}

void Downsampler::merge(const Downsampler& o) {
  count_ += o.count_;
  for (size_t i = 0; i < o.buckets_.size() && i < buckets_.size(); ++i) {
    if (!o.buckets_[i].any) continue;
    candidate(o.buckets_[i].min);
    candidate(o.buckets_[i].max);
  }
}

std::vector<Point> Downsampler::finish() const {
  std::vector<Point> out;
  out.reserve(buckets_.size() * 2);
  for (auto& b : buckets_) {
    if (!b.any) continue;
    if (b.min.step == b.max.step) {
      out.push_back(b.min);
    } else if (b.min.step < b.max.step) {
      out.push_back(b.min);
      out.push_back(b.max);
    } else {
      out.push_back(b.max);
      out.push_back(b.min);
    }
  }
  return out;
}

SeriesAnswer query_series(const Summary& summary, const SeriesRows& rows, const SeriesQuery& q, bool parallel) {
  SeriesAnswer ans;
  if (summary.all.count == 0) return ans;
  int64_t lo = std::max(q.from, summary.all.first.step);
  int64_t hi = std::min(q.to, summary.all.last.step);
  if (lo > hi) return ans;
  uint32_t max_points = std::max<uint32_t>(q.max_points, 2);
  uint64_t buckets_wanted = max_points / 2;

  // The coarsest level whose blocks fit in a bucket of the plain layout.
  unsigned __int128 span = static_cast<unsigned __int128>(static_cast<__int128>(hi) - lo + 1);
  unsigned __int128 raw_width = (span + buckets_wanted - 1) / buckets_wanted;
  int level = 0;
  while (level < kLevels && static_cast<unsigned __int128>(level_width(level + 1)) <= raw_width) ++level;
  int64_t w = level_width(level);
  // Buckets aligned to that level's blocks, a whole number of blocks wide,
  // so every block lies in exactly one bucket and per-bucket min/max are exact.
  int64_t origin = block_first_step(block_of(lo, level), level);
  unsigned __int128 aligned_span = static_cast<unsigned __int128>(static_cast<__int128>(hi) - origin + 1);
  unsigned __int128 bw = (aligned_span + buckets_wanted - 1) / buckets_wanted;
  bw = (bw + w - 1) / w * w;
  size_t buckets = static_cast<size_t>((aligned_span + bw - 1) / bw);
  int64_t width = bw > static_cast<unsigned __int128>(INT64_MAX) ? INT64_MAX : static_cast<int64_t>(bw);

  Downsampler ds(origin, width, buckets);
  Collector c(summary, rows, parallel);
  c.blank_ = Downsampler(origin, width, buckets);
  c.collect(level, lo, hi, ds);
  ans.total_points = ds.count();
  ans.level = level;
  ans.bucket_origin = origin;
  ans.bucket_width = width;
  ans.rows_read = c.rows_read();
  if (ans.total_points <= max_points && lo >= summary.raw_from) {
    ans.points.reserve(ans.total_points);
    rows.points(lo, hi, [&](const Point& p) { ans.points.push_back(p); });
    ans.rows_read += ans.points.size();
    return ans;
  }
  ans.points = ds.finish();
  ans.downsampled = true;
  return ans;
}

}  // namespace trainyard::metrics

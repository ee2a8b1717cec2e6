#include "core/ingest.h"

#include <algorithm>
#include <cmath>

namespace trainyard::metrics {

SeriesWriter::SeriesWriter(CommittedRows& committed, size_t max_cached_series)
    : committed_(committed), max_cached_series_(max_cached_series) {}

const std::string& SeriesWriter::key(const Series& s) { return s.key; }

SeriesWriter::Series& SeriesWriter::load(std::string key) {
  auto it = series_.find(key);
  if (it != series_.end()) return it->second;
  Series s;
  s.key = key;
  if (auto sum = committed_.summary(key)) {
    s.summary = *sum;
    s.committed_any = sum->all.count > 0;
    s.committed_max_step = sum->all.last.step;
  }
  return series_.emplace(std::move(key), std::move(s)).first->second;
}

SeriesWriter::Series& SeriesWriter::open(uint64_t job, std::string_view name) {
  return load(series_key(job, name));
}

const Summary& SeriesWriter::summary(std::string_view series_key) { return load(std::string(series_key)).summary; }

void SeriesWriter::set_raw_from(std::string_view series_key, int64_t step) {
  auto& s = load(std::string(series_key));
  if (step <= s.summary.raw_from) return;
  s.summary.raw_from = step;
  if (!s.dirty) {
    s.dirty = true;
    dirty_.push_back(&s);
  }
}

Aggregate& SeriesWriter::block(Series& s, int level, int64_t b) {
  auto& o = s.open[level - 1];
  if (o.valid && o.block == b) {
    o.dirty = true;
    return o.agg;
  }
  auto it = s.touched.find({level, b});
  if (it != s.touched.end()) return it->second;
  Aggregate loaded = committed_.block(s.key, level, b).value_or(Aggregate{});
  if (!o.valid || b > o.block) {
    // Appends move forward: the new block becomes the open one.
    if (o.valid && o.dirty) s.touched[{level, o.block}] = o.agg;
    o.block = b;
    o.agg = loaded;
    o.valid = true;
    o.dirty = true;
    return o.agg;
  }
  return s.touched[{level, b}] = loaded;
}

PointOutcome SeriesWriter::add(Series& s, int64_t step, double value, int64_t time_ns) {
  if (!std::isfinite(value)) return PointOutcome::kInvalid;
  auto& sum = s.summary;
  if (step < sum.raw_from) return PointOutcome::kLate;

  bool exists = false;
  double old = 0;
  auto& w = s.written;
  // Steps beyond the highest one seen are new for sure: the common case of
  // a training loop pays no lookup at all.
  bool beyond = sum.all.count == 0 || step > sum.all.last.step;
  std::vector<Point>::iterator at = w.end();
  if (!beyond) {
    if (!w.empty() && step <= w.back().step) {
      at = std::lower_bound(w.begin(), w.end(), step, [](const Point& p, int64_t st) { return p.step < st; });
      if (at != w.end() && at->step == step) {
        exists = true;
        old = at->value;
      }
    }
    if (!exists && s.committed_any && step <= s.committed_max_step) {
      if (auto v = committed_.point(s.key, step)) {
        exists = true;
        old = *v;
      }
    }
  }
  if (exists && old == value) return PointOutcome::kDuplicate;

  if (w.empty() || step > w.back().step) {
    w.push_back(Point{step, value});
  } else {
    if (at == w.end() || at->step != step) {
      at = std::lower_bound(w.begin(), w.end(), step, [](const Point& p, int64_t st) { return p.step < st; });
    }
    if (at != w.end() && at->step == step) {
      at->value = value;
    } else {
      w.insert(at, Point{step, value});
    }
  }

  if (sum.all.count == 0 && !s.committed_any && !s.dirty) ++created_;
  if (!s.dirty) {
    s.dirty = true;
    dirty_.push_back(&s);
  }
  if (exists) {
    sum.all.overwrite(step, value, time_ns);
    for (int level = 1; level <= kLevels; ++level) block(s, level, block_of(step, level)).overwrite(step, value, time_ns);
    return PointOutcome::kOverwrite;
  }
  sum.all.add(step, value, time_ns);
  for (int level = 1; level <= kLevels; ++level) block(s, level, block_of(step, level)).add(step, value, time_ns);
  return PointOutcome::kNew;
}

uint64_t SeriesWriter::flush(const SummarySink& on_summary, const BlockSink& on_block) {
  for (Series* s : dirty_) {
    on_summary(s->key, s->summary);
    for (int level = 1; level <= kLevels; ++level) {
      auto& o = s->open[level - 1];
      if (o.valid && o.dirty) {
        on_block(s->key, level, o.block, o.agg);
        o.dirty = false;
      }
    }
    for (auto& [lb, agg] : s->touched) on_block(s->key, lb.first, lb.second, agg);
    s->touched.clear();
    s->written.clear();
    s->dirty = false;
    s->committed_any = s->summary.all.count > 0;
    s->committed_max_step = s->summary.all.last.step;
  }
  dirty_.clear();
  // Everything is clean now: dropping the cache loses nothing but warmth.
  if (series_.size() > max_cached_series_) series_.clear();
  uint64_t created = created_;
  created_ = 0;
  return created;
}

}  // namespace trainyard::metrics

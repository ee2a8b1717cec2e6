// Unit tests of the metrics-aggregator's pure core: ingest (summaries,
// rollups, idempotence), downsampled queries, run comparison.
#define BOOST_TEST_MODULE metrics_aggregator_core
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <map>
#include <random>
#include <set>
#include <tuple>

#include "core/comparison.h"
#include "core/ingest.h"
#include "core/query.h"
#include "core/rows.h"

using namespace trainyard::metrics;

namespace {

// Committed rows in maps, written by SeriesWriter::flush (the shell's RocksDB
// in miniature).
struct MemRows final : CommittedRows {
  std::map<std::string, Summary> summaries;
  std::map<std::tuple<std::string, int, int64_t>, Aggregate> blocks;
  std::map<std::string, std::map<int64_t, double>> points;

  std::optional<Summary> summary(std::string_view s) override {
    auto it = summaries.find(std::string(s));
    if (it == summaries.end()) return std::nullopt;
    return it->second;
  }
  std::optional<Aggregate> block(std::string_view s, int level, int64_t b) override {
    auto it = blocks.find({std::string(s), level, b});
    if (it == blocks.end()) return std::nullopt;
    return it->second;
  }
  std::optional<double> point(std::string_view s, int64_t step) override {
    auto it = points.find(std::string(s));
    if (it == points.end()) return std::nullopt;
    auto p = it->second.find(step);
    if (p == it->second.end()) return std::nullopt;
    return p->second;
  }
};

struct Harness {
  MemRows rows;
  SeriesWriter writer{rows};
  // Uncommitted raw points of this batch.
  std::vector<std::tuple<std::string, int64_t, double>> pending;

  PointOutcome add(uint64_t job, const std::string& name, int64_t step, double v, int64_t t = 1) {
    auto& s = writer.open(job, name);
    auto o = writer.add(s, step, v, t);
    if (o == PointOutcome::kNew || o == PointOutcome::kOverwrite) pending.emplace_back(SeriesWriter::key(s), step, v);
    return o;
  }
  void commit() {
    for (auto& [k, step, v] : pending) rows.points[k][step] = v;
    pending.clear();
    writer.flush([&](const std::string& k, const Summary& s) { rows.summaries[k] = s; },
                 [&](const std::string& k, int level, int64_t b, const Aggregate& a) { rows.blocks[{k, level, b}] = a; });
  }
  Summary summary(uint64_t job, const std::string& name) { return rows.summaries.at(series_key(job, name)); }
};

class MemSeries final : public SeriesRows {
 public:
  MemSeries(const MemRows& rows, std::string key) : rows_(rows), key_(std::move(key)) {}
  void points(int64_t lo, int64_t hi, const std::function<void(const Point&)>& fn) const override {
    auto it = rows_.points.find(key_);
    if (it == rows_.points.end()) return;
    for (auto p = it->second.lower_bound(lo); p != it->second.end() && p->first <= hi; ++p) fn({p->first, p->second});
  }
  void blocks(int level, int64_t b_lo, int64_t b_hi, const std::function<void(const Aggregate&)>& fn) const override {
    for (auto it = rows_.blocks.lower_bound({key_, level, b_lo});
         it != rows_.blocks.end() && std::get<0>(it->first) == key_ && std::get<1>(it->first) == level &&
         std::get<2>(it->first) <= b_hi;
         ++it) {
      fn(it->second);
    }
  }

 private:
  const MemRows& rows_;
  std::string key_;
};

// A noisy training curve with spikes, so buckets have distinct min and max.
std::vector<Point> curve(size_t n, int64_t first = 0, int64_t stride = 1, unsigned seed = 7) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> noise(0, 0.05);
  std::vector<Point> out;
  for (size_t i = 0; i < n; ++i) {
    int64_t step = first + static_cast<int64_t>(i) * stride;
    double v = 2.0 * std::exp(-static_cast<double>(i) / static_cast<double>(n / 4 + 1)) + noise(rng);
    if (i % 9973 == 5) v += 3;  // a spike
    out.push_back({step, v});
  }
  return out;
}

Harness ingest(const std::vector<Point>& pts, size_t per_commit = 5000) {
  Harness h;
  for (size_t i = 0; i < pts.size(); ++i) {
    h.add(1, "loss", pts[i].step, pts[i].value);
    if ((i + 1) % per_commit == 0) h.commit();
  }
  h.commit();
  return h;
}

// Every bucket's true min and max over [lo, hi] must be in the answer.
void check_buckets(const std::vector<Point>& pts, const SeriesAnswer& ans, int64_t lo, int64_t hi, uint32_t max_points) {
  BOOST_TEST(ans.downsampled);
  BOOST_TEST(ans.points.size() <= max_points);
  std::map<int64_t, std::pair<Point, Point>> truth;  // bucket -> (min, max)
  uint64_t in_range = 0;
  for (auto& p : pts) {
    if (p.step < lo || p.step > hi) continue;
    ++in_range;
    int64_t b = (p.step - ans.bucket_origin) / ans.bucket_width;
    auto it = truth.find(b);
    if (it == truth.end()) {
      truth[b] = {p, p};
      continue;
    }
    if (p.value < it->second.first.value) it->second.first = p;
    if (p.value > it->second.second.value) it->second.second = p;
  }
  BOOST_TEST(ans.total_points == in_range);
  std::map<int64_t, double> got;
  for (size_t i = 0; i < ans.points.size(); ++i) {
    got[ans.points[i].step] = ans.points[i].value;
    if (i > 0) BOOST_TEST(ans.points[i - 1].step < ans.points[i].step);
  }
  size_t bad = 0;
  for (auto& [b, mm] : truth) {
    for (const Point& p : {mm.first, mm.second}) {
      auto it = got.find(p.step);
      if (it == got.end() || it->second != p.value) ++bad;
    }
  }
  BOOST_TEST(bad == 0u, "buckets whose min or max is missing: " << bad << " of " << truth.size());
}

}  // namespace

BOOST_AUTO_TEST_CASE(summary_tracks_count_last_min_and_max_with_their_steps) {
  Harness h;
  h.add(1, "loss", 10, 0.5);
  h.add(1, "loss", 20, 0.2);
  h.add(1, "loss", 5, 0.9);  // out of order
  h.add(1, "loss", 30, 0.4);
  h.commit();
  auto s = h.summary(1, "loss");
  BOOST_TEST(s.all.count == 4u);
  BOOST_TEST(s.all.last.step == 30);
  BOOST_TEST(s.all.last.value == 0.4);
  BOOST_TEST(s.all.first.step == 5);
  BOOST_TEST(s.all.min.step == 20);
  BOOST_TEST(s.all.min.value == 0.2);
  BOOST_TEST(s.all.max.step == 5);
  BOOST_TEST(s.all.max.value == 0.9);
}

BOOST_AUTO_TEST_CASE(a_replayed_point_is_counted_once_within_and_across_batches) {
  Harness h;
  for (int i = 0; i < 100; ++i) BOOST_CHECK(h.add(1, "acc", i, i * 0.01) == PointOutcome::kNew);
  // The same report again before the commit...
  for (int i = 0; i < 100; ++i) BOOST_CHECK(h.add(1, "acc", i, i * 0.01) == PointOutcome::kDuplicate);
  h.commit();
  // ...and after it.
  for (int i = 0; i < 100; ++i) BOOST_CHECK(h.add(1, "acc", i, i * 0.01) == PointOutcome::kDuplicate);
  h.commit();
  BOOST_TEST(h.summary(1, "acc").all.count == 100u);
  Aggregate l1;
  for (auto& [k, a] : h.rows.blocks) {
    if (std::get<1>(k) == 1) l1.merge(a);
  }
  BOOST_TEST(l1.count == 100u);
}

BOOST_AUTO_TEST_CASE(a_new_value_for_a_step_replaces_it_without_counting_twice) {
  Harness h;
  h.add(1, "loss", 1, 1.0);
  h.add(1, "loss", 2, 2.0);
  h.commit();
  BOOST_CHECK(h.add(1, "loss", 2, 0.5) == PointOutcome::kOverwrite);
  h.commit();
  auto s = h.summary(1, "loss");
  BOOST_TEST(s.all.count == 2u);
  BOOST_TEST(s.all.last.value == 0.5);
  BOOST_TEST(s.all.min.value == 0.5);
  BOOST_TEST(h.rows.points[series_key(1, "loss")][2] == 0.5);
}

BOOST_AUTO_TEST_CASE(nan_and_infinite_values_are_refused) {
  Harness h;
  BOOST_CHECK(h.add(1, "loss", 1, std::nan("")) == PointOutcome::kInvalid);
  BOOST_CHECK(h.add(1, "loss", 2, INFINITY) == PointOutcome::kInvalid);
  BOOST_CHECK(h.add(1, "loss", 3, 1.0) == PointOutcome::kNew);
}

BOOST_AUTO_TEST_CASE(rollup_blocks_sum_to_the_series_at_every_level) {
  auto pts = curve(20'000, -5000, 3);
  auto h = ingest(pts, 777);
  auto s = h.summary(1, "loss");
  BOOST_TEST(s.all.count == 20'000u);
  for (int level = 1; level <= kLevels; ++level) {
    Aggregate all;
    for (auto& [k, a] : h.rows.blocks) {
      if (std::get<1>(k) == level) all.merge(a);
    }
    BOOST_TEST(all.count == s.all.count);
    BOOST_TEST(all.min.value == s.all.min.value);
    BOOST_TEST(all.max.value == s.all.max.value);
    BOOST_TEST(all.first.step == s.all.first.step);
    BOOST_TEST(all.last.step == s.all.last.step);
  }
}

BOOST_AUTO_TEST_CASE(a_short_series_comes_back_whole_and_in_order) {
  auto pts = curve(1000);
  auto h = ingest(pts);
  MemSeries rows(h.rows, series_key(1, "loss"));
  auto ans = query_series(h.summary(1, "loss"), rows, SeriesQuery{INT64_MIN, INT64_MAX, 1000});
  BOOST_TEST(!ans.downsampled);
  BOOST_REQUIRE(ans.points.size() == 1000u);
  for (size_t i = 0; i < pts.size(); ++i) {
    BOOST_TEST(ans.points[i].step == pts[i].step);
    BOOST_TEST(ans.points[i].value == pts[i].value);
  }
}

BOOST_AUTO_TEST_CASE(downsampling_keeps_each_buckets_min_and_max) {
  auto pts = curve(200'000);
  auto h = ingest(pts, 10'000);
  MemSeries rows(h.rows, series_key(1, "loss"));
  auto s = h.summary(1, "loss");
  for (uint32_t max_points : {1000u, 333u, 20'000u}) {
    auto ans = query_series(s, rows, SeriesQuery{INT64_MIN, INT64_MAX, max_points});
    check_buckets(pts, ans, INT64_MIN, INT64_MAX, max_points);
    // O(max_points) rows, not the series' length.
    BOOST_TEST(ans.rows_read <= 40u * max_points);
  }
  // The whole-series min and max survive.
  auto ans = query_series(s, rows, SeriesQuery{INT64_MIN, INT64_MAX, 100});
  bool has_min = false, has_max = false;
  for (auto& p : ans.points) {
    has_min |= p.step == s.all.min.step;
    has_max |= p.step == s.all.max.step;
  }
  BOOST_TEST(has_min);
  BOOST_TEST(has_max);
}

BOOST_AUTO_TEST_CASE(downsampling_a_range_with_ragged_edges_is_exact_per_bucket) {
  auto pts = curve(100'000, -3, 7, 11);  // sparse steps, negative start
  auto h = ingest(pts, 4096);
  MemSeries rows(h.rows, series_key(1, "loss"));
  auto s = h.summary(1, "loss");
  for (auto [lo, hi] : {std::pair<int64_t, int64_t>{12'345, 543'211}, {-100, 3}, {1, 699'990}}) {
    auto ans = query_series(s, rows, SeriesQuery{lo, hi, 500});
    if (ans.downsampled) {
      check_buckets(pts, ans, lo, hi, 500);
    } else {
      for (auto& p : ans.points) BOOST_TEST((p.step >= lo && p.step <= hi));
    }
  }
}

BOOST_AUTO_TEST_CASE(steps_at_the_ends_of_the_int64_range_are_counted_once) {
  Harness h;
  std::vector<Point> pts = {{INT64_MIN, 1.0}, {INT64_MIN + 1, 2.0}, {0, -1.0}, {INT64_MAX - 1, 5.0}, {INT64_MAX, 3.0}};
  for (auto& p : pts) h.add(1, "x", p.step, p.value);
  h.commit();
  MemSeries rows(h.rows, series_key(1, "x"));
  auto s = h.summary(1, "x");
  auto whole = query_series(s, rows, SeriesQuery{INT64_MIN, INT64_MAX, 1000});
  BOOST_TEST(whole.total_points == 5u);
  BOOST_TEST(whole.points.size() == 5u);
  auto two = query_series(s, rows, SeriesQuery{INT64_MIN, INT64_MAX, 2});
  BOOST_TEST(two.total_points == 5u);
  BOOST_TEST(two.points.size() <= 2u);
}

BOOST_AUTO_TEST_CASE(parallel_and_sequential_scans_agree) {
  auto pts = curve(300'000);
  auto h = ingest(pts, 50'000);
  MemSeries rows(h.rows, series_key(1, "loss"));
  auto s = h.summary(1, "loss");
  // Many small buckets: level-1 rows, thousands of blocks per scan.
  auto a = query_series(s, rows, SeriesQuery{INT64_MIN, INT64_MAX, 20'000}, true);
  auto b = query_series(s, rows, SeriesQuery{INT64_MIN, INT64_MAX, 20'000}, false);
  BOOST_TEST(a.total_points == b.total_points);
  BOOST_REQUIRE(a.points.size() == b.points.size());
  for (size_t i = 0; i < a.points.size(); ++i) BOOST_TEST(a.points[i].step == b.points[i].step);
}

BOOST_AUTO_TEST_CASE(below_the_retention_watermark_rollups_answer_and_late_points_are_dropped) {
  auto pts = curve(10'000);
  auto h = ingest(pts);
  auto key = series_key(1, "loss");
  h.writer.set_raw_from(key, 4096);
  h.commit();
  auto& raw = h.rows.points[key];
  raw.erase(raw.begin(), raw.lower_bound(4096));  // what the shell's DeleteRange does
  BOOST_CHECK(h.add(1, "loss", 100, 42.0) == PointOutcome::kLate);
  BOOST_CHECK(h.add(1, "loss", 5000, pts[5000].value) == PointOutcome::kDuplicate);
  h.commit();
  auto s = h.summary(1, "loss");
  BOOST_TEST(s.all.count == 10'000u);
  MemSeries rows(h.rows, key);
  auto ans = query_series(s, rows, SeriesQuery{INT64_MIN, INT64_MAX, 10'000});
  BOOST_TEST(ans.total_points == 10'000u);
  BOOST_TEST(ans.downsampled);  // raw points are gone below 4096
  bool has_max = false;
  for (auto& p : ans.points) has_max |= (p.step == s.all.max.step && p.value == s.all.max.value);
  BOOST_TEST(has_max);
}

BOOST_AUTO_TEST_CASE(rows_encode_and_decode) {
  Aggregate a;
  a.add(-3, 1.5, 99);
  a.add(7, -2.5, 100);
  auto d = decode_aggregate(encode_aggregate(a));
  BOOST_REQUIRE(d.has_value());
  BOOST_TEST(d->count == 2u);
  BOOST_TEST(d->min.step == 7);
  BOOST_TEST(d->max.value == 1.5);
  BOOST_TEST(d->newest_time_ns == 100);
  Summary s{a, 64};
  auto ds = decode_summary(encode_summary(s));
  BOOST_REQUIRE(ds.has_value());
  BOOST_TEST(ds->raw_from == 64);
  BOOST_TEST(!decode_summary("short").has_value());
  uint64_t job = 0;
  std::string_view name;
  std::string key = series_key(42, "val/acc");
  BOOST_TEST(parse_series_key(key, &job, &name));
  BOOST_TEST(job == 42u);
  BOOST_TEST(name == "val/acc");
  RunInfo info{"run[3]", "sweep", {{"lr", "0.1"}, {"bs", "64"}}, "alice", "vision"};
  auto di = decode_run_info(encode_run_info(info));
  BOOST_REQUIRE(di.has_value());
  BOOST_TEST(di->labels.size() == 2u);
  BOOST_TEST(di->labels[1].second == "64");
  BOOST_TEST(di->user == "alice");  // who may read the run's metrics
  BOOST_TEST(di->account == "vision");
  // A record written before owners were kept reads with no owner.
  std::string old = encode_run_info(info);
  old.resize(old.size() - (4 + 5) - (4 + 6));
  auto od = decode_run_info(old);
  BOOST_REQUIRE(od.has_value());
  BOOST_TEST(od->user.empty());
  BOOST_TEST(od->labels.size() == 2u);
}

BOOST_AUTO_TEST_CASE(comparison_ranks_best_first_both_ways) {
  auto summary_of = [](std::vector<double> values) {
    Summary s;
    for (size_t i = 0; i < values.size(); ++i) s.all.add(static_cast<int64_t>(i), values[i], 0);
    return s;
  };
  std::vector<std::pair<uint64_t, Summary>> runs = {
      {1, summary_of({0.1, 0.5, 0.3})},   // best max 0.5 at step 1, final 0.3
      {2, summary_of({0.2, 0.9, 0.8})},   // best max 0.9
      {3, summary_of({0.05, 0.1, 0.7})},  // best max 0.7 at step 2
      {4, summary_of({0.9, 0.1, 0.1})},   // best max 0.9 at step 0: earlier than run 2
  };
  RunInfo info{"r", "e", {{"lr", "1"}}, "", ""};
  std::vector<RunResult> rows;
  for (auto& [id, s] : runs) rows.push_back(run_result(id, s, true, &info));
  rank_runs(rows, true);
  std::vector<uint64_t> order;
  for (auto& r : rows) order.push_back(r.job_id);
  BOOST_TEST(order == (std::vector<uint64_t>{4, 2, 3, 1}), boost::test_tools::per_element());
  BOOST_TEST(rows[2].final_value == 0.7);
  BOOST_TEST(rows[2].best_step == 2);
  BOOST_TEST(rows[0].labels.size() == 1u);

  rows.clear();
  for (auto& [id, s] : runs) rows.push_back(run_result(id, s, false, nullptr));
  rank_runs(rows, false);
  order.clear();
  for (auto& r : rows) order.push_back(r.job_id);
  // minimize: 3 (0.05), 1 (0.1 at step 0), 4 (0.1 at step 1), 2 (0.2)
  BOOST_TEST(order == (std::vector<uint64_t>{3, 1, 4, 2}), boost::test_tools::per_element());
}

// The read side of the aggregator: ListMetrics (a run's series),
// QuerySeries (one series, downsampled) and CompareRuns (runs ranked by a
// metric), each checked against the read rule (read_rule.cc) first.
#include <algorithm>
#include <optional>

#include <tbb/parallel_for.h>

#include "core/comparison.h"
#include "core/query.h"
#include "shell.h"
#include "storage/keys.h"
#include "store_rows.h"
#include "util/page.h"

namespace trainyard::metrics {

using storage::Key;
using storage::KeyReader;

namespace {

// Comparisons over more runs than this read their summaries in parallel.
constexpr size_t kParallelRuns = 64;

}  // namespace

void AggregatorShell::on_list_metrics(const fb::Request& req, rpc::Responder& r) {
  auto* q = req.body_as_ListMetrics();
  ++stats_.queries;
  if (auto s = may_read(r, q->job_id()); !s) return r.error(s);
  auto& b = r.builder();
  std::vector<flatbuffers::Offset<fb::MetricSummary>> out;
  std::string prefix = Key().u64(q->job_id()).bytes();
  std::string after = q->after_name() ? q->after_name()->str() : std::string();
  PageBudget page(q->page_bytes());
  std::string last;
  auto scanned = store_.scan_prefix(series_, prefix, [&](std::string_view k, std::string_view v) {
    uint64_t job = 0;
    std::string_view name;
    auto s = decode_summary(v);
    if (!s || !parse_series_key(k, &job, &name) || s->all.count == 0) return true;
    if (!after.empty() && name <= after) return true;
    if (!page.admit(name.size() + 64)) return false;
    auto n = b.CreateString(name);
    out.push_back(fb::CreateMetricSummary(b, n, s->all.count, s->all.last.value, s->all.last.step, s->all.min.value,
                                          s->all.min.step, s->all.max.value, s->all.max.step));
    last = name;
    return true;
  });
  if (!scanned) return r.error(scanned);
  r.ok(fb::ReplyBody::MetricSummaries,
       fb::CreateMetricSummariesDirect(b, q->job_id(), &out, page.truncated() ? last.c_str() : nullptr,
                                       page.truncated())
           .Union());
}

void AggregatorShell::on_query_series(const fb::Request& req, rpc::Responder& r) {
  auto* q = req.body_as_QuerySeries();
  ++stats_.queries;
  if (!q->name() || q->name()->size() == 0 || has_nul(q->name()->string_view())) {
    r.error(Status::invalid("QuerySeries.name: give the metric's name (ListMetrics shows a job's metrics)"));
    return;
  }
  if (q->from_step() > q->to_step()) {
    r.error(Status::invalid("QuerySeries: from_step " + std::to_string(q->from_step()) + " is after to_step " +
                            std::to_string(q->to_step())));
    return;
  }
  if (q->max_points() < 2 || q->max_points() > options_.max_points_per_query) {
    r.error(Status::invalid("QuerySeries.max_points is " + std::to_string(q->max_points()) + "; ask for 2 to " +
                            std::to_string(options_.max_points_per_query) + " points"));
    return;
  }
  if (auto s = may_read(r, q->job_id()); !s) return r.error(s);
  std::string key = series_key(q->job_id(), q->name()->string_view());
  auto v = store_.get(series_, key);
  if (!v) return r.error(v.status());
  std::optional<Summary> sum = *v ? decode_summary(**v) : std::nullopt;
  if (!sum) {
    r.error(Status::not_found("job " + std::to_string(q->job_id()) + " has no metric '" + q->name()->str() +
                              "' (ListMetrics shows the metrics it reported)"));
    return;
  }
  StoreSeriesRows rows(store_, points_, rollups_, key);
  auto ans = query_series(*sum, rows, SeriesQuery{q->from_step(), q->to_step(), q->max_points()});
  if (auto s = rows.status(); !s) return r.error(s);
  auto& b = r.builder();
  std::vector<int64_t> steps;
  std::vector<double> values;
  steps.reserve(ans.points.size());
  values.reserve(ans.points.size());
  for (auto& p : ans.points) {
    steps.push_back(p.step);
    values.push_back(p.value);
  }
  r.ok(fb::ReplyBody::Series,
       fb::CreateSeriesDirect(b, q->job_id(), q->name()->c_str(), &steps, &values, ans.total_points).Union());
}

void AggregatorShell::on_compare_runs(const fb::Request& req, rpc::Responder& r) {
  auto* q = req.body_as_CompareRuns();
  ++stats_.queries;
  if (!q->metric() || q->metric()->size() == 0 || has_nul(q->metric()->string_view())) {
    r.error(Status::invalid("CompareRuns.metric: name the metric to compare runs by (e.g. val_acc)"));
    return;
  }
  auto asked = runs_to_compare(*q);
  if (!asked) return r.error(asked.status());
  std::vector<uint64_t>& jobs = *asked;
  // Each run's name, labels and owner, read once: for the rule and the rows.
  std::vector<std::optional<RunInfo>> infos;
  infos.reserve(jobs.size());
  for (uint64_t j : jobs) {
    auto info = run_info(j);
    if (!info) return r.error(info.status());
    infos.push_back(std::move(*info));
  }
  if (q->job_ids() && q->job_ids()->size() > 0) {
    // Named runs: each one must be the caller's to read.
    for (size_t i = 0; i < jobs.size(); ++i) {
      if (auto st = may_read(r, jobs[i], infos[i]); !st) return r.error(st);
    }
  } else if (keep_readable(r, jobs, infos); jobs.empty()) {
    // An experiment: the runs the caller may read (as Slurm's PrivateData
    // hides other users' jobs rather than refusing the listing).
    r.error(Status::not_found("experiment '" + q->experiment()->str() +
                              "' has no runs here that you may read; check its name (JobSpec.experiment)"));
    return;
  }
  std::string metric = q->metric()->str();
  auto rows = compare_runs(jobs, infos, metric, q->maximize());
  if (!rows) return r.error(rows.status());
  auto& b = r.builder();
  std::vector<flatbuffers::Offset<fb::ComparisonRow>> out;
  for (auto& row : *rows) {
    std::vector<flatbuffers::Offset<fb::KeyValue>> labels;
    for (auto& [k, v] : row.labels) labels.push_back(fb::CreateKeyValueDirect(b, k.c_str(), v.c_str()));
    out.push_back(fb::CreateComparisonRowDirect(b, row.job_id, row.name.c_str(), row.final_value, row.final_step,
                                                row.best_value, row.best_step, &labels));
  }
  r.ok(fb::ReplyBody::Comparison, fb::CreateComparisonDirect(b, metric.c_str(), &out).Union());
}

Result<std::vector<uint64_t>> AggregatorShell::runs_to_compare(const fb::CompareRuns& q) const {
  std::vector<uint64_t> jobs;
  if (q.job_ids() && q.job_ids()->size() > 0) {
    jobs.assign(q.job_ids()->begin(), q.job_ids()->end());
    std::sort(jobs.begin(), jobs.end());
    jobs.erase(std::unique(jobs.begin(), jobs.end()), jobs.end());
  } else if (q.experiment() && q.experiment()->size() > 0 && !has_nul(q.experiment()->string_view())) {
    auto scanned = store_.scan_prefix(experiments_, Key().str(q.experiment()->string_view()),
                                      [&](std::string_view k, std::string_view) {
                                        KeyReader kr(k);
                                        kr.str();
                                        jobs.push_back(kr.u64());
                                        return true;
                                      });
    if (!scanned) return scanned;
  } else {
    return Status::invalid("CompareRuns: give an experiment or job_ids to compare");
  }
  if (jobs.size() > options_.max_runs_per_comparison) {
    return Status::exhausted("CompareRuns: " + std::to_string(jobs.size()) + " runs asked, the limit is " +
                             std::to_string(options_.max_runs_per_comparison) +
                             " (metrics.max_runs_per_comparison); compare fewer runs");
  }
  return jobs;
}

Result<std::vector<RunResult>> AggregatorShell::compare_runs(const std::vector<uint64_t>& jobs,
                                                             const std::vector<std::optional<RunInfo>>& infos,
                                                             const std::string& metric, bool maximize) const {
  std::vector<std::optional<RunResult>> found(jobs.size());
  std::vector<Status> failed(jobs.size());  // one slot per run: the tasks write apart
  auto one = [&](size_t i) {
    auto v = store_.get(series_, series_key(jobs[i], metric));
    if (!v) {
      failed[i] = v.status();
      return;
    }
    if (!*v) return;
    auto s = decode_summary(**v);
    if (!s || s->all.count == 0) return;
    found[i] = run_result(jobs[i], *s, maximize, infos[i] ? &*infos[i] : nullptr);
  };
  if (jobs.size() > kParallelRuns) {
    tbb::parallel_for(size_t{0}, jobs.size(), one);
  } else {
    for (size_t i = 0; i < jobs.size(); ++i) one(i);
  }
  for (auto& s : failed) {
    if (!s) return s;
  }
  std::vector<RunResult> rows;
  for (auto& f : found) {
    if (f) rows.push_back(std::move(*f));
  }
  rank_runs(rows, maximize);
  return rows;
}

}  // namespace trainyard::metrics

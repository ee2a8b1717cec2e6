// The write side of the aggregator: metric.* batches become points, and
// before each commit rollups and summaries (through the core's SeriesWriter);
// job.submitted keeps each run's name, labels, owner and experiment;
// directory.* goes to the directory feed.
#include <algorithm>

#include "shell.h"
#include "storage/keys.h"
#include "store_rows.h"

namespace trainyard::metrics {

using storage::Key;

void AggregatorShell::on_event(const bus::Event& e, storage::Batch& batch) {
  if (directory_->apply(e, batch)) return;
  switch (e.type()) {
    case fb::Payload::MetricBatch:
      on_metric_batch(e, batch);
      break;
    case fb::Payload::JobSubmitted:
      on_job_submitted(e, batch);
      break;
    default:
      break;  // job.state and types this version does not know: nothing to keep
  }
}

void AggregatorShell::on_job_submitted(const bus::Event& e, storage::Batch& batch) {
  auto* js = e.as<fb::JobSubmitted>();
  if (!js || !js->spec()) return;
  auto* spec = js->spec();
  RunInfo info;
  if (spec->name()) info.name = spec->name()->str();
  if (js->array_index() >= 0) info.name += "[" + std::to_string(js->array_index()) + "]";
  if (spec->experiment()) info.experiment = spec->experiment()->str();
  if (spec->user()) info.user = spec->user()->str();
  if (spec->account()) info.account = spec->account()->str();
  if (spec->labels()) {
    for (auto* kv : *spec->labels()) {
      if (!kv->key()) continue;
      info.labels.emplace_back(kv->key()->str(), kv->value() ? kv->value()->str() : "");
    }
  }
  batch.put(jobs_, Key().u64(js->job_id()), encode_run_info(info));
  if (!info.experiment.empty() && !has_nul(info.experiment)) {
    batch.put(experiments_, Key().str(info.experiment).u64(js->job_id()), "");
    indexed_jobs_.insert(js->job_id());
  }
}

void AggregatorShell::on_metric_batch(const bus::Event& e, storage::Batch& batch) {
  auto* mb = e.as<fb::MetricBatch>();
  if (!mb) return;
  ++stats_.batches;
  int64_t now = clock_.now_ns();
  // A publisher's clock is not trusted: a time in the future, or so far in
  // the past that the difference overflows, says nothing about lag.
  if (e.time_ns() > 0 && e.time_ns() <= now) lag_max_ns_ = std::max(lag_max_ns_, now - e.time_ns());
  uint64_t job = mb->job_id();
  if (mb->experiment() && mb->experiment()->size() > 0 && !indexed_jobs_.contains(job)) {
    auto exp = mb->experiment()->string_view();
    if (!has_nul(exp)) batch.put(experiments_, Key().str(exp).u64(job), "");
    if (indexed_jobs_.size() > 1'000'000) indexed_jobs_.clear();
    indexed_jobs_.insert(job);
  }
  auto* names = mb->names();
  auto* points = mb->points();
  if (!points) return;
  stats_.points_received += points->size();
  // One series handle per name of the batch, resolved once.
  std::vector<SeriesWriter::Series*> series(names ? names->size() : 0, nullptr);
  for (size_t i = 0; i < series.size(); ++i) {
    auto n = names->Get(static_cast<flatbuffers::uoffset_t>(i))->string_view();
    if (n.empty() || has_nul(n)) continue;
    series[i] = &writer_.open(job, n);
  }
  for (const fb::MetricPoint* p : *points) {
    if (p->name() >= series.size() || !series[p->name()]) {
      ++stats_.points_rejected;
      continue;
    }
    auto& s = *series[p->name()];
    int64_t t = p->time_ns() != 0 ? p->time_ns() : e.time_ns();
    switch (writer_.add(s, p->step(), p->value(), t)) {
      case PointOutcome::kNew:
        ++stats_.points_new;
        ++points_pending_;
        break;
      case PointOutcome::kOverwrite:
        ++stats_.points_overwritten;
        break;
      case PointOutcome::kDuplicate:
        ++stats_.points_duplicate;
        continue;
      case PointOutcome::kLate:
        ++stats_.points_late;
        continue;
      case PointOutcome::kInvalid:
        ++stats_.points_rejected;
        continue;
    }
    const std::string& prefix = SeriesWriter::key(s);
    key_buf_.assign(prefix);
    uint64_t flipped = static_cast<uint64_t>(p->step()) ^ (uint64_t{1} << 63);
    for (int i = 7; i >= 0; --i) key_buf_.push_back(static_cast<char>((flipped >> (i * 8)) & 0xff));
    encode_point_into(value_buf_, p->value(), t);
    batch.put(points_, key_buf_, value_buf_);
  }
}

void AggregatorShell::flush_rows() {
  auto& batch = runtime_.batch();
  uint64_t created = writer_.flush(
      [&](const std::string& key, const Summary& s) { batch.put(series_, key, encode_summary(s)); },
      [&](const std::string& key, int level, int64_t block, const Aggregate& a) {
        batch.put(rollups_, rollup_key(key, level, block), encode_aggregate(a));
      });
  if (created > 0) {
    batch.add(meta_, "series", static_cast<int64_t>(created));
    series_total_ += created;
  }
  if (points_pending_ > 0) {
    batch.add(meta_, "points", static_cast<int64_t>(points_pending_));
    points_total_ += points_pending_;
    points_pending_ = 0;
  }
}

}  // namespace trainyard::metrics

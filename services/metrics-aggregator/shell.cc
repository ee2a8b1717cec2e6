#include "shell.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <stdexcept>

#include <spdlog/spdlog.h>
#include <tbb/parallel_for.h>

#include "core/comparison.h"
#include "core/query.h"
#include "storage/keys.h"
#include "util/page.h"

namespace trainyard::metrics {

using storage::Key;
using storage::KeyReader;

namespace {

constexpr const char* kService = "metrics-aggregator";
constexpr const char* kVersion = "0.1.0";
// Comparisons over more runs than this read their summaries in parallel.
constexpr size_t kParallelRuns = 64;

bool has_nul(std::string_view s) { return s.find('\0') != std::string_view::npos; }

// Reads a single series' rows for a query, straight from RocksDB. Each call
// opens its own iterator, so oneTBB tasks may call it concurrently.
class StoreSeriesRows final : public SeriesRows {
 public:
  StoreSeriesRows(storage::Store& store, storage::Cf points, storage::Cf rollups, std::string series)
      : db_(store.raw()), points_(points), rollups_(rollups), series_(std::move(series)) {}

  void points(int64_t lo, int64_t hi, const std::function<void(const Point&)>& fn) const override {
    std::string begin = point_key(series_, lo);
    std::string end = point_key(series_, hi);
    rocksdb::ReadOptions ro;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, points_.h));
    for (it->Seek(begin); it->Valid(); it->Next()) {
      auto k = it->key();
      if (k.compare(rocksdb::Slice(end)) > 0) break;
      if (k.size() != series_.size() + 8) continue;
      int64_t step = KeyReader(std::string_view(k.data() + series_.size(), 8)).i64();
      auto v = decode_point(std::string_view(it->value().data(), it->value().size()));
      if (v) fn(Point{step, v->first});
    }
  }

  void blocks(int level, int64_t b_lo, int64_t b_hi, const std::function<void(const Aggregate&)>& fn) const override {
    std::string begin = rollup_key(series_, level, b_lo);
    std::string end = rollup_key(series_, level, b_hi);
    rocksdb::ReadOptions ro;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, rollups_.h));
    for (it->Seek(begin); it->Valid(); it->Next()) {
      auto k = it->key();
      if (k.compare(rocksdb::Slice(end)) > 0) break;
      auto a = decode_aggregate(std::string_view(it->value().data(), it->value().size()));
      if (a) fn(*a);
    }
  }

 private:
  rocksdb::DB* db_;
  storage::Cf points_;
  storage::Cf rollups_;
  std::string series_;
};


}  // namespace

// Ingest's view of what is committed.
class AggregatorShell::Committed final : public CommittedRows {
 public:
  Committed(storage::Store& store, storage::Cf points, storage::Cf rollups, storage::Cf series)
      : store_(store), points_(points), rollups_(rollups), series_(series) {}
  std::optional<Summary> summary(std::string_view series) override {
    auto v = store_.get(series_, series);
    if (!v) return std::nullopt;
    return decode_summary(*v);
  }
  std::optional<Aggregate> block(std::string_view series, int level, int64_t b) override {
    auto v = store_.get(rollups_, rollup_key(series, level, b));
    if (!v) return std::nullopt;
    return decode_aggregate(*v);
  }
  std::optional<double> point(std::string_view series, int64_t step) override {
    auto v = store_.get(points_, point_key(series, step));
    if (!v) return std::nullopt;
    auto p = decode_point(*v);
    if (!p) return std::nullopt;
    return p->first;
  }

 private:
  storage::Store& store_;
  storage::Cf points_;
  storage::Cf rollups_;
  storage::Cf series_;
};

Result<AggregatorOptions> AggregatorOptions::from_config(const Config& c) try {
  AggregatorOptions o;
  o.endpoint = c.get_string("metrics.endpoint", o.endpoint);
  o.instance = c.get_string("metrics.instance", o.instance);
  o.bus_frontend = c.get_strings("bus.frontend", {"tcp://127.0.0.1:5550"});
  o.bus_backend = c.get_strings("bus.backend", {"tcp://127.0.0.1:5551"});
  auto positive = [&](std::string_view key, int64_t def, int64_t min) {
    int64_t v = c.get_int(key, def);
    if (v < min) {
      throw std::runtime_error("config key " + std::string(key) + " is " + std::to_string(v) + "; it must be at least " +
                               std::to_string(min));
    }
    return v;
  };
  o.raw_retention_s = positive("metrics.raw_retention_s", o.raw_retention_s, 0);
  o.retention_check_s = positive("metrics.retention_check_s", o.retention_check_s, 1);
  o.retention_series_per_pass =
      static_cast<size_t>(positive("metrics.retention_series_per_pass", static_cast<int64_t>(o.retention_series_per_pass), 1));
  o.ops_interval_ms = positive("metrics.ops_interval_ms", o.ops_interval_ms, 100);
  o.max_events_per_commit =
      static_cast<size_t>(positive("metrics.max_events_per_commit", static_cast<int64_t>(o.max_events_per_commit), 1));
  o.max_points_per_query =
      static_cast<uint32_t>(positive("metrics.max_points_per_query", o.max_points_per_query, 2));
  o.max_runs_per_comparison = static_cast<size_t>(
      positive("metrics.max_runs_per_comparison", static_cast<int64_t>(o.max_runs_per_comparison), 1));
  o.cached_series = static_cast<size_t>(positive("metrics.cached_series", static_cast<int64_t>(o.cached_series), 1));
  o.data = c.get_string("metrics.data", o.data);
  auto d = storage::parse_durability("metrics.durability", c.get_string("metrics.durability", "wal"));
  if (!d) return d.status();
  o.durability = *d;
  auto trust = security::trust_from_config(c);
  if (!trust) return trust.status();
  o.trust = std::move(trust).value();
  return o;
} catch (const std::exception& e) {
  return Status::invalid(e.what());
}

storage::Options AggregatorShell::store_options(const Options& o) {
  return service_store({"points", "rollups", "series", "jobs", "experiments", "meta",
                        security::DirectoryFeed::kColumnFamily},
                       o.durability, {"meta"});
}

AggregatorShell::AggregatorShell(const ServiceEnv& env, AggregatorOptions options)
    : store_(env.store),
      runtime_(env.runtime),
      options_(std::move(options)),
      clock_(env.clock),
      points_(store_.cf("points")),
      rollups_(store_.cf("rollups")),
      series_(store_.cf("series")),
      jobs_(store_.cf("jobs")),
      experiments_(store_.cf("experiments")),
      meta_(store_.cf("meta")),
      server_(env.ctx, options_.endpoint, kService),
      publisher_(env.ctx, store_, server_,
                 bus::PublisherOptions{.instance = options_.instance,
                                       .bus_endpoints = options_.bus_frontend,
                                       .heartbeat_ms = 1000,
                                       .outbox_keep_events = 100'000,
                                       .outbox_keep_age_s = 24 * 3600,
                                       .trim_every_ms = 60'000,
                                       .advertise = ""},
                 clock_),
      committed_(std::make_unique<Committed>(store_, points_, rollups_, series_)),
      writer_(*committed_, options_.cached_series) {
  ops_stream_ = publisher_.stream_for("ops.");
  // Points arrive in large batches: bigger memtables mean fewer flushes.
  store_.raw()->SetOptions(points_.h, {{"write_buffer_size", std::to_string(128 << 20)}});
  points_total_ = static_cast<uint64_t>(store_.get_counter(meta_, "points"));
  series_total_ = static_cast<uint64_t>(store_.get_counter(meta_, "series"));

  server_.on(fb::RequestBody::Ping, [this](const fb::Request& q, rpc::Responder& r) { on_ping(q, r); });
  server_.on(fb::RequestBody::ListMetrics, [this](const fb::Request& q, rpc::Responder& r) { on_list_metrics(q, r); });
  server_.on(fb::RequestBody::QuerySeries, [this](const fb::Request& q, rpc::Responder& r) { on_query_series(q, r); });
  server_.on(fb::RequestBody::CompareRuns, [this](const fb::Request& q, rpc::Responder& r) { on_compare_runs(q, r); });

  bus::SubscriberOptions so;
  so.name = kService;
  so.bus_endpoints = options_.bus_backend;
  so.prefixes = {"metric.", "job.", std::string(security::kDirectoryPrefix)};
  directory_ = std::make_unique<security::DirectoryFeed>(store_, options_.trust.directory, options_.trust.directory_owner);
  so.max_batch = options_.max_events_per_commit;
  subscriber_ = std::make_unique<bus::Subscriber>(env.ctx, store_, so, [this](const bus::Event& e, storage::Batch& b) {
    on_event(e, b);
  });

  audit_ = std::make_unique<security::AuditTrail>(publisher_, runtime_, clock_, options_.instance,
                                                  options_.trust.audit_refusals_per_s);
  audit_->attach(server_);
  runtime_.watch(server_.socket(), [this] { server_.poll_in(); });
  subscriber_->attach(runtime_);
  // Last thing before the commit: every event of the iteration is in.
  runtime_.before_commit([this] { flush_rows(); });
  publisher_.attach(runtime_);
  runtime_.after_commit([this] { server_.flush(); });
  runtime_.after_commit([this] {
    // Retention reads committed rows only, so it runs right after a commit.
    if (retention_due_) retention_pass();
  });
  if (options_.raw_retention_s > 0) {
    retention_due_ = true;
    runtime_.every(options_.retention_check_s * 1000, [this] { retention_due_ = true; });
  }
  ops_last_ms_ = monotonic_ms();
  runtime_.every(options_.ops_interval_ms, [this] { publish_ops(); });
}

AggregatorShell::~AggregatorShell() = default;

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

void AggregatorShell::retention_pass() {
  retention_due_ = false;
  int64_t cutoff = clock_.now_ns() - options_.raw_retention_s * 1'000'000'000;
  auto& batch = runtime_.batch();
  size_t visited = 0;
  bool finished = true;
  std::vector<std::string> keys;
  store_.scan(series_, retention_resume_, "", [&](std::string_view k, std::string_view) {
    if (visited++ >= options_.retention_series_per_pass) {
      retention_resume_ = std::string(k);
      finished = false;
      return false;
    }
    keys.emplace_back(k);
    return true;
  });
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

void AggregatorShell::publish_ops() {
  int64_t now_ms = monotonic_ms();
  double period_s = std::max<int64_t>(1, now_ms - ops_last_ms_) / 1000.0;
  double points_rate = static_cast<double>(stats_.points_new - ops_last_points_) / period_s;
  double received_rate = static_cast<double>(stats_.points_received - ops_last_received_) / period_s;
  ops_last_ms_ = now_ms;
  ops_last_points_ = stats_.points_new;
  ops_last_received_ = stats_.points_received;
  double lag_s = static_cast<double>(lag_max_ns_) / 1e9;
  lag_max_ns_ = 0;

  bus::Gauges gauges;
  auto gauge = [&](const char* name, double v) { gauges.emplace_back(name, v); };
  gauge("ingest_points_per_s", points_rate);
  gauge("received_points_per_s", received_rate);
  gauge("points_total", static_cast<double>(points_total_));
  gauge("series", static_cast<double>(series_total_));
  gauge("lag_s", lag_s);
  gauge("caught_up", subscriber_->caught_up() ? 1 : 0);
  gauge("points_duplicate_total", static_cast<double>(stats_.points_duplicate));
  gauge("points_rejected_total", static_cast<double>(stats_.points_rejected));
  gauge("points_late_total", static_cast<double>(stats_.points_late));
  gauge("raw_points_dropped_total", static_cast<double>(stats_.raw_points_dropped));
  gauge("bus_gaps_total", static_cast<double>(subscriber_->stats().gaps));
  gauge("queries_total", static_cast<double>(stats_.queries));
  for (auto& kv : audit_->gauges()) gauges.emplace_back(kv);
  gauge("directory_version", static_cast<double>(directory_->current().version));
  bus::publish_ops_metrics(publisher_, runtime_.batch(), kService, options_.instance, gauges);
}

void AggregatorShell::on_ping(const fb::Request&, rpc::Responder& r) {
  auto& b = r.builder();
  r.ok(fb::ReplyBody::Pong, fb::CreatePongDirect(b, kService, options_.instance.c_str(), kVersion).Union());
}

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
  store_.scan_prefix(series_, prefix, [&](std::string_view k, std::string_view v) {
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
  std::optional<Summary> sum = v ? decode_summary(*v) : std::nullopt;
  if (!sum) {
    r.error(Status::not_found("job " + std::to_string(q->job_id()) + " has no metric '" + q->name()->str() +
                              "' (ListMetrics shows the metrics it reported)"));
    return;
  }
  StoreSeriesRows rows(store_, points_, rollups_, key);
  auto ans = query_series(*sum, rows, SeriesQuery{q->from_step(), q->to_step(), q->max_points()});
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
  std::vector<uint64_t> jobs;
  if (q->job_ids() && q->job_ids()->size() > 0) {
    jobs.assign(q->job_ids()->begin(), q->job_ids()->end());
    std::sort(jobs.begin(), jobs.end());
    jobs.erase(std::unique(jobs.begin(), jobs.end()), jobs.end());
  } else if (q->experiment() && q->experiment()->size() > 0 && !has_nul(q->experiment()->string_view())) {
    store_.scan_prefix(experiments_, Key().str(q->experiment()->string_view()), [&](std::string_view k, std::string_view) {
      KeyReader kr(k);
      kr.str();
      jobs.push_back(kr.u64());
      return true;
    });
  } else {
    r.error(Status::invalid("CompareRuns: give an experiment or job_ids to compare"));
    return;
  }
  if (jobs.size() > options_.max_runs_per_comparison) {
    r.error(Status::exhausted("CompareRuns: " + std::to_string(jobs.size()) + " runs asked, the limit is " +
                              std::to_string(options_.max_runs_per_comparison) +
                              " (metrics.max_runs_per_comparison); compare fewer runs"));
    return;
  }
  // Each run's name, labels and owner, read once: for the rule and the rows.
  std::vector<std::optional<RunInfo>> infos;
  infos.reserve(jobs.size());
  for (uint64_t j : jobs) infos.push_back(run_info(j));
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
  bool maximize = q->maximize();
  std::vector<std::optional<RunResult>> found(jobs.size());
  auto one = [&](size_t i) {
    auto v = store_.get(series_, series_key(jobs[i], metric));
    if (!v) return;
    auto s = decode_summary(*v);
    if (!s || s->all.count == 0) return;
    found[i] = run_result(jobs[i], *s, maximize, infos[i] ? &*infos[i] : nullptr);
  };
  if (jobs.size() > kParallelRuns) {
    tbb::parallel_for(size_t{0}, jobs.size(), one);
  } else {
    for (size_t i = 0; i < jobs.size(); ++i) one(i);
  }
  std::vector<RunResult> rows;
  for (auto& f : found) {
    if (f) rows.push_back(std::move(*f));
  }
  rank_runs(rows, maximize);
  auto& b = r.builder();
  std::vector<flatbuffers::Offset<fb::ComparisonRow>> out;
  for (auto& row : rows) {
    std::vector<flatbuffers::Offset<fb::KeyValue>> labels;
    for (auto& [k, v] : row.labels) labels.push_back(fb::CreateKeyValueDirect(b, k.c_str(), v.c_str()));
    out.push_back(fb::CreateComparisonRowDirect(b, row.job_id, row.name.c_str(), row.final_value, row.final_step,
                                                row.best_value, row.best_step, &labels));
  }
  r.ok(fb::ReplyBody::Comparison, fb::CreateComparisonDirect(b, metric.c_str(), &out).Union());
}

}  // namespace trainyard::metrics

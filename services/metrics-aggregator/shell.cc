// The aggregator's construction and wiring: options, column families, the
// ROUTER, the bus, the runtime's hooks, and its ops gauges. Ingest is in
// metric_events.cc, retention in retention.cc, the queries in query_calls.cc.
#include "shell.h"

#include <algorithm>
#include <optional>
#include <stdexcept>

#include "core/rows.h"

namespace trainyard::metrics {

namespace {

constexpr const char* kService = "metrics-aggregator";
constexpr const char* kVersion = "0.1.0";

}  // namespace

// Ingest's view of what is committed. Ingest writes what it derives from
// these reads (summaries, rollups), so a failed read stops the service.
class AggregatorShell::Committed final : public CommittedRows {
 public:
  Committed(storage::Store& store, storage::Cf points, storage::Cf rollups, storage::Cf series)
      : store_(store), points_(points), rollups_(rollups), series_(series) {}
  std::optional<Summary> summary(std::string_view series) override {
    auto v = read_or_abort(store_.get(series_, series));
    if (!v) return std::nullopt;
    return decode_summary(*v);
  }
  std::optional<Aggregate> block(std::string_view series, int level, int64_t b) override {
    auto v = read_or_abort(store_.get(rollups_, rollup_key(series, level, b)));
    if (!v) return std::nullopt;
    return decode_aggregate(*v);
  }
  std::optional<double> point(std::string_view series, int64_t step) override {
    auto v = read_or_abort(store_.get(points_, point_key(series, step)));
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
  points_total_ = static_cast<uint64_t>(value_or_throw(store_.get_counter(meta_, "points")));
  series_total_ = static_cast<uint64_t>(value_or_throw(store_.get_counter(meta_, "series")));

  serve_requests();
  subscribe(env.ctx);
  audit_ = std::make_unique<security::AuditTrail>(publisher_, runtime_, clock_, options_.instance,
                                                  options_.trust.audit_refusals_per_s);
  audit_->attach(server_);
  hook_into_runtime();
}

void AggregatorShell::serve_requests() {
  server_.on(fb::RequestBody::Ping, [this](const fb::Request& q, rpc::Responder& r) { on_ping(q, r); });
  server_.on(fb::RequestBody::ListMetrics, [this](const fb::Request& q, rpc::Responder& r) { on_list_metrics(q, r); });
  server_.on(fb::RequestBody::QuerySeries, [this](const fb::Request& q, rpc::Responder& r) { on_query_series(q, r); });
  server_.on(fb::RequestBody::CompareRuns, [this](const fb::Request& q, rpc::Responder& r) { on_compare_runs(q, r); });
}

void AggregatorShell::subscribe(zmq::context_t& ctx) {
  bus::SubscriberOptions so;
  so.name = kService;
  so.bus_endpoints = options_.bus_backend;
  so.prefixes = {"metric.", "job.", std::string(security::kDirectoryPrefix)};
  directory_ = std::make_unique<security::DirectoryFeed>(store_, options_.trust.directory, options_.trust.directory_owner);
  so.max_batch = options_.max_events_per_commit;
  subscriber_ = std::make_unique<bus::Subscriber>(ctx, store_, so, [this](const bus::Event& e, storage::Batch& b) {
    on_event(e, b);
  });
}

void AggregatorShell::hook_into_runtime() {
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

}  // namespace trainyard::metrics

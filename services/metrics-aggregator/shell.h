// The metrics-aggregator's I/O shell: applies metric.* and job.* events from
// the durable bus into RocksDB (points, rollups, summaries, runs), answers
// ListMetrics / QuerySeries / CompareRuns / Ping on its ROUTER, drops raw
// points past retention, and publishes ops.metrics.metrics-aggregator.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include <zmq.hpp>

#include "bus/publisher.h"
#include "bus/subscriber.h"
#include "core/comparison.h"
#include "core/ingest.h"
#include "rpc/server.h"
#include "security/audit.h"
#include "security/directory_feed.h"
#include "storage/store.h"
#include "util/clock.h"
#include "util/config.h"
#include "util/run_service.h"
#include "util/runtime.h"

namespace trainyard::metrics {

struct AggregatorOptions {
  std::string endpoint = "tcp://127.0.0.1:5562";  // metrics.endpoint
  std::string instance = "metrics";                // metrics.instance: names the ops stream
  std::vector<std::string> bus_frontend;           // bus.frontend
  std::vector<std::string> bus_backend;            // bus.backend
  int64_t raw_retention_s = 30 * 24 * 3600;        // metrics.raw_retention_s (0: keep raw points forever)
  int64_t retention_check_s = 60;                  // metrics.retention_check_s
  size_t retention_series_per_pass = 20'000;       // metrics.retention_series_per_pass
  int64_t ops_interval_ms = 5000;                  // metrics.ops_interval_ms
  size_t max_events_per_commit = 64;               // metrics.max_events_per_commit
  uint32_t max_points_per_query = 200'000;         // metrics.max_points_per_query
  size_t max_runs_per_comparison = 10'000;         // metrics.max_runs_per_comparison
  size_t cached_series = 100'000;                  // metrics.cached_series
  std::string data = "data/metrics";               // metrics.data
  storage::Durability durability = storage::Durability::kWal;  // metrics.durability
  security::TrustSettings trust;                   // who may read whose metrics; the audit rate

  // Reads [metrics] and [bus]; InvalidArgument names a bad key.
  static Result<AggregatorOptions> from_config(const Config& config);
  // Who this process is under CURVE (its key file, its streams).
  std::string principal() const { return "service:" + instance; }
};

// Counters behind the ops gauges.
struct AggregatorStats {
  uint64_t batches = 0;
  uint64_t points_received = 0;
  uint64_t points_new = 0;
  uint64_t points_overwritten = 0;
  uint64_t points_duplicate = 0;
  uint64_t points_late = 0;
  uint64_t points_rejected = 0;
  uint64_t raw_points_dropped = 0;  // by retention
  uint64_t queries = 0;
};

class AggregatorShell {
 public:
  using Options = AggregatorOptions;
  static constexpr ServiceInfo kInfo{
      "metrics-aggregator",
      "stores the metric points jobs report (metric.* on the bus) in RocksDB and answers ListMetrics, QuerySeries "
      "and CompareRuns on its ROUTER (metrics.endpoint)."};
  static storage::Options store_options(const Options& o);

  // Binds the ROUTER, connects to the bus and hooks into env.runtime. Throws
  // zmq::error_t when the endpoint cannot be bound.
  AggregatorShell(const ServiceEnv& env, AggregatorOptions options);
  ~AggregatorShell();
  nlohmann::json ready_info() const { return {{"endpoint", endpoint()}, {"ops_stream", ops_stream_}}; }

  const std::string& endpoint() const { return server_.endpoint(); }
  const std::string& ops_stream() const { return ops_stream_; }
  const AggregatorStats& stats() const { return stats_; }

 private:
  class Committed;

  // The constructor's steps after the stored counters are read, in order.
  void serve_requests();
  void subscribe(zmq::context_t& ctx);
  void hook_into_runtime();

  // Ingest (metric_events.cc).
  void on_event(const bus::Event& e, storage::Batch& batch);
  void on_metric_batch(const bus::Event& e, storage::Batch& batch);
  void on_job_submitted(const bus::Event& e, storage::Batch& batch);
  void flush_rows();
  void retention_pass();  // retention.cc

  void publish_ops();
  void on_ping(const fb::Request& req, rpc::Responder& r);
  // The queries (query_calls.cc).
  void on_list_metrics(const fb::Request& req, rpc::Responder& r);
  void on_query_series(const fb::Request& req, rpc::Responder& r);
  void on_compare_runs(const fb::Request& req, rpc::Responder& r);
  // The runs a CompareRuns names: its job_ids (sorted, each once) or its
  // experiment's runs; InvalidArgument when it names neither,
  // ResourceExhausted past metrics.max_runs_per_comparison.
  Result<std::vector<uint64_t>> runs_to_compare(const fb::CompareRuns& q) const;
  // The comparison rows of `jobs` (infos read alongside) by `metric`,
  // ranked; runs that never reported it are left out.
  Result<std::vector<RunResult>> compare_runs(const std::vector<uint64_t>& jobs,
                                              const std::vector<std::optional<RunInfo>>& infos,
                                              const std::string& metric, bool maximize) const;
  // Who may read a run's metrics (read_rule.cc): its owner, its account's
  // coordinators, admins; runs whose owner is unknown (stored before owners
  // were kept) are open. PermissionDenied names the rule.
  Status may_read(const rpc::Responder& r, uint64_t job) const;
  Status may_read(const rpc::Responder& r, uint64_t job, const std::optional<RunInfo>& info) const;
  // Drops from `jobs` (and `infos`, read alongside) the runs the caller may
  // not read; returns how many.
  size_t keep_readable(const rpc::Responder& r, std::vector<uint64_t>& jobs,
                       std::vector<std::optional<RunInfo>>& infos) const;
  // What job.submitted said of a run (none when it never arrived).
  // The run's name, labels and owner (from job.submitted); nullopt when unknown.
  Result<std::optional<RunInfo>> run_info(uint64_t job) const;

  storage::Store& store_;
  Runtime& runtime_;
  AggregatorOptions options_;
  const Clock& clock_;
  storage::Cf points_;
  storage::Cf rollups_;
  storage::Cf series_;
  storage::Cf jobs_;
  storage::Cf experiments_;
  storage::Cf meta_;
  rpc::Server server_;
  bus::Publisher publisher_;
  std::unique_ptr<Committed> committed_;
  SeriesWriter writer_;
  std::unique_ptr<bus::Subscriber> subscriber_;
  std::unique_ptr<security::DirectoryFeed> directory_;
  std::unique_ptr<security::AuditTrail> audit_;
  std::string ops_stream_;

  AggregatorStats stats_;
  uint64_t points_total_ = 0;  // stored points (meta "points")
  uint64_t series_total_ = 0;  // series (meta "series")
  uint64_t points_pending_ = 0;  // new points not yet counted into meta
  // Jobs whose experiment index row this process already wrote.
  std::unordered_set<uint64_t> indexed_jobs_;
  std::string key_buf_;
  std::string value_buf_;

  bool retention_due_ = false;
  std::string retention_resume_;  // series key the next pass starts from

  int64_t ops_last_ms_ = 0;
  uint64_t ops_last_points_ = 0;
  uint64_t ops_last_received_ = 0;
  int64_t lag_max_ns_ = 0;  // the worst bus lag since the last ops report
};

}  // namespace trainyard::metrics

// trainyard-metrics-aggregator: stores every metric point agents report and
// answers series and comparison queries (see README.md for config keys).
#include <iostream>

#include <spdlog/spdlog.h>

#include "shell.h"
#include "util/clock.h"
#include "util/runtime.h"
#include "util/service_main.h"

using namespace trainyard;

int main(int argc, char** argv) {
  block_termination_signals();
  CLI::App app{"trainyard-metrics-aggregator: stores the metric points jobs report (metric.* on the bus) in RocksDB "
               "and answers ListMetrics, QuerySeries and CompareRuns on its ROUTER (metrics.endpoint)."};
  ServiceArgs args;
  add_service_flags(app, args);
  std::string ready_file;
  app.add_option("--ready-file", ready_file,
                 "Once bound and started, write {\"pid\", \"endpoint\", \"ops_stream\"} JSON here (atomically)");
  CLI11_PARSE(app, argc, argv);
  auto config = load_service_config(args);
  init_service_logging("metrics-aggregator", args, config);

  metrics::AggregatorOptions options;
  std::string data;
  storage::Durability durability = storage::Durability::kWal;
  try {
    options = metrics::AggregatorOptions::from_config(config);
    data = config.get_string("metrics.data", "data/metrics");
    auto d = storage::parse_durability("metrics.durability", config.get_string("metrics.durability", "wal"));
    if (!d) throw std::runtime_error(d.status().message());
    durability = *d;
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return 2;
  }

  auto opened = storage::Store::open(
      data, storage::Options{metrics::AggregatorShell::column_families(), metrics::AggregatorShell::counter_families(),
                             durability});
  if (!opened) {
    spdlog::error("{}", opened.status().message());
    return 3;
  }
  auto& store = **opened;
  // Points arrive in large batches: bigger memtables mean fewer flushes.
  store.raw()->SetOptions(store.cf("points").h, {{"write_buffer_size", std::to_string(128 << 20)}});

  zmq::context_t ctx(1);
  SystemClock clock;
  Runtime runtime(&store);
  std::unique_ptr<metrics::AggregatorShell> shell;
  try {
    shell = std::make_unique<metrics::AggregatorShell>(ctx, store, runtime, options, clock);
  } catch (const zmq::error_t& e) {
    spdlog::error("cannot bind metrics.endpoint {}: {}", options.endpoint, e.what());
    return 1;
  }
  try {
    write_ready_file(ready_file, {{"endpoint", shell->endpoint()}, {"ops_stream", shell->ops_stream()}});
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return 1;
  }
  spdlog::info("metrics-aggregator serving on {}, data in {}", shell->endpoint(), data);
  int sig = runtime.run();
  spdlog::info("stopping (signal {})", sig);
  runtime.commit_now();
  return 0;
}

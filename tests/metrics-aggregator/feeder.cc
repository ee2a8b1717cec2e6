// trainyard-metrics-feeder: publishes job.submitted and metric.batch events
// through a durable bus::Publisher exactly as the scheduler and an agent
// would, for the metrics-aggregator's integration tests and benchmarks.
//
// A plan (JSON) names the jobs and the series to publish:
//   {"jobs":   [{"id": 1, "name": "run", "experiment": "sweep", "array_index": 2, "labels": {"lr": "0.1"}}],
//    "series": [{"job": 1, "experiment": "sweep", "metrics": ["loss", "acc"], "steps": 1000,
//                "first_step": 0, "stride": 1, "base": 1.0, "slope": -0.001, "amp": 0.1, "freq": 0.05}]}
// Values: feeder_plan.h metric_value().
#include <cstdio>
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>

#include "bus/publisher.h"
#include "feeder_plan.h"
#include "storage/keys.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/runtime.h"
#include "util/service_main.h"

using namespace trainyard;

int main(int argc, char** argv) {
  block_termination_signals();
  CLI::App app{"trainyard-metrics-feeder: publishes a plan of job.submitted and metric.batch events like an agent"};
  std::string data, bus, replay = "tcp://127.0.0.1:*", instance = "feeder", plan_path, info_file;
  uint32_t points_per_batch = 1000;
  uint32_t batches_per_commit = 16;
  double rate = 0;
  double time_offset_s = 0;
  bool exit_when_done = false;
  app.add_option("--data", data, "RocksDB directory of the feeder's outbox")->required();
  app.add_option("--bus", bus, "bus frontend (XSUB) endpoint")->required();
  app.add_option("--replay", replay, "replay ROUTER endpoint to bind");
  app.add_option("--instance", instance, "stream instance: metric.@INSTANCE, job.@INSTANCE");
  app.add_option("--plan", plan_path, "JSON plan (see the top of feeder.cc)")->required();
  app.add_option("--points-per-batch", points_per_batch, "points per metric.batch event");
  app.add_option("--batches-per-commit", batches_per_commit, "events per outbox commit");
  app.add_option("--rate", rate, "metric.batch events per second (0: as fast as possible)");
  app.add_option("--time-offset-s", time_offset_s, "add this to each point's wall time (negative: in the past)");
  app.add_option("--info", info_file, "write {replay, published, batches, done} JSON here every 100 ms");
  app.add_flag("--exit-when-done", exit_when_done, "exit once every event is published (else serve replay until SIGTERM)");
  CLI11_PARSE(app, argc, argv);
  init_logging("metrics-feeder", "warn");

  std::ifstream in(plan_path);
  auto plan = nlohmann::json::parse(in, nullptr, false);
  if (!in || plan.is_discarded()) {
    std::cerr << "error: cannot read the JSON plan " << plan_path << "\n";
    return 2;
  }
  auto batches = testing_feeder::plan_batches(plan, points_per_batch);
  auto jobs = plan.value("jobs", nlohmann::json::array());
  auto series = plan.value("series", nlohmann::json::array());

  std::vector<std::string> cfs = bus::Publisher::column_families();
  cfs.push_back("state");
  auto opened = storage::Store::open(data, storage::Options{cfs, {}, storage::Durability::kWal});
  if (!opened) {
    std::cerr << "error: " << opened.status().message() << "\n";
    return 3;
  }
  auto& store = **opened;
  auto state_cf = store.cf("state");
  zmq::context_t ctx(1);
  SystemClock clock;
  Runtime runtime(&store);
  rpc::Server server(ctx, replay, "metrics-feeder");
  bus::PublisherOptions o;
  o.instance = instance;
  o.bus_endpoints = {bus};
  o.heartbeat_ms = 200;
  o.outbox_keep_events = 10'000'000;
  bus::Publisher publisher(ctx, store, server, o, clock);
  runtime.watch(server.socket(), [&] { server.poll_in(); });
  runtime.after_commit([&] { server.flush(); });
  publisher.attach(runtime);

  // Progress is committed with the events, so a restarted feeder goes on.
  uint64_t jobs_done = 0, batches_done = 0;
  if (auto v = value_or_throw(store.get(state_cf, "progress"))) {
    storage::KeyReader r(*v);
    jobs_done = r.u64();
    batches_done = r.u64();
  }
  int64_t offset_ns = static_cast<int64_t>(time_offset_s * 1e9);
  int64_t started_ms = monotonic_ms();
  uint64_t started_batches = batches_done;
  std::vector<fb::MetricPoint> points;

  runtime.each_iteration([&] {
    auto& batch = runtime.batch();
    auto& b = publisher.builder();
    bool changed = false;
    bool more_due = false;
    while (jobs_done < jobs.size()) {
      auto& j = jobs[jobs_done];
      fb::JobSpecT spec;
      spec.name = j.value("name", "");
      spec.user = "feeder";
      spec.account = "feeder";
      spec.experiment = j.value("experiment", "");
      const nlohmann::json labels = j.value("labels", nlohmann::json::object());
      for (auto& [k, v] : labels.items()) {
        auto kv = std::make_unique<fb::KeyValueT>();
        kv->key = k;
        kv->value = v.is_string() ? v.get<std::string>() : v.dump();
        spec.labels.push_back(std::move(kv));
      }
      auto so = fb::JobSpec::Pack(b, &spec);
      auto ev = fb::CreateJobSubmitted(b, j.value("id", uint64_t{0}), so, 0, j.value("array_index", -1), clock.now_ns());
      publisher.append(batch, "job.submitted", fb::Payload::JobSubmitted, ev.Union());
      ++jobs_done;
      changed = true;
    }
    for (uint32_t n = 0; n < batches_per_commit && batches_done < batches.size(); ++n) {
      if (rate > 0) {
        double due = static_cast<double>(monotonic_ms() - started_ms) / 1000.0 * rate;
        if (static_cast<double>(batches_done - started_batches) >= due) break;
        if (n + 1 == batches_per_commit) more_due = true;
      }
      auto& bp = batches[batches_done];
      auto& s = series[bp.series];
      auto metric_names = s.value("metrics", std::vector<std::string>{"value"});
      if (metric_names.empty()) metric_names.push_back("value");
      points.clear();
      int64_t now = clock.now_ns() + offset_ns;
      for (uint64_t i = bp.first; i < bp.first + bp.count; ++i) {
        int64_t step = testing_feeder::step_at(s, i);
        for (size_t m = 0; m < metric_names.size(); ++m) {
          points.emplace_back(step, now, testing_feeder::metric_value(s, m, step), static_cast<uint32_t>(m));
        }
      }
      std::string exp = s.value("experiment", "");
      auto names_o = b.CreateVectorOfStrings(metric_names);
      auto points_o = b.CreateVectorOfStructs(points);
      auto exp_o = b.CreateString(exp);
      auto mb = fb::CreateMetricBatch(b, s.value("job", uint64_t{0}), 1, names_o, points_o, exp_o);
      publisher.append(batch, "metric.batch", fb::Payload::MetricBatch, mb.Union());
      ++batches_done;
      changed = true;
    }
    if (changed) batch.put(state_cf, "progress", storage::Key().u64(jobs_done).u64(batches_done).bytes());
    return batches_done < batches.size() && (rate == 0 || more_due);
  });
  auto info = [&] {
    bool done = batches_done >= batches.size() && jobs_done >= jobs.size();
    write_json_atomic(info_file, {{"replay", server.endpoint()},
                           {"published", publisher.stats().published},
                           {"batches", batches_done},
                           {"total_batches", batches.size()},
                           {"done", done}});
    if (done && exit_when_done) runtime.stop();
  };
  runtime.every(100, info);
  runtime.run();
  info();
  return 0;
}

// bench-metrics_ingest: how many points per second reach the
// metrics-aggregator's RocksDB when agents publish them in metric.batch
// events through the durable bus, against raw RocksDB batched writes of the
// same keys measured in the same run.
//
// Issue 4 targets: >= 1,000,000 points/s, and >= 0.5 of raw RocksDB.
#include <filesystem>
#include <fstream>
#include <iostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/rows.h"
#include "process.h"
#include "rpc/client.h"
#include "storage/store.h"
#include "util/clock.h"

using namespace trainyard;
using namespace trainyard::testing;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

// The points stored for the jobs, or a refusal (which waiting never changes).
Result<uint64_t> stored(rpc::Client& c, uint64_t jobs, uint64_t first_job) {
  uint64_t total = 0;
  for (uint64_t j = first_job; j < first_job + jobs; ++j) {
    auto r = c.call(fb::RequestBody::ListMetrics,
                    [&](flatbuffers::FlatBufferBuilder& b) { return fb::CreateListMetrics(b, j).Union(); });
    if (!r) {
      // Not there yet is Unavailable or NotFound; anything else (a refusal)
      // would never change: say it instead of waiting out the timeout.
      if (r.status().code() == ErrorCode::PermissionDenied || r.status().code() == ErrorCode::InvalidArgument) {
        return r.status();
      }
      continue;
    }
    auto* ms = r->body<fb::MetricSummaries>();
    if (!ms || !ms->metrics()) continue;
    for (auto* m : *ms->metrics()) total += m->count();
  }
  return total;
}

// Raw RocksDB: the same keys and 16-byte values in batches of `batch_points`,
// with the aggregator's durability (WAL) and memtable size.
double raw_rocksdb(const std::string& path, uint64_t jobs, uint64_t steps, const std::vector<std::string>& names,
                   uint64_t batch_points) {
  auto opened = storage::Store::open(path, storage::Options{{"points"}, {}, storage::Durability::kWal});
  if (!opened) throw std::runtime_error(opened.status().message());
  auto& store = **opened;
  auto cf = store.cf("points");
  store.raw()->SetOptions(cf.h, {{"write_buffer_size", std::to_string(128 << 20)}});
  storage::Batch batch;
  std::string value;
  int64_t t0 = monotonic_ms();
  uint64_t n = 0;
  for (uint64_t j = 0; j < jobs; ++j) {
    std::vector<std::string> keys;
    for (auto& name : names) keys.push_back(metrics::series_key(1000 + j, name));
    for (uint64_t s = 0; s < steps; ++s) {
      for (size_t m = 0; m < names.size(); ++m) {
        metrics::encode_point_into(value, 0.5 + static_cast<double>(s), 1'700'000'000'000'000'000 + s);
        batch.put(cf, metrics::point_key(keys[m], static_cast<int64_t>(s)), value);
        if (++n % batch_points == 0) {
          if (auto st = store.commit(batch); !st) throw std::runtime_error(st.message());
        }
      }
    }
  }
  if (auto st = store.commit(batch); !st) throw std::runtime_error(st.message());
  double secs = static_cast<double>(monotonic_ms() - t0) / 1000.0;
  return static_cast<double>(n) / secs;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench-metrics_ingest: points/s from agent metric batches through the bus into the aggregator"};
  uint64_t jobs = 4, steps = 250'000, points_per_batch = 1000;
  std::string names_csv = "loss";
  app.add_option("--jobs", jobs, "jobs reporting (one feeder stream)");
  app.add_option("--steps", steps, "steps per job");
  app.add_option("--points-per-batch", points_per_batch, "points per metric.batch event");
  CLI11_PARSE(app, argc, argv);
  std::vector<std::string> names = {"loss"};
  uint64_t total = jobs * steps * names.size();

  TempDir dir;
  auto bus = start_bus(dir.path());  // throws naming its log if it does not start
  const std::string& frontend = bus.frontend;
  const std::string& backend = bus.backend;
  Process agg({bin("trainyard-metrics-aggregator"), "--ready-file", dir / "ready.json", "--log-level", "warn", "--set",
               "metrics.data=" + (dir / "metrics-db"), "--set", "metrics.endpoint=tcp://127.0.0.1:*", "--set",
               "bus.frontend=" + frontend, "--set", "bus.backend=" + backend},
              dir / "aggregator.log");
  auto ready = wait_json(dir / "ready.json", 20s);
  std::string endpoint = ready.at("endpoint");

  json plan{{"jobs", json::array()}, {"series", json::array()}};
  for (uint64_t j = 0; j < jobs; ++j) {
    plan["jobs"].push_back({{"id", 1000 + j}, {"name", "bench"}, {"experiment", "bench"}});
    plan["series"].push_back({{"job", 1000 + j}, {"metrics", names}, {"steps", steps}, {"base", 0.5}, {"slope", 1.0}});
  }
  std::ofstream(dir / "plan.json") << plan.dump();

  zmq::context_t ctx(1);
  // As the runs' owner (the feeder submits them as user "feeder"): the
  // aggregator lets only the owner, its coordinators and admins read them.
  rpc::Client client(ctx, "metrics-aggregator", endpoint, {5000, 2, "user:feeder", "", nullptr});
  int64_t t0 = monotonic_ms();
  Process feeder({bin("trainyard-metrics-feeder"), "--data", dir / "feeder-db", "--bus", frontend, "--plan",
                  dir / "plan.json", "--points-per-batch", std::to_string(points_per_batch), "--batches-per-commit",
                  "32", "--info", dir / "feeder.json"},
                 dir / "feeder.log");
  uint64_t got = 0;
  int64_t first_ms = 0;
  Status refused;
  bool ok = wait_until(
      [&] {
        auto now = stored(client, jobs, 1000);
        if (!now) {
          refused = now.status();
          return true;
        }
        got = *now;
        if (got > 0 && first_ms == 0) first_ms = monotonic_ms();
        return got >= total;
      },
      300s);
  int64_t t1 = monotonic_ms();
  if (!refused) {
    std::cerr << "ListMetrics refused: " << refused.to_string() << "\n";
    return 1;
  }
  if (!ok) {
    std::cerr << "only " << got << " of " << total << " points arrived; see " << dir.path() << "\n";
    return 1;
  }
  double secs = static_cast<double>(t1 - t0) / 1000.0;
  double rate = static_cast<double>(total) / secs;
  feeder.stop();
  agg.stop();

  double raw = raw_rocksdb(dir / "raw-db", jobs, steps, names, 64 * points_per_batch);
  double ratio = rate / raw;
  std::cout << fmt::format("metrics ingest: {} points ({} jobs x {} steps, {} points per metric.batch)\n", total, jobs,
                           steps, points_per_batch);
  std::cout << fmt::format("  publish -> bus -> aggregator RocksDB: {:.2f} s, {:>12.0f} points/s   target >= 1,000,000   "
                           "ratio {:.2f}x of target  {}\n",
                           secs, rate, rate / 1e6, rate >= 1e6 ? "MET" : "MISSED");
  std::cout << fmt::format("  raw RocksDB batched writes, same keys:      {:>12.0f} points/s\n", raw);
  std::cout << fmt::format("  aggregator / raw RocksDB:                   {:>12.2f}            target >= 0.50   "
                           "ratio {:.2f}x of target  {}\n",
                           ratio, ratio / 0.5, ratio >= 0.5 ? "MET" : "MISSED");
  return 0;
}

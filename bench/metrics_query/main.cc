// bench-metrics_query: request latency, through the metrics-aggregator's
// ROUTER, of (1) a 1,000,000-point series downsampled to 1,000 points and
// (2) a comparison of 100 runs of an experiment. Prints p50/p99.
//
// Issue 4 targets: p99 <= 20 ms (series), p99 <= 50 ms (comparison).
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "process.h"
#include "rpc/client.h"
#include "util/clock.h"

using namespace trainyard;
using namespace trainyard::testing;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

// The points stored for the job, or a refusal (which waiting never changes).
Result<uint64_t> count(rpc::Client& c, uint64_t job) {
  auto r = c.call(fb::RequestBody::ListMetrics,
                  [&](flatbuffers::FlatBufferBuilder& b) { return fb::CreateListMetrics(b, job).Union(); });
  if (!r) {
    // Not there yet is Unavailable or NotFound; a refusal would never change.
    if (r.status().code() == ErrorCode::PermissionDenied || r.status().code() == ErrorCode::InvalidArgument) {
      return r.status();
    }
    return uint64_t{0};
  }
  uint64_t n = 0;
  if (auto* ms = r->body<fb::MetricSummaries>(); ms && ms->metrics()) {
    for (auto* m : *ms->metrics()) n += m->count();
  }
  return n;
}

double now_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double pct(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

void report(const char* what, const std::vector<double>& ms, double limit) {
  double p50 = pct(ms, 0.5), p99 = pct(ms, 0.99);
  std::cout << fmt::format("  {:<44} p50 {:7.2f} ms  p99 {:7.2f} ms   limit p99 <= {:.0f} ms   ratio {:.2f}  {}\n", what,
                           p50, p99, limit, p99 / limit, p99 <= limit ? "MET" : "MISSED");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench-metrics_query: p50/p99 of a downsampled 1M-point series and a 100-run comparison"};
  uint64_t points = 1'000'000, runs = 100, run_steps = 1000, iterations = 300;
  app.add_option("--points", points, "points in the long series");
  app.add_option("--runs", runs, "runs in the compared experiment");
  app.add_option("--iterations", iterations, "requests timed per query kind");
  CLI11_PARSE(app, argc, argv);

  TempDir dir;
  auto bus = start_bus(dir.path());
  const std::string& frontend = bus.frontend;
  const std::string& backend = bus.backend;
  Process agg({bin("trainyard-metrics-aggregator"), "--ready-file", dir / "ready.json", "--log-level", "warn", "--set",
               "metrics.data=" + (dir / "metrics-db"), "--set", "metrics.endpoint=tcp://127.0.0.1:*", "--set",
               "bus.frontend=" + frontend, "--set", "bus.backend=" + backend},
              dir / "aggregator.log");
  std::string endpoint = wait_json(dir / "ready.json", 20s).at("endpoint");

  // One long noisy series (job 1) and `runs` runs of experiment "sweep".
  json plan{{"jobs", json::array()}, {"series", json::array()}};
  plan["jobs"].push_back({{"id", 1}, {"name", "long"}});
  plan["series"].push_back({{"job", 1}, {"metrics", {"loss"}}, {"steps", points}, {"base", 2.0}, {"slope", -1e-6},
                            {"amp", 0.3}, {"freq", 0.013}});
  for (uint64_t i = 0; i < runs; ++i) {
    plan["jobs"].push_back({{"id", 100 + i},
                            {"name", "sweep"},
                            {"experiment", "sweep"},
                            {"array_index", i},
                            {"labels", {{"lr", std::to_string(i)}, {"batch", "64"}, {"model", "resnet50"}}}});
    plan["series"].push_back({{"job", 100 + i}, {"metrics", {"val_acc", "loss"}}, {"steps", run_steps},
                              {"base", 0.5 + 0.001 * static_cast<double>(i)}, {"amp", 0.1}, {"freq", 0.01 * (i % 7 + 1)}});
  }
  std::ofstream(dir / "plan.json") << plan.dump();
  Process feeder({bin("trainyard-metrics-feeder"), "--data", dir / "feeder-db", "--bus", frontend, "--plan",
                  dir / "plan.json", "--info", dir / "feeder.json"},
                 dir / "feeder.log");
  zmq::context_t ctx(1);
  // As the runs' owner (the feeder submits them as user "feeder"): the
  // aggregator lets only the owner, its coordinators and admins read them.
  rpc::Client client(ctx, "metrics-aggregator", endpoint, {10000, 2, "user:feeder", "", nullptr});
  Status refused;
  auto at_least = [&](uint64_t job, uint64_t n) {
    auto got = count(client, job);
    if (!got) refused = got.status();
    return got && *got >= n;
  };
  bool ok = wait_until(
      [&] { return (at_least(1, points) && at_least(100 + runs - 1, 2 * run_steps)) || !refused; }, 300s);
  if (!refused) {
    std::cerr << "ListMetrics refused: " << refused.to_string() << "\n";
    return 1;
  }
  if (!ok) {
    std::cerr << "the data did not arrive; see " << dir.path() << "\n";
    return 1;
  }
  feeder.stop();

  std::cout << fmt::format("metrics query: a {}-point series, {} runs x {} steps; {} timed requests each\n", points,
                           runs, run_steps, iterations);
  std::mt19937_64 rng(1);
  std::vector<double> whole, ranged, compare;
  uint64_t returned = 0;
  for (uint64_t i = 0; i < iterations; ++i) {
    double t = now_ms();
    auto r = client.call(fb::RequestBody::QuerySeries, [&](flatbuffers::FlatBufferBuilder& b) {
      return fb::CreateQuerySeriesDirect(b, 1, "loss", INT64_MIN, INT64_MAX, 1000).Union();
    });
    whole.push_back(now_ms() - t);
    if (!r) {
      std::cerr << r.status().to_string() << "\n";
      return 1;
    }
    returned = r->body<fb::Series>()->steps()->size();

    int64_t lo = static_cast<int64_t>(rng() % points), hi = static_cast<int64_t>(rng() % points);
    if (lo > hi) std::swap(lo, hi);
    t = now_ms();
    auto rr = client.call(fb::RequestBody::QuerySeries, [&](flatbuffers::FlatBufferBuilder& b) {
      return fb::CreateQuerySeriesDirect(b, 1, "loss", lo, hi, 1000).Union();
    });
    ranged.push_back(now_ms() - t);

    t = now_ms();
    auto c = client.call(fb::RequestBody::CompareRuns, [&](flatbuffers::FlatBufferBuilder& b) {
      return fb::CreateCompareRunsDirect(b, "sweep", nullptr, "val_acc", true).Union();
    });
    compare.push_back(now_ms() - t);
    if (!c || c->body<fb::Comparison>()->rows()->size() != runs) {
      std::cerr << "comparison did not return " << runs << " rows\n";
      return 1;
    }
  }
  report(fmt::format("series {} pts -> {} pts (whole)", points, returned).c_str(), whole, 20);
  report("series, random step range -> <= 1000 pts", ranged, 20);
  report(fmt::format("comparison of {} runs (val_acc, max)", runs).c_str(), compare, 50);
  return 0;
}

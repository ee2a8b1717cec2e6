// Integration tests of trainyard-metrics-aggregator: a real bus forwarder, a
// real aggregator and trainyard-metrics-feeder publishing job.submitted and
// metric.batch through the durable bus as the scheduler and an agent would.
#define BOOST_TEST_MODULE metrics_aggregator
#include <boost/test/unit_test.hpp>

#include <signal.h>

#include <filesystem>
#include <fstream>
#include <map>

#include <zmq.hpp>

#include "bus/event.h"
#include "feeder_plan.h"
#include "process.h"
#include "rpc/client.h"

using namespace trainyard;
using namespace trainyard::testing;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

struct Metric {
  uint64_t count = 0;
  double last = 0, min = 0, max = 0;
  int64_t last_step = 0, min_step = 0, max_step = 0;
};

struct SeriesReply {
  std::vector<int64_t> steps;
  std::vector<double> values;
  uint64_t total = 0;
};

struct Cluster {
  TempDir dir;
  zmq::context_t ctx{1};
  std::unique_ptr<Process> bus;
  std::unique_ptr<Process> aggregator;
  std::unique_ptr<Process> feeder;
  std::string frontend, backend, endpoint;
  std::vector<std::string> sets;
  int restarts = 0;

  explicit Cluster(std::vector<std::string> extra_sets = {}) : sets(std::move(extra_sets)) {
    auto started = start_bus(dir.path());
    bus = std::move(started.process);
    frontend = started.frontend;
    backend = started.backend;
    start_aggregator();
  }

  void start_aggregator() {
    std::string ready = dir / ("ready-" + std::to_string(restarts) + ".json");
    std::vector<std::string> argv = {bin("trainyard-metrics-aggregator"), "--ready-file", ready,
                                     "--set", "metrics.data=" + (dir / "metrics-db"),
                                     "--set", "metrics.endpoint=tcp://127.0.0.1:*",
                                     "--set", "bus.frontend=" + frontend,
                                     "--set", "bus.backend=" + backend};
    for (auto& s : sets) {
      argv.push_back("--set");
      argv.push_back(s);
    }
    aggregator = std::make_unique<Process>(argv, dir / "aggregator.log");
    auto j = wait_json(ready, 20s);
    endpoint = j.at("endpoint").get<std::string>();
    BOOST_TEST(j.at("pid").get<int>() == aggregator->pid());
    ++restarts;
  }

  // Starts a feeder named `name` (its stream instance, data and files).
  void start_feeder(const json& plan, std::vector<std::string> extra = {}, const std::string& name = "feeder") {
    std::string path = dir / (name + "-plan.json");
    std::ofstream(path) << plan.dump();
    std::vector<std::string> argv = {bin("trainyard-metrics-feeder"), "--data", dir / (name + "-db"), "--bus", frontend,
                                     "--plan", path, "--info", dir / (name + ".json"), "--instance", name};
    argv.insert(argv.end(), extra.begin(), extra.end());
    feeder = std::make_unique<Process>(argv, dir / (name + ".log"));
  }

  rpc::Client client() { return rpc::Client(ctx, "metrics-aggregator", endpoint, {5000, 2, "", "", nullptr}); }

  std::map<std::string, Metric> list(uint64_t job) {
    auto c = client();
    auto r = c.call(fb::RequestBody::ListMetrics,
                    [&](flatbuffers::FlatBufferBuilder& b) { return fb::CreateListMetrics(b, job).Union(); });
    std::map<std::string, Metric> out;
    if (!r) return out;
    auto* ms = r->body<fb::MetricSummaries>();
    if (!ms || !ms->metrics()) return out;
    for (auto* m : *ms->metrics()) {
      out[m->name()->str()] = Metric{m->count(), m->last(), m->min(), m->max(), m->last_step(), m->min_step(), m->max_step()};
    }
    return out;
  }

  uint64_t count(uint64_t job, const std::string& name) {
    auto l = list(job);
    auto it = l.find(name);
    return it == l.end() ? 0 : it->second.count;
  }

  Result<SeriesReply> series(uint64_t job, const std::string& name, uint32_t max_points, int64_t from = INT64_MIN,
                             int64_t to = INT64_MAX) {
    auto c = client();
    auto r = c.call(fb::RequestBody::QuerySeries, [&](flatbuffers::FlatBufferBuilder& b) {
      return fb::CreateQuerySeriesDirect(b, job, name.c_str(), from, to, max_points).Union();
    });
    if (!r) return r.status();
    auto* s = r->body<fb::Series>();
    SeriesReply out;
    if (s->steps()) out.steps.assign(s->steps()->begin(), s->steps()->end());
    if (s->values()) out.values.assign(s->values()->begin(), s->values()->end());
    out.total = s->total_points();
    return out;
  }
};

json one_series_plan(uint64_t job, std::vector<std::string> metrics, uint64_t steps) {
  return json{{"jobs", json::array({{{"id", job}, {"name", "train"}, {"experiment", "e"}}})},
              {"series", json::array({{{"job", job},
                                       {"metrics", metrics},
                                       {"steps", steps},
                                       {"base", 1.0},
                                       {"slope", -0.0005},
                                       {"amp", 0.2},
                                       {"freq", 0.37}}})}};
}

}  // namespace

BOOST_AUTO_TEST_CASE(three_metrics_over_1000_steps_are_all_queryable_in_order) {
  Cluster c;
  auto plan = one_series_plan(7, {"loss", "val_acc", "lr"}, 1000);
  c.start_feeder(plan, {"--points-per-batch", "300"});
  BOOST_REQUIRE(wait_until(
      [&] {
        auto l = c.list(7);
        return l.size() == 3 && l["loss"].count == 1000 && l["val_acc"].count == 1000 && l["lr"].count == 1000;
      },
      30s));
  auto& s = plan["series"][0];
  std::vector<std::string> names = {"loss", "val_acc", "lr"};
  for (size_t m = 0; m < names.size(); ++m) {
    auto r = c.series(7, names[m], 1000);
    BOOST_REQUIRE(r.ok());
    BOOST_TEST(r->total == 1000u);
    BOOST_REQUIRE(r->steps.size() == 1000u);
    for (size_t i = 0; i < 1000; ++i) {
      BOOST_TEST(r->steps[i] == static_cast<int64_t>(i));
      BOOST_TEST(r->values[i] == testing_feeder::metric_value(s, m, static_cast<int64_t>(i)));
    }
    // Downsampled: fewer points, still the extremes.
    auto l = c.list(7)[names[m]];
    auto d = c.series(7, names[m], 50);
    BOOST_REQUIRE(d.ok());
    BOOST_TEST(d->steps.size() <= 50u);
    BOOST_TEST(d->total == 1000u);
    BOOST_TEST((std::find(d->steps.begin(), d->steps.end(), l.min_step) != d->steps.end()));
    BOOST_TEST((std::find(d->steps.begin(), d->steps.end(), l.max_step) != d->steps.end()));
    BOOST_TEST(std::is_sorted(d->steps.begin(), d->steps.end()));
  }
  auto loss = c.list(7)["loss"];
  BOOST_TEST(loss.last_step == 999);
  BOOST_TEST(loss.last == testing_feeder::metric_value(s, 0, 999));

  // Errors a user can act on.
  auto missing = c.series(7, "nope", 100);
  BOOST_TEST(!missing.ok());
  BOOST_TEST((missing.status().code() == ErrorCode::NotFound));
  BOOST_TEST(missing.status().message().find("nope") != std::string::npos);
  auto bad = c.series(7, "loss", 1);
  BOOST_TEST((bad.status().code() == ErrorCode::InvalidArgument));
  auto cl = c.client();
  auto pong = cl.call(fb::RequestBody::Ping);
  BOOST_REQUIRE(pong.ok());
  BOOST_TEST(pong->body<fb::Pong>()->service()->str() == "metrics-aggregator");
}

BOOST_AUTO_TEST_CASE(a_five_run_comparison_is_ranked_best_first_with_labels) {
  Cluster c;
  // Five runs of one experiment; run i peaks at base + amp, final values differ.
  std::vector<double> base = {0.60, 0.82, 0.71, 0.90, 0.55};
  json plan{{"jobs", json::array()}, {"series", json::array()}};
  for (int i = 0; i < 5; ++i) {
    plan["jobs"].push_back({{"id", 100 + i},
                            {"name", "sweep"},
                            {"experiment", "lr-sweep"},
                            {"array_index", i},
                            {"labels", {{"lr", std::to_string(0.1 * (i + 1)).substr(0, 3)}, {"seed", "1"}}}});
    plan["series"].push_back({{"job", 100 + i},
                              {"experiment", "lr-sweep"},
                              {"metrics", {"val_acc"}},
                              {"steps", 200},
                              {"base", base[i]},
                              {"slope", 0.0001 * i},
                              {"amp", 0.05},
                              {"freq", 0.1}});
  }
  plan["jobs"].push_back({{"id", 999}, {"name", "other"}, {"experiment", "elsewhere"}});
  c.start_feeder(plan);
  BOOST_REQUIRE(wait_until(
      [&] {
        for (int i = 0; i < 5; ++i) {
          if (c.count(100 + i, "val_acc") != 200) return false;
        }
        return true;
      },
      30s));
  // The expected order, from the same values the feeder published.
  auto best = [&](int i, bool maximize) {
    double b = maximize ? -1e9 : 1e9;
    for (int64_t s = 0; s < 200; ++s) {
      double v = testing_feeder::metric_value(plan["series"][i], 0, s);
      b = maximize ? std::max(b, v) : std::min(b, v);
    }
    return b;
  };
  for (bool maximize : {true, false}) {
    std::vector<int> want = {0, 1, 2, 3, 4};
    std::sort(want.begin(), want.end(), [&](int a, int b) {
      return maximize ? best(a, true) > best(b, true) : best(a, false) < best(b, false);
    });
    auto cl = c.client();
    auto r = cl.call(fb::RequestBody::CompareRuns, [&](flatbuffers::FlatBufferBuilder& b) {
      return fb::CreateCompareRunsDirect(b, "lr-sweep", nullptr, "val_acc", maximize).Union();
    });
    BOOST_REQUIRE(r.ok());
    auto* cmp = r->body<fb::Comparison>();
    BOOST_REQUIRE(cmp->rows()->size() == 5u);
    for (size_t k = 0; k < 5; ++k) {
      auto* row = cmp->rows()->Get(static_cast<flatbuffers::uoffset_t>(k));
      int i = want[k];
      BOOST_TEST(row->job_id() == static_cast<uint64_t>(100 + i));
      BOOST_TEST(row->best_value() == best(i, maximize));
      BOOST_TEST(row->final_step() == 199);
      BOOST_TEST(row->final_value() == testing_feeder::metric_value(plan["series"][i], 0, 199));
      BOOST_TEST(row->name()->str() == "sweep[" + std::to_string(i) + "]");
      BOOST_REQUIRE(row->labels()->size() == 2u);
      std::map<std::string, std::string> labels;
      for (auto* kv : *row->labels()) labels[kv->key()->str()] = kv->value()->str();
      BOOST_TEST(labels["lr"] == std::to_string(0.1 * (i + 1)).substr(0, 3));
      BOOST_TEST(labels["seed"] == "1");
    }
  }
  // A list of jobs instead of an experiment; runs without the metric are left out.
  auto cl = c.client();
  std::vector<uint64_t> ids = {104, 101, 999};
  auto r = cl.call(fb::RequestBody::CompareRuns, [&](flatbuffers::FlatBufferBuilder& b) {
    return fb::CreateCompareRunsDirect(b, nullptr, &ids, "val_acc", true).Union();
  });
  BOOST_REQUIRE(r.ok());
  auto* rows = r->body<fb::Comparison>()->rows();
  BOOST_REQUIRE(rows->size() == 2u);
  BOOST_TEST(rows->Get(0)->job_id() == (best(1, true) > best(4, true) ? 101u : 104u));
  auto unknown = cl.call(fb::RequestBody::CompareRuns, [&](flatbuffers::FlatBufferBuilder& b) {
    return fb::CreateCompareRunsDirect(b, "no-such-experiment", nullptr, "val_acc", true).Union();
  });
  BOOST_TEST((unknown.status().code() == ErrorCode::NotFound));
}

BOOST_AUTO_TEST_CASE(sigkill_during_ingest_of_a_million_points_stores_each_exactly_once) {
  Cluster c;
  constexpr uint64_t kPoints = 1'000'000;
  c.start_feeder(one_series_plan(42, {"loss"}, kPoints), {"--points-per-batch", "1000", "--rate", "150"});
  BOOST_REQUIRE(wait_until([&] { return c.count(42, "loss") >= 150'000; }, 60s));
  uint64_t before = c.count(42, "loss");
  BOOST_TEST_MESSAGE("killing the aggregator at " << before << " points");
  c.aggregator->kill9();
  BOOST_REQUIRE(c.aggregator->wait(10s).has_value());
  BOOST_TEST(before < kPoints, "ingest finished before the kill: the test proves nothing");
  c.start_aggregator();
  BOOST_REQUIRE(wait_until([&] { return c.count(42, "loss") >= kPoints; }, 90s));
  // Every event published, then the aggregator caught up: still exactly 1M.
  wait_json(c.dir / "feeder.json", 30s, [](const json& j) { return j.value("done", false); });
  auto whole = c.series(42, "loss", 1000);
  BOOST_REQUIRE(whole.ok());
  BOOST_TEST(whole->total == kPoints);  // summed from the rollups, independent of the summary count
  BOOST_TEST(whole->steps.size() <= 1000u);
  BOOST_TEST(c.count(42, "loss") == kPoints);
  auto slice = c.series(42, "loss", 1000, 500'000, 500'999);
  BOOST_REQUIRE(slice.ok());
  BOOST_REQUIRE(slice->steps.size() == 1000u);
  for (size_t i = 0; i < 1000; ++i) BOOST_TEST(slice->steps[i] == static_cast<int64_t>(500'000 + i));
}

BOOST_AUTO_TEST_CASE(raw_points_past_retention_are_dropped_and_rollups_still_answer) {
  Cluster c({"metrics.raw_retention_s=60", "metrics.retention_check_s=1"});
  auto plan = one_series_plan(9, {"loss"}, 2000);
  c.start_feeder(plan, {"--time-offset-s", "-3600"});
  BOOST_REQUIRE(wait_until([&] { return c.count(9, "loss") == 2000; }, 30s));
  // Asking for every point: once raw points are gone, the answer is the
  // downsampled shape of the rollups, still with the extremes.
  BOOST_REQUIRE(wait_until(
      [&] {
        auto r = c.series(9, "loss", 2000);
        return r.ok() && r->steps.size() < 2000;
      },
      30s));
  auto l = c.list(9)["loss"];
  BOOST_TEST(l.count == 2000u);
  auto r = c.series(9, "loss", 2000);
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(r->total == 2000u);
  BOOST_TEST((std::find(r->steps.begin(), r->steps.end(), l.min_step) != r->steps.end()));
  BOOST_TEST((std::find(r->steps.begin(), r->steps.end(), l.max_step) != r->steps.end()));
  // The newest block keeps its raw points (appends still go there).
  auto tail = c.series(9, "loss", 100, 1995, 1999);
  BOOST_REQUIRE(tail.ok());
  BOOST_TEST(tail->steps.size() == 5u);
}

BOOST_AUTO_TEST_CASE(ops_metrics_report_ingest_and_a_report_sent_again_is_stored_once) {
  Cluster c({"metrics.ops_interval_ms=200"});
  zmq::socket_t sub(c.ctx, zmq::socket_type::sub);
  sub.set(zmq::sockopt::subscribe, "ops.metrics.metrics-aggregator");
  sub.set(zmq::sockopt::rcvtimeo, 500);
  sub.connect(c.backend);
  auto plan = one_series_plan(3, {"a", "b"}, 500);
  c.start_feeder(plan);
  BOOST_REQUIRE(wait_until([&] { return c.count(3, "b") == 500; }, 30s));
  // The same points again on another stream (an agent re-reading a job's
  // metrics file after a restart): recognised, not counted twice.
  auto first = std::move(c.feeder);
  c.start_feeder(plan, {}, "again");
  std::map<std::string, double> gauges;
  BOOST_REQUIRE(wait_until(
      [&] {
        zmq::message_t topic, body;
        if (!sub.recv(topic)) return false;
        (void)sub.recv(body);
        auto e = bus::verify_event(topic.to_string_view(), {static_cast<const uint8_t*>(body.data()), body.size()});
        if (!e) return false;
        auto* ops = e->as<fb::OpsMetrics>();
        if (!ops || !ops->gauges()) return false;
        for (auto* g : *ops->gauges()) gauges[g->name()->str()] = g->value();
        return gauges["points_duplicate_total"] == 1000;
      },
      20s));
  BOOST_TEST(gauges["points_total"] == 1000);
  BOOST_TEST(gauges["series"] == 2);
  BOOST_TEST(c.count(3, "a") == 500u);
  BOOST_TEST(gauges.count("ingest_points_per_s") == 1u);
  BOOST_TEST(gauges.count("lag_s") == 1u);
}

BOOST_AUTO_TEST_CASE(help_names_the_service) {
  auto [rc, out] = run({bin("trainyard-metrics-aggregator"), "--help"});
  BOOST_TEST(rc == 0);
  BOOST_TEST(out.find("ListMetrics") != std::string::npos);
}

// The gateway in front of a whole local Trainyard (bus, scheduler, broker,
// agent, metrics-aggregator, billing) running a real training script: REST
// bodies, live events over SSE, logs, comparisons, usage, /metrics, cancel,
// and the dashboard in headless Chromium. The cases share one Trainyard and
// read it in order, so they stay in this one file.
#include <boost/test/unit_test.hpp>

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "gateway_support.h"
#include "process.h"
#include "prom_check.h"

using namespace trainyard::testing;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

// Every service of a local Trainyard, each a real process on free ports.
class LocalTrainyard {
 public:
  LocalTrainyard() {
    auto bus = start_bus(dir_.path());
    procs_.emplace_back("bus", std::move(bus.process));
    frontend_ = bus.frontend;
    backend_ = bus.backend;
    broker = service("resource-broker", "broker", {"broker.node_timeout_ms=5000"});
    scheduler = service("scheduler", "scheduler", {"broker.endpoint=" + broker});
    metrics = service("metrics-aggregator", "metrics", {});
    std::string rates = std::string(TY_SOURCE_DIR) + "/services/billing/rates.example.toml";
    billing = service("billing", "billing", {"billing.rates=" + rates, "billing.currency=EUR"});
    agent_ = service("agent", "agent",
                     {"agent.node=node-a", "agent.gpus=[{type=\"A100\",memory_gb=80},{type=\"A100\",memory_gb=80}]",
                      "agent.runs_dir=" + (dir_ / "runs"), "agent.cpus=8", "agent.memory_mb=32768",
                      "broker.endpoint=" + broker, "agent.usage_tick_ms=500", "agent.sample_ms=500"});
    gateway = std::make_unique<Gateway>(
        dir_,
        std::vector<std::string>{"bus.backend=" + backend_, "scheduler.endpoint=" + scheduler,
                                 "broker.endpoint=" + broker, "metrics.endpoint=" + metrics,
                                 "billing.endpoint=" + billing, "gateway.keepalive_ms=300"},
        "gateway", std::string(TY_BUILD_DIR) + "/web/dist");
    ana = gateway->token_for("ana");
    bob = gateway->token_for("bob");
  }
  ~LocalTrainyard() {
    gateway.reset();
    for (auto it = procs_.rbegin(); it != procs_.rend(); ++it) it->second->stop(3000ms);
    kill_processes_mentioning(dir_.path());
  }
  std::string logs() const {
    std::string out;
    for (auto& [name, p] : procs_) {
      auto log = p->log();
      if (log.size() > 3000) log = "..." + log.substr(log.size() - 3000);
      out += "---- " + name + " ----\n" + log + "\n";
    }
    if (gateway) out += "---- gateway ----\n" + gateway->proc->log();
    return out;
  }
  const TempDir& dir() const { return dir_; }

  std::string scheduler, broker, metrics, billing;
  std::unique_ptr<Gateway> gateway;
  std::string ana, bob;  // API tokens of two users

 private:
  void start(const std::string& name, std::vector<std::string> argv) {
    procs_.emplace_back(name, std::make_unique<Process>(argv, dir_ / (name + ".log")));
  }
  std::string service(const std::string& binary, const std::string& key, std::vector<std::string> sets) {
    std::vector<std::string> argv{bin("trainyard-" + binary), "--ready-file", dir_ / (key + ".ready")};
    sets.push_back("bus.frontend=" + frontend_);
    sets.push_back("bus.backend=" + backend_);
    if (key != "agent") {
      sets.push_back(key + ".endpoint=tcp://127.0.0.1:*");
      sets.push_back(key + ".data=" + (dir_ / (key + ".db")));
    } else {
      sets.push_back("agent.data=" + (dir_ / "agent.db"));
    }
    for (auto& s : sets) {
      argv.push_back("--set");
      argv.push_back(s);
    }
    start(key, argv);
    auto ready = wait_json(dir_ / (key + ".ready"), 20s);
    return ready.value("endpoint", "");
  }

  TempDir dir_;
  std::string frontend_, backend_, agent_;
  std::vector<std::pair<std::string, std::unique_ptr<Process>>> procs_;
};

// One local Trainyard for the cases that need it (starting one takes a few
// seconds; the cases read it in order).
LocalTrainyard& cluster() {
  static std::unique_ptr<LocalTrainyard> c;
  if (!c) c = std::make_unique<LocalTrainyard>();
  return *c;
}

struct Shared {
  uint64_t array_job_id = 0;
  std::vector<uint64_t> jobs;
  uint64_t best_job = 0;
  std::string experiment = "moons";
  std::vector<std::string> sse_lines;
};
Shared& shared() {
  static Shared s;
  return s;
}

json job_of(Http& http, uint64_t id) { return http.get("/api/v1/jobs/" + std::to_string(id)).body; }

bool chromium_present() { return std::filesystem::exists("/usr/bin/chromium"); }

}  // namespace

BOOST_AUTO_TEST_CASE(a_whole_local_trainyard_through_the_rest_api_sse_and_metrics) {
  auto& c = cluster();
  auto& s = shared();
  Http http(c.gateway->url, c.ana);

  // The agent's node and its two GPUs reach the overview.
  BOOST_REQUIRE_MESSAGE(wait_until(
                            [&] {
                              auto r = http.get("/api/v1/cluster");
                              return r.status == 200 && r.body["gpus"]["total"] == 2;
                            },
                            20s),
                        c.logs());
  auto summary = http.get("/api/v1/cluster").body;
  BOOST_TEST(summary["gpus"]["by_type"]["A100"]["total"] == 2);
  BOOST_TEST(summary["nodes"]["up"] == 1);
  auto nodes = http.get("/api/v1/nodes").body["nodes"];
  BOOST_REQUIRE(nodes.size() == 1u);
  BOOST_TEST(nodes[0]["name"] == "node-a");
  BOOST_TEST(nodes[0]["gpus"].size() == 2u);

  // Live events: an SSE client from before the submit.
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::string sse;
  // Joined however the case ends (a failed REQUIRE throws past it).
  struct Joiner {
    std::atomic<bool>& stop;
    std::thread t;
    ~Joiner() {
      stop = true;
      if (t.joinable()) t.join();
    }
  } reader{stop, std::thread([&] {
    httplib::Client cli(c.gateway->url);
    cli.set_read_timeout(30, 0);
    cli.set_bearer_token_auth(c.ana.c_str());
    cli.Get("/api/v1/events?kinds=job,run", [&](const char* data, size_t n) {
      std::lock_guard lock(mu);
      sse.append(data, n);
      return !stop.load();
    });
  })};
  BOOST_REQUIRE(wait_until(
      [&] {
        std::lock_guard lock(mu);
        return sse.find("event: hello") != std::string::npos;
      },
      10s));

  // A real training script as an array of three hyperparameter variants.
  std::string script = std::string(TY_SOURCE_DIR) + "/examples/train.py";
  json spec{{"name", "moons-sweep"},
            {"command", {"python3", script, "--steps", "120", "--eval-every", "10", "--grid", "0.5:8,0.02:2,2.0:16",
                         "--sleep", "0.01"}},
            {"account", "vision"},
            {"experiment", s.experiment},
            {"array", "0-2"},
            {"gpus", 1},
            {"gpu_type", "A100"},
            {"labels", {{"sweep", "lr-hidden"}}},
            {"time_limit_s", 300}};
  auto sub = http.post("/api/v1/jobs", spec.dump());
  BOOST_REQUIRE_MESSAGE(sub.status == 201, sub.text << c.logs());
  BOOST_TEST(sub.body["user"] == "ana");
  for (auto& id : sub.body["job_ids"]) s.jobs.push_back(id.get<uint64_t>());
  BOOST_REQUIRE(s.jobs.size() == 3u);
  s.array_job_id = sub.body["array_job_id"].get<uint64_t>();

  bool done = wait_until(
      [&] {
        for (auto id : s.jobs) {
          if (job_of(http, id).value("state", "") != "succeeded") return false;
        }
        return true;
      },
      90s);
  BOOST_REQUIRE_MESSAGE(done, http.get("/api/v1/jobs").text << c.logs());

  // A job with its history.
  auto j = job_of(http, s.jobs[0]);
  BOOST_TEST(j["user"] == "ana");
  BOOST_TEST(j["account"] == "vision");
  BOOST_TEST(j["experiment"] == s.experiment);
  BOOST_TEST(j["nodes"][0] == "node-a");
  BOOST_TEST(j["terminal"] == true);
  BOOST_TEST(j["spec"]["labels"]["sweep"] == "lr-hidden");
  std::vector<std::string> states;
  for (auto& t : j["history"]) states.push_back(t["state"]);
  BOOST_REQUIRE(!states.empty());
  BOOST_TEST(states.front() == "pending");
  BOOST_TEST(states.back() == "succeeded");
  BOOST_TEST((std::find(states.begin(), states.end(), "running") != states.end()));
  BOOST_TEST(http.get("/api/v1/jobs/999999").status == 404);

  // Filters.
  auto mine = http.get("/api/v1/jobs?user=ana&state=Succeeded&experiment=" + s.experiment).body;
  BOOST_TEST(mine["count"] == 3);
  BOOST_TEST(http.get("/api/v1/jobs?user=nobody").body["count"] == 0);
  BOOST_TEST(http.get("/api/v1/jobs?account=vision&state=Running,Pending").body["count"] == 0);
  BOOST_TEST(http.get("/api/v1/jobs?array=" + std::to_string(s.array_job_id)).body["count"] == 3);

  // Logs: the script's first line, as a tail and from an offset.
  auto log = http.get("/api/v1/jobs/" + std::to_string(s.jobs[0]) + "/logs");
  BOOST_REQUIRE_MESSAGE(log.status == 200, log.text);
  BOOST_TEST(log.body["data"].get<std::string>().find("job=" + std::to_string(s.jobs[0])) != std::string::npos,
             log.text);
  BOOST_TEST(log.body["finished"] == true);
  auto tail = http.get("/api/v1/jobs/" + std::to_string(s.jobs[0]) + "/logs?tail=10").body;
  BOOST_TEST(tail["data"].get<std::string>().size() <= 10u);
  BOOST_TEST(tail["next_offset"] == tail["size"]);
  // Follow on a finished job: the whole log then "end".
  auto follow = http.get("/api/v1/jobs/" + std::to_string(s.jobs[0]) + "/logs?follow=1&offset=0");
  BOOST_TEST(follow.status == 200);
  BOOST_TEST(follow.text.find("event: log") != std::string::npos, follow.text);
  BOOST_TEST(follow.text.find("event: end") != std::string::npos, follow.text);

  // Metrics: names, a downsampled series, a ranked comparison.
  BOOST_REQUIRE(wait_until(
      [&] {
        auto m = http.get("/api/v1/jobs/" + std::to_string(s.jobs[2]) + "/metrics").body;
        for (auto& x : m["metrics"]) {
          if (x["name"] == "loss" && x["last_step"].get<int64_t>() >= 119) return true;
        }
        return false;
      },
      20s));
  auto series = http.get("/api/v1/jobs/" + std::to_string(s.jobs[0]) + "/series?name=loss&max_points=20").body;
  BOOST_TEST(series["name"] == "loss");
  BOOST_TEST(series["steps"].size() >= 2u);
  BOOST_TEST(series["steps"].size() <= 20u);
  BOOST_TEST(series["steps"].size() == series["values"].size());
  BOOST_TEST(series["total_points"].get<uint64_t>() >= 100u);

  auto exp = http.get("/api/v1/experiments").body["experiments"];
  BOOST_REQUIRE(!exp.empty());
  BOOST_TEST(exp[0]["name"] == s.experiment);
  BOOST_TEST(exp[0]["succeeded"] == 3);
  auto e = http.get("/api/v1/experiments/" + s.experiment).body;
  BOOST_TEST((std::find(e["metrics"].begin(), e["metrics"].end(), "val_acc") != e["metrics"].end()), e.dump());

  auto cmp = http.get("/api/v1/experiments/" + s.experiment + "/compare?metric=loss").body;
  BOOST_TEST(cmp["goal"] == "min");
  BOOST_REQUIRE(cmp["rows"].size() == 3u);
  for (size_t i = 1; i < 3; ++i) {
    BOOST_TEST(cmp["rows"][i - 1]["best_value"].get<double>() <= cmp["rows"][i]["best_value"].get<double>());
  }
  BOOST_TEST(cmp["best_job_id"] == cmp["rows"][0]["job_id"]);
  BOOST_TEST(cmp["rows"][0]["state"] == "succeeded");
  BOOST_TEST(cmp["rows"][0]["params"]["sweep"] == "lr-hidden");
  s.best_job = cmp["best_job_id"].get<uint64_t>();
  auto acc = http.get("/api/v1/compare?metric=val_acc&jobs=" + std::to_string(s.jobs[0]) + "," +
                      std::to_string(s.jobs[1]))
                 .body;
  BOOST_TEST(acc["goal"] == "max");
  BOOST_REQUIRE_MESSAGE(acc["rows"].size() == 2u, acc.dump());
  BOOST_TEST(acc["rows"][0]["best_value"].get<double>() >= acc["rows"][1]["best_value"].get<double>());

  // ty ranks by the same rule as the dashboard (loss lowest first, val_acc
  // highest first) and prints a job exactly as REST does.
  // These services run plaintext (a bare test cluster): so does ty here.
  std::filesystem::create_directories(c.dir().path() + "/.config/trainyard");
  std::ofstream(c.dir().path() + "/.config/trainyard/config.toml") << "[security]\nmode = \"none\"\n";
  auto ty_json = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {bin("ty"), "--scheduler", c.scheduler, "--metrics", c.metrics});
    auto [rc, out] = run(args, 20s, {{"HOME", c.dir().path()}, {"TY_CONFIG", ""}, {"USER", "ana"}});
    BOOST_TEST(rc == 0, out);
    return json::parse(out, nullptr, false);
  };
  auto ids_of = [](const json& rows) {
    std::vector<uint64_t> ids;
    for (auto& r : rows) ids.push_back(r["job_id"].get<uint64_t>());
    return ids;
  };
  auto ty_loss = ty_json({"compare", "--experiment", s.experiment, "--metric", "loss", "--json"});
  BOOST_TEST(ty_loss["goal"] == "min");
  BOOST_TEST(ids_of(ty_loss["runs"]) == ids_of(cmp["rows"]), ty_loss.dump() << " vs " << cmp.dump());
  auto ty_acc = ty_json({"compare", "--jobs", std::to_string(s.jobs[0]) + "," + std::to_string(s.jobs[1]),
                         "--metric", "val_acc", "--json"});
  BOOST_TEST(ty_acc["goal"] == "max");
  BOOST_TEST(ids_of(ty_acc["runs"]) == ids_of(acc["rows"]), ty_acc.dump() << " vs " << acc.dump());
  for (auto id : s.jobs) {
    auto rest = job_of(http, id);
    auto cli = ty_json({"status", std::to_string(id), "--json"});
    for (auto& [k, v] : rest.items()) BOOST_TEST(cli[k] == v, "job " << id << " field " << k << ": ty " << cli[k]);
    for (auto& [k, v] : cli.items()) BOOST_TEST(rest.contains(k), "job " << id << ": ty has " << k << ", REST not");
    BOOST_TEST(rest["state"] == "succeeded");
    BOOST_TEST(rest["history"].back()["time_ms"].get<int64_t>() >= rest["submit_time_ms"].get<int64_t>());
  }

  // Usage and cost: billing charged the account for the GPU time.
  BOOST_REQUIRE_MESSAGE(wait_until(
                            [&] {
                              auto u = http.get("/api/v1/usage?group_by=account").body;
                              for (auto& row : u["rows"]) {
                                if (row["key"] == "vision" && row["gpu_ms"].get<uint64_t>() > 0) return true;
                              }
                              return false;
                            },
                            20s),
                        http.get("/api/v1/usage?group_by=account").text);
  auto usage = http.get("/api/v1/usage?group_by=account&account=vision").body;
  BOOST_TEST(usage["currency"] == "EUR");
  BOOST_TEST(usage["rows"][0]["cost_micros"].get<int64_t>() > 0);
  auto accounts = http.get("/api/v1/accounts").body;
  BOOST_TEST(accounts["accounts"][0]["account"] == "vision");
  BOOST_TEST(accounts["accounts"][0]["month_cost_micros"].get<int64_t>() > 0);
  auto inv = http.get("/api/v1/accounts/vision/invoice").body;
  BOOST_TEST(inv["account"] == "vision");
  BOOST_TEST(inv["total_micros"].get<int64_t>() > 0, inv.dump());
  BOOST_TEST(!inv["lines"].empty());

  // The SSE stream saw every job go through its states.
  BOOST_TEST(wait_until(
      [&] {
        std::lock_guard lock(mu);
        return sse.find("\"to\":\"succeeded\"") != std::string::npos && sse.find("event: run.finished") != std::string::npos;
      },
      10s));
  stop = true;
  reader.t.join();
  {
    std::lock_guard lock(mu);
    BOOST_TEST(sse.find("event: job.submitted") != std::string::npos, sse);
    BOOST_TEST(sse.find("event: node.") == std::string::npos);  // filtered out by kinds
    BOOST_TEST(sse.find("id: ") != std::string::npos);
  }
  auto recent = http.get("/api/v1/events/recent?kinds=job&limit=5").body;
  BOOST_TEST(recent["events"].size() == 5u);
  BOOST_TEST(recent["events"][4]["kind"] == "job");

  // /metrics: strict Prometheus text with the cluster's figures.
  auto m = http.get("/metrics");
  BOOST_TEST(m.status == 200);
  std::string err;
  auto prom = parse_prometheus(m.text, &err);
  BOOST_REQUIRE_MESSAGE(prom, err << "\n" << m.text);
  for (const char* svc : {"scheduler", "resource-broker", "metrics-aggregator", "billing"}) {
    BOOST_TEST(prom->get("trainyard_service_up", {{"service", svc}}) == 1.0, svc);
  }
  BOOST_TEST(prom->get("trainyard_gpus", {{"gpu_type", "A100"}}) == 2.0);
  BOOST_TEST(prom->get("trainyard_gpus_idle", {{"gpu_type", "A100"}}) == 2.0);
  BOOST_TEST(prom->get("trainyard_gpus_allocated", {{"gpu_type", "A100"}}) == 0.0);
  BOOST_TEST(prom->get("trainyard_jobs", {{"state", "succeeded"}}) == 3.0);
  BOOST_TEST(prom->get("trainyard_queue_wait_seconds_count") == 3.0);
  BOOST_TEST(*prom->value("trainyard_account_spend_micros_total", {{"account", "vision"}}) > 0);
  BOOST_TEST(*prom->value("trainyard_gateway_metric_points_seen_total") > 0);
  // The services' own ops.metrics reports arrive within a few seconds.
  BOOST_TEST(wait_until(
      [&] {
        auto p = parse_prometheus(http.get("/metrics").text, &err);
        return p && p->value("trainyard_ops_value", {{"service", "resource-broker"}});
      },
      15s));
  // Prometheus' own linter on the whole scrape, the services' reports
  // included; scripts/deps installs it, and its absence is a failure, not a skip.
  auto [wrc, where] = run({"/bin/sh", "-c", "command -v promtool"});
  BOOST_REQUIRE_MESSAGE(wrc == 0, "promtool is not installed: scripts/deps installs it (Debian package prometheus)");
  std::ofstream(c.dir() / "metrics.txt") << http.get("/metrics").text;
  auto [rc, out] = run({"/bin/sh", "-c", "promtool check metrics < " + (c.dir() / "metrics.txt") + " 2>&1"});
  BOOST_TEST(rc == 0, out);
  BOOST_TEST(out.empty(), "promtool lint warnings: " << out);
}

BOOST_AUTO_TEST_CASE(cancel_through_the_api_stops_a_running_job_and_only_its_owner_may) {
  auto& c = cluster();
  Http http(c.gateway->url, c.ana);
  Http as_bob(c.gateway->url, c.bob);
  auto sub = http.post("/api/v1/jobs", R"({"name":"sleeper","command":["sleep","120"],"account":"vision","time_limit_s":600})");
  BOOST_REQUIRE_MESSAGE(sub.status == 201, sub.text);
  uint64_t id = sub.body["job_ids"][0].get<uint64_t>();
  BOOST_REQUIRE(wait_until([&] { return job_of(http, id).value("state", "") == "running"; }, 30s));
  auto r = as_bob.post("/api/v1/jobs/" + std::to_string(id) + "/cancel", R"({"reason":"test"})");
  BOOST_TEST(r.status == 403, r.text);
  BOOST_TEST(r.body.value("error", "").find("belongs to 'ana'") != std::string::npos, r.text);
  r = http.post("/api/v1/jobs/" + std::to_string(id) + "/cancel", R"({"reason":"enough"})");
  BOOST_TEST(r.status == 202, r.text);
  BOOST_TEST(wait_until([&] { return job_of(http, id).value("state", "") == "cancelled"; }, 30s),
             job_of(http, id).dump());
  // Cancelling again is the scheduler's FailedPrecondition, as a 409.
  r = http.post("/api/v1/jobs/" + std::to_string(id) + "/cancel", "");
  BOOST_TEST((r.status == 409 || r.status == 202), r.text);
  // The scheduler's own validation comes back as a 400.
  r = http.post("/api/v1/jobs", R"({"command":["true"],"gpus":64,"gpu_type":"A100","nodes":0,"time_limit_s":60})");
  BOOST_TEST(r.status / 100 == 4, r.text);
  BOOST_TEST(!r.body.value("error", "").empty());
}

BOOST_AUTO_TEST_CASE(cluster_summaries_come_from_the_job_table_and_equal_the_full_job_list) {
  auto& c = cluster();
  Http http(c.gateway->url, c.ana);
  auto lists_read = [&] {
    std::string err;
    auto p = parse_prometheus(http.get("/metrics").text, &err);
    BOOST_REQUIRE_MESSAGE(p, err);
    return *p->value("trainyard_gateway_job_lists_read_total");
  };
  // The scheduler's stream heartbeats have made the table trusted (seeded once).
  BOOST_REQUIRE(wait_until([&] { return http.get("/api/v1/cluster").status == 200 && lists_read() >= 1; }, 10s));
  double before = lists_read();
  for (int i = 0; i < 20; ++i) BOOST_TEST(http.get("/api/v1/cluster").status == 200);
  for (int i = 0; i < 5; ++i) BOOST_TEST(http.get("/api/v1/experiments").status == 200);
  double after = lists_read();
  BOOST_TEST(after - before <= 2.0, "the scheduler was asked for every job " << after - before << " times in 25 requests");
  // The same counts as the scheduler's own full list.
  auto all = http.get("/api/v1/jobs?limit=1000000").body;
  std::map<std::string, uint64_t> by_state;
  for (auto& j : all["jobs"]) ++by_state[j["state"].get<std::string>()];
  auto summary = http.get("/api/v1/cluster").body;
  BOOST_TEST(summary["jobs"]["total"].get<uint64_t>() == all["count"].get<uint64_t>(), summary.dump());
  for (auto& [state, n] : summary["jobs"]["by_state"].items()) {
    BOOST_TEST(n.get<uint64_t>() == by_state[state], state << ": " << summary.dump());
  }
}

BOOST_AUTO_TEST_CASE(the_dashboard_in_headless_chromium_shows_gpus_charts_and_ranked_runs) {
  auto& s = shared();
  std::string web = std::string(TY_BUILD_DIR) + "/web";  // the build's npm folder (web/CMakeLists.txt)
  if (!chromium_present()) {
    BOOST_TEST_MESSAGE("SKIPPED: the browser test needs Debian's chromium (/usr/bin/chromium): apt-get install chromium");
    return;
  }
  if (run({"/bin/sh", "-c", "command -v node"}).first != 0) {
    BOOST_TEST_MESSAGE("SKIPPED: the browser test needs node (and npm to build the dashboard): apt-get install nodejs npm");
    return;
  }
  BOOST_REQUIRE_MESSAGE(std::filesystem::exists(web + "/node_modules/playwright-core"),
                        "<build>/web/node_modules/playwright-core is missing: build the `web` target (it runs npm ci)");
  BOOST_REQUIRE_MESSAGE(std::filesystem::exists(std::string(TY_BUILD_DIR) + "/web/dist/index.html"),
                        "the dashboard is not built: cmake --build <build> --target web");
  BOOST_REQUIRE_MESSAGE(!s.jobs.empty() && s.best_job != 0, "the REST case must run first (it submits the jobs)");
  auto& c = cluster();
  std::string out = std::string(TY_BUILD_DIR) + "/artifacts/gateway";
  std::filesystem::create_directories(out);
  auto [rc, text] = run({"node", std::string(TY_SOURCE_DIR) + "/tests/gateway/dashboard.mjs", c.gateway->url, out,
                         std::to_string(s.jobs[0]), s.experiment, std::to_string(s.best_job)},
                        90s, {{"TY_WEB_DIR", web}, {"TY_USER", "ana"}, {"TY_TOKEN", c.ana}});
  BOOST_TEST(rc == 0, text);
  BOOST_TEST_MESSAGE(text);
  for (const char* shot : {"login.png", "overview.png", "jobs.png", "job.png", "experiment.png", "accounts.png",
                           "cloud.png"}) {
    BOOST_TEST(std::filesystem::exists(out + "/" + shot), shot);
  }
}

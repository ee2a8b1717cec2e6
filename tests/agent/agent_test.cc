// The node agent as a process: a real trainyard-bus, a real trainyard-agent
// with declared GPUs, and this test playing the broker (BrokerDouble).
#define BOOST_TEST_MODULE agent
#include <boost/test/unit_test.hpp>

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <set>
#include <thread>

#include "agent_cluster.h"

using namespace trainyard;
using namespace trainyard::testing;
using namespace std::chrono_literals;


BOOST_AUTO_TEST_CASE(registers_its_declared_gpus_and_registers_again_when_forgotten) {
  Cluster c;
  auto& b = c.broker();
  BOOST_REQUIRE(wait_until([&] { return b.heartbeats("n1") >= 2; }, 10s));
  auto info = b.node("n1");
  BOOST_REQUIRE(info);
  BOOST_TEST(info->gpus.size() == 4u);
  BOOST_TEST(info->gpus[3]->index == 3u);
  BOOST_TEST(info->gpus[0]->type == "A100");
  BOOST_TEST(info->gpus[0]->memory_mb == 80u * 1024u);
  BOOST_TEST(info->cpus == 16u);
  BOOST_TEST(info->memory_mb == 64000u);
  BOOST_TEST(info->partition == "gpu");
  BOOST_TEST(info->agent_endpoint == c.endpoint());
  BOOST_REQUIRE(info->labels.size() == 1u);
  BOOST_TEST(info->labels[0]->key == "rack");
  BOOST_TEST(!info->simulated);
  int before = b.registrations("n1");
  b.forget("n1");
  BOOST_TEST(wait_until([&] { return b.registrations("n1") > before; }, 5s));
}

BOOST_AUTO_TEST_CASE(runs_a_command_and_reports_its_exit_code_and_logs) {
  Cluster c;
  auto& b = c.broker();
  b.grant(job(1, 101, {"sh", "-c", "echo hello; echo oops >&2; sleep 0.5; echo bye; exit 3"}));
  b.grant(job(2, 102, {"true"}));
  b.grant(job(3, 103, {"/no/such/program"}));
  auto started = c.wait_started(1);
  BOOST_TEST(started.as<fb::RunStarted>()->pid() > 0);
  // While it runs, logs can be read but are not finished.
  BOOST_REQUIRE(wait_until(
      [&] {
        auto r = c.read_log(101, false);
        return r && r->body<fb::LogChunk>()->data()->size() >= 6;
      },
      5s));
  auto early = c.read_log(101, false);
  BOOST_REQUIRE(early);
  BOOST_TEST(!early->body<fb::LogChunk>()->finished());

  auto f_seen = c.wait_finished(1);
  auto* f = f_seen.as<fb::RunFinished>();
  BOOST_TEST(f->outcome() == fb::RunOutcome::Failed);
  BOOST_TEST(f->exit_code() == 3);
  BOOST_TEST(f->signal() == 0);
  BOOST_TEST(f->job_id() == 101u);
  BOOST_TEST(f->node()->str() == "n1");
  auto out = c.read_log(101, false);
  BOOST_REQUIRE(out);
  auto* chunk = out->body<fb::LogChunk>();
  BOOST_TEST(std::string(chunk->data()->begin(), chunk->data()->end()) == "hello\nbye\n");
  BOOST_TEST(chunk->finished());
  BOOST_TEST(chunk->size() == 10u);
  auto tail = c.read_log(101, false, 6);
  BOOST_TEST(std::string(tail->body<fb::LogChunk>()->data()->begin(), tail->body<fb::LogChunk>()->data()->end()) ==
             "bye\n");
  auto err = c.read_log(101, true);
  BOOST_REQUIRE(err);
  BOOST_TEST(std::string(err->body<fb::LogChunk>()->data()->begin(), err->body<fb::LogChunk>()->data()->end()) ==
             "oops\n");

  BOOST_TEST(c.wait_finished(2).as<fb::RunFinished>()->outcome() == fb::RunOutcome::Succeeded);
  auto bad_seen = c.wait_finished(3);
  auto* bad = bad_seen.as<fb::RunFinished>();
  BOOST_TEST(bad->outcome() == fb::RunOutcome::Failed);
  BOOST_TEST(bad->exit_code() == 127);
  auto e3 = c.read_log(103, true);
  BOOST_REQUIRE(e3);
  std::string e3s(e3->body<fb::LogChunk>()->data()->begin(), e3->body<fb::LogChunk>()->data()->end());
  BOOST_TEST(e3s.find("cannot run '/no/such/program'") != std::string::npos, e3s);
  BOOST_TEST(c.read_log(999, false).status().code() == fb::ErrorCode::NotFound);
}

BOOST_AUTO_TEST_CASE(a_job_sees_only_its_gpus_and_its_trainyard_environment) {
  Cluster c;
  Grant g = job(5, 205, {"sh", "-c",
                         "echo \"$CUDA_VISIBLE_DEVICES|$TY_JOB_ID|$TY_ATTEMPT|$TY_ARRAY_INDEX|$TY_NODE_RANK|"
                         "$TY_NUM_NODES|$TY_NODES|$MASTER_ADDR|$FOO|$(pwd)\"; test -f \"$TY_METRICS_FILE\""});
  g.gpus = {1, 3};
  g.attempt = 2;
  g.array_index = 7;
  g.nodes = {"n0", "n1"};
  g.node_rank = 1;
  g.env = {{"CUDA_VISIBLE_DEVICES", "0,1,2,3"}, {"FOO", "bar"}};
  g.workdir = c.path("");
  c.broker().grant(g);
  auto f_seen = c.wait_finished(5);
  auto* f = f_seen.as<fb::RunFinished>();
  BOOST_TEST(f->outcome() == fb::RunOutcome::Succeeded);
  std::string workdir = c.path("");
  workdir.pop_back();
  BOOST_TEST(read_file(c.run_dir(205, 2, 5) + "/stdout") == "1,3|205|2|7|1|2|n0,n1|n0|bar|" + workdir + "\n");
}

BOOST_AUTO_TEST_CASE(revoke_kills_the_whole_process_group_after_the_grace_period) {
  Cluster c;
  std::string gc = c.path("grandchild.pid");
  // The shell ignores SIGTERM (and so does its child): only the SIGKILL after the grace period ends them.
  Grant g = job(7, 307, {"sh", "-c", "trap '' TERM; sleep 300 & echo $! > " + gc + "; wait; sleep 300"});
  g.grace_s = 1;
  c.broker().grant(g);
  auto s_seen = c.wait_started(7);
  auto* s = s_seen.as<fb::RunStarted>();
  int leader = s->pid();
  BOOST_REQUIRE(wait_until([&] { return !read_file(gc).empty(); }, 5s));
  int grandchild = std::stoi(read_file(gc));
  BOOST_TEST(!process_gone(grandchild));
  auto t0 = std::chrono::steady_clock::now();
  c.broker().revoke("n1", 7, 307, 1, "cancelled by alice");
  auto f_seen = c.wait_finished(7);
  auto* f = f_seen.as<fb::RunFinished>();
  auto took = std::chrono::steady_clock::now() - t0;
  BOOST_TEST(f->outcome() == fb::RunOutcome::Cancelled);
  BOOST_TEST(f->signal() == SIGKILL);
  BOOST_TEST(took >= 900ms);  // the grace period was honoured
  BOOST_TEST(wait_until([&] { return process_gone(grandchild) && process_gone(leader); }, 3s));
}

BOOST_AUTO_TEST_CASE(time_limit_ends_the_run_as_timed_out) {
  Cluster c;
  Grant g = job(8, 308, {"sleep", "30"});
  g.time_limit_s = 1;
  g.grace_s = 5;
  c.broker().grant(g);
  auto f_seen = c.wait_finished(8, 10s);
  auto* f = f_seen.as<fb::RunFinished>();
  BOOST_TEST(f->outcome() == fb::RunOutcome::TimedOut);
  BOOST_TEST(f->signal() == SIGTERM);  // sleep obeys SIGTERM: no SIGKILL needed
  auto s_seen = c.for_lease<fb::RunStarted>("run.started", 8).front();
  auto* s = s_seen.as<fb::RunStarted>();
  double ran_s = static_cast<double>(f->end_time_ns() - s->start_time_ns()) / 1e9;
  BOOST_TEST(ran_s >= 1.0);
  BOOST_TEST(ran_s < 2.0);
}

BOOST_AUTO_TEST_CASE(usage_ticks_sum_exactly_to_the_run_duration) {
  Cluster c;
  Grant g = job(9, 309, {"sleep", "1.2"});
  g.gpus = {0, 2};
  g.cpus = 4;
  g.memory_mb = 2048;
  c.broker().grant(g);
  auto f_seen = c.wait_finished(9);
  auto* f = f_seen.as<fb::RunFinished>();
  auto s_seen = c.for_lease<fb::RunStarted>("run.started", 9).front();
  auto* s = s_seen.as<fb::RunStarted>();
  BOOST_REQUIRE(wait_until(
      [&] {
        auto ticks = c.for_lease<fb::UsageTick>("usage.tick", 9);
        return !ticks.empty() && ticks.back().as<fb::UsageTick>()->final();
      },
      5s));
  auto ticks = c.for_lease<fb::UsageTick>("usage.tick", 9);
  BOOST_TEST(ticks.size() >= 4u);  // 200 ms ticks over 1.2 s, plus the final one
  int64_t sum = 0, expect_start = s->start_time_ns();
  for (size_t i = 0; i < ticks.size(); ++i) {
    auto* t = ticks[i].as<fb::UsageTick>();
    BOOST_TEST(t->start_ns() == expect_start);
    BOOST_TEST(t->final() == (i + 1 == ticks.size()));
    BOOST_TEST(t->gpus() == 2u);
    BOOST_TEST(t->cpus() == 4u);
    BOOST_TEST(t->memory_mb() == 2048u);
    BOOST_TEST(t->account()->str() == "vision");
    BOOST_TEST(t->user()->str() == "alice");
    BOOST_TEST(t->partition()->str() == "gpu");
    BOOST_TEST(t->gpu_type()->str() == "A100");
    sum += t->end_ns() - t->start_ns();
    expect_start = t->end_ns();
  }
  BOOST_TEST(sum == f->end_time_ns() - s->start_time_ns());
}

BOOST_AUTO_TEST_CASE(metric_lines_become_points_and_each_kind_of_bad_line_warns_once) {
  Cluster c;
  std::string script = c.path("train.py");
  std::ofstream(script) << R"(import json, os, time
path = os.environ["TY_METRICS_FILE"]
with open(path, "a") as f:
    for step in range(1, 501):
        f.write(json.dumps({"step": step, "loss": 1.0 / step, "acc": step / 500.0}) + "\n")
        if step == 10:
            f.write("not json at all\n")
            f.write("also not json\n")
            f.write(json.dumps({"loss": 0.5}) + "\n")
            f.write(json.dumps({"step": 11, "note": "text"}) + "\n")
            f.write(json.dumps({"step": 12, "loss": float("nan")}) + "\n")
            f.write(json.dumps({"step": 13, "loss": float("inf")}) + "\n")
            f.write('{"step": 14, "blob": "' + "x" * (2 << 20) + '"}\n')
            f.write(json.dumps({"step": 15, "t": 1, "time": 1700000000.5}) + "\n")
        f.flush()
    f.write(json.dumps({"step": 501, "final": 1.0}))
time.sleep(0.7)
)";
  Grant g = job(11, 411, {"python3", script});
  g.experiment = "exp-a";
  c.broker().grant(g);
  auto f_seen = c.wait_finished(11);
  auto* f = f_seen.as<fb::RunFinished>();
  BOOST_TEST(f->outcome() == fb::RunOutcome::Succeeded);
  std::map<std::string, std::vector<std::pair<int64_t, double>>> series;
  int64_t time_of_t = 0;
  std::string experiment;
  BOOST_REQUIRE(wait_until(
      [&] {
        series.clear();
        for (auto& s : c.broker().events("metric.batch")) {
          auto* mb = s.as<fb::MetricBatch>();
          if (mb->job_id() != 411) continue;
          experiment = mb->experiment()->str();
          for (auto* p : *mb->points()) {
            std::string name = mb->names()->Get(p->name())->str();
            series[name].emplace_back(p->step(), p->value());
            if (name == "t") time_of_t = p->time_ns();
          }
        }
        return series["loss"].size() == 500u && series.count("final");
      },
      10s));
  BOOST_TEST(experiment == "exp-a");
  BOOST_TEST(series["acc"].size() == 500u);
  BOOST_TEST(series["loss"].front().first == 1);
  BOOST_TEST(series["loss"].back().first == 500);
  BOOST_TEST(series["loss"][99].second == 0.01);
  BOOST_TEST(series["t"].size() == 1u);
  BOOST_TEST(time_of_t == 1700000000500000000);
  BOOST_TEST(series["final"].size() == 1u);  // the last line had no newline: read once the job ended
  BOOST_TEST(!series.count("note"));
  BOOST_TEST(series["sys/rss_mb"].size() >= 1u);  // sampled every 300 ms while it ran

  std::string err = read_file(c.run_dir(411, 1, 11) + "/stderr");
  BOOST_TEST(count(err, "trainyard: skipped a line") == 5u, err.substr(0, 2000));
  BOOST_TEST(count(err, "not a JSON object") == 1u);
  BOOST_TEST(count(err, "no integer \"step\"") == 1u);
  BOOST_TEST(count(err, "not a number") == 1u);
  BOOST_TEST(count(err, "NaN or infinite") == 1u);
  BOOST_TEST(count(err, "longer than 1 MiB") == 1u);
}

BOOST_AUTO_TEST_CASE(a_job_flooding_metrics_does_not_hold_up_other_jobs) {
  Cluster c;
  std::string script = c.path("flood.py");
  std::ofstream(script) << R"(import os, time
with open(os.environ["TY_METRICS_FILE"], "a") as f:
    t0 = time.time()
    for step in range(300000):
        f.write('{"step": %d, "loss": 0.5}\n' % step)
    f.flush()
print("wrote in", time.time() - t0)
time.sleep(0.5)
)";
  c.broker().grant(job(31, 631, {"python3", script}));
  c.wait_started(31);
  // While the flood is read, another job still starts and ends promptly.
  auto t0 = std::chrono::steady_clock::now();
  c.broker().grant(job(32, 632, {"sh", "-c", "exit 4"}));
  auto f_seen = c.wait_finished(32);
  auto* f = f_seen.as<fb::RunFinished>();
  auto took = std::chrono::steady_clock::now() - t0;
  BOOST_TEST(f->exit_code() == 4);
  BOOST_TEST(took < 2s, "the other job took " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                                                << " ms");
  c.wait_finished(31);
  BOOST_TEST(wait_until(
      [&] {
        size_t n = 0;
        for (auto& s : c.broker().events("metric.batch")) {
          auto* mb = s.as<fb::MetricBatch>();
          if (mb->job_id() != 631) continue;
          for (auto* p : *mb->points()) n += mb->names()->Get(p->name())->string_view() == "loss" ? 1 : 0;
        }
        return n == 300000u;
      },
      20s));
}

BOOST_AUTO_TEST_CASE(an_agent_killed_and_restarted_reports_each_run_exactly_once) {
  Cluster c;
  auto& b = c.broker();
  b.grant(job(21, 521, {"sh", "-c", "sleep 0.8; exit 7"}));  // ends while the agent is down
  b.grant(job(22, 522, {"sh", "-c", "sleep 3; exit 5"}));    // outlives the restart
  b.grant(job(23, 523, {"sleep", "60"}));                     // its supervisor dies with the agent down
  c.wait_started(21);
  c.wait_started(22);
  c.wait_started(23);
  c.agent().kill9();
  auto j23 = read_json(c.state_dir(523, 1, 23) + "/job.json");
  BOOST_REQUIRE(j23);
  ::kill(j23->value("supervisor_pid", 0), SIGKILL);
  ::kill(-j23->value("pid", 0), SIGKILL);
  BOOST_REQUIRE(wait_until([&] { return file_exists(c.state_dir(521, 1, 21) + "/exit.json"); }, 5s));
  c.start_agent();
  auto f23_seen = c.wait_finished(23);
  auto* f23 = f23_seen.as<fb::RunFinished>();
  BOOST_TEST(f23->outcome() == fb::RunOutcome::Lost);
  auto f21_seen = c.wait_finished(21);
  auto* f21 = f21_seen.as<fb::RunFinished>();
  BOOST_TEST(f21->exit_code() == 7);
  BOOST_TEST(f21->outcome() == fb::RunOutcome::Failed);
  auto f22_seen = c.wait_finished(22);
  auto* f22 = f22_seen.as<fb::RunFinished>();
  BOOST_TEST(f22->exit_code() == 5);
  // Restart once more: finished runs stay finished.
  c.agent().kill9();
  c.start_agent();
  BOOST_REQUIRE(wait_until([&] { return c.broker().heartbeats("n1") > 0 && c.broker().last_running_leases("n1").empty(); }, 5s));
  std::this_thread::sleep_for(500ms);  // room for a wrong duplicate to show up
  BOOST_TEST(c.for_lease<fb::RunFinished>("run.finished", 21).size() == 1u);
  BOOST_TEST(c.for_lease<fb::RunFinished>("run.finished", 22).size() == 1u);
  BOOST_TEST(c.for_lease<fb::RunStarted>("run.started", 21).size() == 1u);
  BOOST_TEST(c.for_lease<fb::RunStarted>("run.started", 22).size() == 1u);
  BOOST_TEST(c.for_lease<fb::RunFinished>("run.finished", 23).size() == 1u);
  // Usage still tiles the whole run, across the agent's death.
  int64_t sum = 0;
  for (auto& t : c.for_lease<fb::UsageTick>("usage.tick", 22)) sum += t.as<fb::UsageTick>()->end_ns() - t.as<fb::UsageTick>()->start_ns();
  BOOST_TEST(sum == f22->end_time_ns() - c.for_lease<fb::RunStarted>("run.started", 22).front().as<fb::RunStarted>()->start_time_ns());
}

BOOST_AUTO_TEST_CASE(simulated_mode_acts_as_many_nodes) {
  // TY_AGENT_SIM_NODES=5000 makes this a scale check (by hand; CI runs 300).
  size_t nodes = getenv("TY_AGENT_SIM_NODES") ? std::stoul(getenv("TY_AGENT_SIM_NODES")) : 300;
  auto t0 = std::chrono::steady_clock::now();
  // Thousands of nodes heartbeat at the default pace, not the tests' fast one.
  Cluster c("simulate = " + std::to_string(nodes),
            nodes > 1000 ? std::vector<std::string>{"agent.heartbeat_ms=1000"} : std::vector<std::string>{});
  auto& b = c.broker();
  BOOST_REQUIRE(wait_until([&] { return b.registered_nodes() == nodes; }, 30s));
  BOOST_TEST_MESSAGE(nodes << " simulated nodes started and registered in "
                           << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count()
                           << " ms");
  auto info = b.node("n1-" + std::to_string(nodes - 1));
  BOOST_REQUIRE(info);
  BOOST_TEST(info->simulated);
  BOOST_TEST(info->gpus.size() == 4u);
  for (uint64_t i = 0; i < 100; ++i) {
    Grant g = job(1000 + i, 2000 + i, {"unused"});
    g.node = "n1-" + std::to_string(i * 3);
    g.sim_duration_s = 0.5;
    if (i == 1) g.env = {{"TY_SIM_EXIT_CODE", "2"}};
    if (i == 2) g.sim_duration_s = 60;
    if (i == 3) {
      g.sim_duration_s = 60;
      g.time_limit_s = 1;
    }
    b.grant(g);
  }
  c.wait_started(1002);
  b.revoke("n1-6", 1002, 2002, 30, "cancelled");
  BOOST_REQUIRE(wait_until([&] { return b.events("run.finished").size() == 100u; }, 15s));
  for (uint64_t i = 0; i < 100; ++i) {
    auto f = c.for_lease<fb::RunFinished>("run.finished", 1000 + i);
    BOOST_REQUIRE_EQUAL(f.size(), 1u);
    auto* rf = f[0].as<fb::RunFinished>();
    auto expect = i == 1 ? fb::RunOutcome::Failed
                  : i == 2 ? fb::RunOutcome::Cancelled
                  : i == 3 ? fb::RunOutcome::TimedOut
                           : fb::RunOutcome::Succeeded;
    BOOST_TEST(rf->outcome() == expect);
    BOOST_TEST(rf->node()->str() == "n1-" + std::to_string(i * 3));
    if (i >= 4) {
      // A simulated run lasts exactly its declared duration, and its usage says so.
      auto s_seen = c.for_lease<fb::RunStarted>("run.started", 1000 + i).front();
  auto* s = s_seen.as<fb::RunStarted>();
      BOOST_TEST(rf->end_time_ns() - s->start_time_ns() == 500'000'000);
    }
  }
  BOOST_REQUIRE(wait_until(
      [&] {
        int64_t total = 0;
        size_t finals = 0;
        for (auto& t : b.events("usage.tick")) {
          auto* u = t.as<fb::UsageTick>();
          if (u->lease_id() >= 1004) total += u->end_ns() - u->start_ns();
          finals += u->final() ? 1 : 0;
        }
        return finals == 100u && total == 96 * 500'000'000ll;
      },
      5s));
  if (auto rss = read_file("/proc/" + std::to_string(c.agent().pid()) + "/status"); !rss.empty()) {
    auto at = rss.find("VmRSS:");
    if (at != std::string::npos) BOOST_TEST_MESSAGE("agent " << rss.substr(at, rss.find('\n', at) - at));
  }
}

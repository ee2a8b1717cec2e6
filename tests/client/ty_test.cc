// The ty binary as a user runs it: help, exit codes, errors within seconds
// when a service is away, and its requests and output against stand-in
// services (real ROUTER sockets in this process answering like the
// scheduler, broker and an agent); plus the metrics helpers (Python, C++).
#define BOOST_TEST_MODULE client_ty
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "process.h"
#include "rpc/server.h"
#include "trainyard/client.h"
#include "util/clock.h"

using namespace trainyard;
namespace tt = trainyard::testing;
using namespace std::chrono_literals;

namespace {

// An environment that ignores the user's own config. The fakes these tests
// talk to are plaintext: that user's config turns CURVE off (the test of a
// missing key removes it).
std::map<std::string, std::string> clean_env(const tt::TempDir& home) {
  std::filesystem::create_directories(home / ".config/trainyard");
  std::ofstream(home / ".config/trainyard/config.toml") << "[security]\nmode = \"none\"\n";
  return {{"HOME", home.path()}, {"TY_CONFIG", ""}, {"USER", "ada"}};
}

std::pair<int, std::string> ty(std::vector<std::string> args, const tt::TempDir& home,
                               std::chrono::milliseconds timeout = 20s) {
  args.insert(args.begin(), tt::bin("ty"));
  return tt::run(args, timeout, clean_env(home));
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Stand-ins for the scheduler, the broker and one agent, served from a
// thread. Jobs are kept as records; GetJob moves job 101 along its life.
class FakeServices {
 public:
  FakeServices() {
    scheduler_ = std::make_unique<rpc::Server>(ctx_, "tcp://127.0.0.1:*", "scheduler");
    broker_ = std::make_unique<rpc::Server>(ctx_, "tcp://127.0.0.1:*", "broker");
    agent_ = std::make_unique<rpc::Server>(ctx_, "tcp://127.0.0.1:*", "agent");
    metrics_ = std::make_unique<rpc::Server>(ctx_, "tcp://127.0.0.1:*", "metrics");
    scheduler_->on(fb::RequestBody::SubmitJob, [this](const fb::Request& q, rpc::Responder& r) {
      std::lock_guard lock(mu_);
      q.body_as_SubmitJob()->spec()->UnPackTo(&submitted_);
      ++submits_;
      auto& b = r.builder();
      std::vector<uint64_t> ids = {101};
      r.ok(fb::ReplyBody::Submitted, fb::CreateSubmittedDirect(b, &ids, 0).Union());
    });
    scheduler_->on(fb::RequestBody::GetJob, [this](const fb::Request& q, rpc::Responder& r) {
      std::lock_guard lock(mu_);
      uint64_t id = q.body_as_GetJob()->job_id();
      if (id != 101 && id != 102) return r.error(Status::not_found("job " + std::to_string(id) + " does not exist"));
      auto rec = record(id);
      if (id == 101 && ++gets_ >= 3) rec.state = fb::JobState::Succeeded;
      if (id == 102 && ++gets_ >= 3) {
        rec.state = fb::JobState::Failed;
        rec.exit_code = 3;
      }
      auto& b = r.builder();
      r.ok(fb::ReplyBody::JobRecord, fb::CreateJobRecord(b, &rec).Union());
    });
    scheduler_->on(fb::RequestBody::QueryJobs, [this](const fb::Request& q, rpc::Responder& r) {
      std::lock_guard lock(mu_);
      auto* f = q.body_as_QueryJobs();
      last_query_user_ = f->user() ? f->user()->str() : "";
      last_query_states_ = f->states() ? f->states()->size() : 0;
      fb::JobListT list;
      list.jobs.push_back(std::make_unique<fb::JobRecordT>(record(101)));
      auto& b = r.builder();
      r.ok(fb::ReplyBody::JobList, fb::CreateJobList(b, &list).Union());
    });
    scheduler_->on(fb::RequestBody::CancelJob, [](const fb::Request& q, rpc::Responder& r) {
      uint64_t id = q.body_as_CancelJob()->job_id();
      if (id == 999) return r.error(Status::not_found("job 999 does not exist"));
      if (id == 102) return r.error(Status::failed_precondition("job 102 has already ended (Succeeded)"));
      r.ok(fb::ReplyBody::Empty, fb::CreateEmpty(r.builder()).Union());
    });
    broker_->on(fb::RequestBody::ListNodes, [this](const fb::Request&, rpc::Responder& r) {
      fb::NodeListT list;
      auto st = std::make_unique<fb::NodeStatusT>();
      st->node = std::make_unique<fb::NodeInfoT>();
      st->node->name = "node-1";
      st->node->agent_endpoint = agent_->endpoint();
      st->node->cpus = 32;
      st->node->memory_mb = 256 * 1024;
      for (uint32_t i = 0; i < 4; ++i) {
        auto g = std::make_unique<fb::GpuInfoT>();
        g->index = i;
        g->type = "A100";
        st->node->gpus.push_back(std::move(g));
      }
      st->up = true;
      st->allocated_gpus = {0, 1};
      list.nodes.push_back(std::move(st));
      auto& b = r.builder();
      r.ok(fb::ReplyBody::NodeList, fb::CreateNodeList(b, &list).Union());
    });
    // Ranks three runs by the goal the request names, as the aggregator does.
    metrics_->on(fb::RequestBody::CompareRuns, [this](const fb::Request& q, rpc::Responder& r) {
      bool maximize = q.body_as_CompareRuns()->maximize();
      {
        std::lock_guard lock(mu_);
        compare_maximize_.push_back(maximize);
      }
      fb::ComparisonT c;
      c.metric = q.body_as_CompareRuns()->metric()->str();
      for (auto [id, best] : {std::pair{1, 0.2}, {2, 0.9}, {3, 0.5}}) {
        auto row = std::make_unique<fb::ComparisonRowT>();
        row->job_id = static_cast<uint64_t>(id);
        row->best_value = best;
        c.rows.push_back(std::move(row));
      }
      std::sort(c.rows.begin(), c.rows.end(), [maximize](const auto& a, const auto& b) {
        return maximize ? a->best_value > b->best_value : a->best_value < b->best_value;
      });
      auto& b = r.builder();
      r.ok(fb::ReplyBody::Comparison, fb::CreateComparison(b, &c).Union());
    });
    agent_->on(fb::RequestBody::ReadLog, [](const fb::Request& q, rpc::Responder& r) {
      auto* rl = q.body_as_ReadLog();
      std::string log = rl->stderr() ? "an error line\n" : "line one\nline two\n";
      uint64_t off = std::min<uint64_t>(rl->offset(), log.size());
      // Serve at most 5 bytes at a time so the client must loop.
      std::string part = log.substr(off, 5);
      auto& b = r.builder();
      auto data = b.CreateVector(reinterpret_cast<const uint8_t*>(part.data()), part.size());
      r.ok(fb::ReplyBody::LogChunk, fb::CreateLogChunk(b, data, off, log.size(), true).Union());
    });
    thread_ = std::thread([this] { loop(); });
  }
  ~FakeServices() {
    stop_ = true;
    thread_.join();
  }

  std::string scheduler() const { return scheduler_->endpoint(); }
  std::string broker() const { return broker_->endpoint(); }
  std::string metrics() const { return metrics_->endpoint(); }
  std::vector<bool> compare_maximize() {
    std::lock_guard lock(mu_);
    return compare_maximize_;
  }
  fb::JobSpecT submitted() {
    std::lock_guard lock(mu_);
    return submitted_;
  }
  int submits() {
    std::lock_guard lock(mu_);
    return submits_;
  }
  std::string last_query_user() {
    std::lock_guard lock(mu_);
    return last_query_user_;
  }
  size_t last_query_states() {
    std::lock_guard lock(mu_);
    return last_query_states_;
  }

 private:
  fb::JobRecordT record(uint64_t id) {
    fb::JobRecordT rec;
    rec.job_id = id;
    rec.spec = std::make_unique<fb::JobSpecT>(submitted_);
    rec.spec->name = "train";
    rec.spec->user = "ada";
    rec.spec->gpus_per_node = 2;
    rec.spec->gpu_type = "A100";
    rec.state = fb::JobState::Running;
    rec.nodes = {"node-1"};
    rec.gpu_indices = {0, 1};
    rec.submit_time_ns = SystemClock().now_ns() - 60'000'000'000;
    rec.start_time_ns = SystemClock().now_ns() - 30'000'000'000;
    for (auto [to, why] : {std::pair{fb::JobState::Pending, "submitted"}, {fb::JobState::Running, "started on node-1"}}) {
      auto t = std::make_unique<fb::JobTransitionT>();
      t->to = to;
      t->reason = why;
      t->time_ns = rec.submit_time_ns;
      rec.history.push_back(std::move(t));
    }
    return rec;
  }

  void loop() {
    while (!stop_) {
      zmq::pollitem_t items[] = {{static_cast<void*>(scheduler_->socket()), 0, ZMQ_POLLIN, 0},
                                 {static_cast<void*>(broker_->socket()), 0, ZMQ_POLLIN, 0},
                                 {static_cast<void*>(agent_->socket()), 0, ZMQ_POLLIN, 0},
                                 {static_cast<void*>(metrics_->socket()), 0, ZMQ_POLLIN, 0}};
      zmq::poll(items, 4, 50ms);
      for (auto* s : {scheduler_.get(), broker_.get(), agent_.get(), metrics_.get()}) {
        s->poll_in();
        s->flush();
      }
    }
  }

  zmq::context_t ctx_{1};
  std::unique_ptr<rpc::Server> scheduler_, broker_, agent_, metrics_;
  std::vector<bool> compare_maximize_;
  std::mutex mu_;
  fb::JobSpecT submitted_;
  int submits_ = 0;
  int gets_ = 0;
  std::string last_query_user_;
  size_t last_query_states_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace

BOOST_AUTO_TEST_CASE(help_lists_the_subcommands_and_the_exit_codes) {
  tt::TempDir home;
  auto [rc, out] = ty({"--help"}, home);
  BOOST_TEST(rc == 0);
  for (auto word : {"submit", "queue", "status", "cancel", "hold", "release", "logs", "wait", "nodes", "metrics",
                    "compare", "usage", "invoice", "budget", "Exit codes", "3  a service is unavailable",
                    "2  usage error", "--scheduler", "TY_CONFIG"}) {
    BOOST_TEST(contains(out, word), "ty --help lacks " << word);
  }
}

BOOST_AUTO_TEST_CASE(every_subcommand_has_help) {
  tt::TempDir home;
  for (std::vector<std::string> cmd : std::vector<std::vector<std::string>>{
           {"queue"}, {"status"}, {"cancel"}, {"hold"}, {"release"}, {"logs"}, {"wait"}, {"nodes"}, {"nodes", "drain"},
           {"nodes", "undrain"}, {"metrics"}, {"compare"}, {"usage"}, {"invoice"}, {"budget"}, {"budget", "set"}}) {
    cmd.push_back("--help");
    auto [rc, out] = ty(cmd, home);
    BOOST_TEST(rc == 0, cmd[0]);
    BOOST_TEST(contains(out, "Usage"), cmd[0] << ": " << out);
  }
  auto [rc, out] = ty({"submit", "--help"}, home);
  BOOST_TEST(rc == 0);
  for (auto word : {"#SBATCH", "--gres", "--array", "--dependency", "--time", "--estimate", "--wait", "--file"}) {
    BOOST_TEST(contains(out, word), "ty submit --help lacks " << word);
  }
}

BOOST_AUTO_TEST_CASE(queue_with_no_scheduler_says_so_with_exit_3_within_seconds) {
  tt::TempDir home;
  int64_t start = monotonic_ms();
  auto [rc, out] = ty({"--scheduler", "ipc://" + home.path() + "/nobody-here", "queue"}, home);
  int64_t took = monotonic_ms() - start;
  BOOST_TEST(rc == 3);
  BOOST_TEST(contains(out, "scheduler"), out);
  BOOST_TEST(contains(out, "did not answer"), out);
  BOOST_TEST(took < 5500, "took " << took << " ms");
}

BOOST_AUTO_TEST_CASE(the_endpoint_comes_from_ty_config) {
  tt::TempDir home;
  std::ofstream(home / "ty.toml") << "[scheduler]\nendpoint = \"ipc://" << home.path() << "/from-config\"\n"
                                  << "[client]\ntimeout_ms = 300\n[security]\nmode = \"none\"\n";
  auto env = clean_env(home);
  env["TY_CONFIG"] = home / "ty.toml";
  auto [rc, out] = tt::run({tt::bin("ty"), "queue"}, 20s, env);
  BOOST_TEST(rc == 3);
  BOOST_TEST(contains(out, "from-config"), out);
  BOOST_TEST(contains(out, "300 ms"), out);
}

BOOST_AUTO_TEST_CASE(without_a_key_ty_says_to_log_in) {
  tt::TempDir home;
  auto env = clean_env(home);
  std::filesystem::remove(home / ".config/trainyard/config.toml");
  auto [rc, out] = tt::run({tt::bin("ty"), "--scheduler", "ipc://" + home.path() + "/nobody-here", "queue"}, 20s, env);
  BOOST_TEST(rc != 0);
  BOOST_TEST(contains(out, "security.key"), out);
  BOOST_TEST(contains(out, "ty login"), out);
}

BOOST_AUTO_TEST_CASE(usage_errors_exit_2_and_say_what_is_wrong) {
  tt::TempDir home;
  std::string nobody = "ipc://" + home.path() + "/nobody";
  {
    auto [rc, out] = ty({"frobnicate"}, home);
    BOOST_TEST(rc == 2);
  }
  {
    auto [rc, out] = ty({"--scheduler", nobody, "status", "abc"}, home);
    BOOST_TEST(rc == 2);
    BOOST_TEST(contains(out, "'abc' is not a job id"), out);
  }
  {
    auto [rc, out] = ty({"--scheduler", nobody, "submit", "--time", "forever", "true"}, home);
    BOOST_TEST(rc == 2);
    BOOST_TEST(contains(out, "forever"), out);
  }
  {
    std::ofstream(home / "bad.sh") << "#!/bin/bash\n#SBATCH --job-name=x\n#SBATCH --frobnicate=3\necho\n";
    auto [rc, out] = ty({"--scheduler", nobody, "submit", home / "bad.sh"}, home);
    BOOST_TEST(rc == 2);
    BOOST_TEST(contains(out, "line 3"), out);
    BOOST_TEST(contains(out, "--frobnicate"), out);
  }
  {
    auto [rc, out] = ty({"invoice", "--account", "a", "--month", "2026-13"}, home);
    BOOST_TEST(rc == 2);
    BOOST_TEST(contains(out, "YYYY-MM"), out);
  }
  {
    auto [rc, out] = ty({"budget", "set", "a", "--monthly", "lots"}, home);
    BOOST_TEST(rc == 2);
  }
  {
    auto env = clean_env(home);
    env["TY_CONFIG"] = home / "missing.toml";
    auto [rc, out] = tt::run({tt::bin("ty"), "queue"}, 20s, env);
    BOOST_TEST(rc == 2);
    BOOST_TEST(contains(out, "missing.toml"), out);
  }
}

BOOST_AUTO_TEST_CASE(submit_sends_the_spec_and_prints_the_id) {
  tt::TempDir home;
  FakeServices fake;
  std::ofstream(home / "job.sh") << "#!/bin/bash\n#SBATCH -J from-script\n#SBATCH --gres=gpu:a100:2\n#SBATCH -t 1:00:00\n"
                                 << "echo hello\n";
  auto [rc, out] = ty({"--scheduler", fake.scheduler(), "submit", "-J", "override", home / "job.sh", "arg1"}, home);
  BOOST_TEST(rc == 0, out);
  BOOST_TEST(contains(out, "Submitted job 101"), out);
  auto spec = fake.submitted();
  BOOST_TEST(spec.name == "override");
  BOOST_TEST(spec.gpus_per_node == 2u);
  BOOST_TEST(spec.gpu_type == "a100");
  BOOST_TEST(spec.time_limit_s == 3600u);
  BOOST_TEST(spec.user == "ada");
  BOOST_TEST(!spec.client_token.empty());
  BOOST_REQUIRE(spec.command.size() == 3u);
  BOOST_TEST(spec.command[0] == "/bin/bash");  // its #! line
  BOOST_TEST(spec.command[1] == home / "job.sh");
  BOOST_TEST(spec.command[2] == "arg1");
  BOOST_TEST(spec.script_arg == 1u);
  BOOST_TEST(spec.script.find("echo hello") != std::string::npos);  // the text travels, never as an argument

  // Scheduler flag after the subcommand, --parsable, a plain command.
  auto [rc2, out2] = ty({"submit", "--scheduler", fake.scheduler(), "--parsable", "-t", "5", "sleep", "1"}, home);
  BOOST_TEST(rc2 == 0, out2);
  BOOST_TEST(out2 == "101\n");
  BOOST_TEST(fake.submitted().command.front() == "sleep");
}

BOOST_AUTO_TEST_CASE(submit_wait_exits_0_when_the_job_succeeds) {
  tt::TempDir home;
  FakeServices fake;
  auto [rc, out] = ty({"--scheduler", fake.scheduler(), "--bus", "ipc://" + home.path() + "/no-bus", "submit", "--wait",
                       "-t", "5", "true"},
                      home);
  BOOST_TEST(rc == 0, out);
  BOOST_TEST(contains(out, "running"), out);  // progress on stderr
  BOOST_TEST(contains(out, "succeeded"), out);
}

BOOST_AUTO_TEST_CASE(wait_exits_1_when_a_job_fails_and_names_it) {
  tt::TempDir home;
  FakeServices fake;
  auto [rc, out] = ty({"--scheduler", fake.scheduler(), "--bus", "ipc://" + home.path() + "/no-bus", "wait", "102"}, home);
  BOOST_TEST(rc == 1, out);
  BOOST_TEST(contains(out, "job 102 failed (exit code 3)"), out);
  auto [rc2, out2] = ty({"--scheduler", fake.scheduler(), "wait", "999"}, home);
  BOOST_TEST(rc2 == 1, out2);
  BOOST_TEST(contains(out2, "999"), out2);
}

BOOST_AUTO_TEST_CASE(queue_and_status_show_tables_and_json) {
  tt::TempDir home;
  FakeServices fake;
  auto [rc, out] = ty({"--scheduler", fake.scheduler(), "queue"}, home);
  BOOST_TEST(rc == 0, out);
  BOOST_TEST(contains(out, "JOBID"), out);
  BOOST_TEST(contains(out, "101"), out);
  BOOST_TEST(contains(out, "running"), out);
  BOOST_TEST(contains(out, "2xA100"), out);
  BOOST_TEST(fake.last_query_states() == 4u);  // active jobs only by default

  auto [rc2, out2] = ty({"--scheduler", fake.scheduler(), "queue", "--all", "--me", "--json"}, home);
  BOOST_TEST(rc2 == 0, out2);
  auto j = nlohmann::json::parse(out2);
  BOOST_REQUIRE(j.is_array());
  BOOST_TEST(j[0]["job_id"] == 101);
  BOOST_TEST(j[0]["state"] == "running");
  BOOST_TEST(fake.last_query_user() == "ada");
  BOOST_TEST(fake.last_query_states() == 0u);

  auto [rc3, out3] = ty({"--scheduler", fake.scheduler(), "status", "101"}, home);
  BOOST_TEST(rc3 == 0, out3);
  BOOST_TEST(contains(out3, "Job 101 (train): running"), out3);
  BOOST_TEST(contains(out3, "node-1"), out3);
  BOOST_TEST(contains(out3, "History"), out3);
  BOOST_TEST(contains(out3, "started on node-1"), out3);

  auto [rc4, out4] = ty({"--scheduler", fake.scheduler(), "status", "101", "--json"}, home);
  BOOST_TEST(rc4 == 0);
  auto s = nlohmann::json::parse(out4);
  BOOST_TEST(s["history"].size() == 2u);
  BOOST_TEST(s["gpu_indices"].size() == 2u);

  auto [rc5, out5] = ty({"--scheduler", fake.scheduler(), "status", "999"}, home);
  BOOST_TEST(rc5 == 1);
  BOOST_TEST(contains(out5, "job 999 does not exist"), out5);
}

BOOST_AUTO_TEST_CASE(compare_ranks_loss_lowest_first_and_accuracy_highest_first_as_the_dashboard_does) {
  tt::TempDir home;
  FakeServices fake;
  auto order = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"--metrics", fake.metrics(), "compare", "--jobs", "1,2,3", "--json"});
    auto [rc, out] = ty(args, home);
    BOOST_TEST(rc == 0, out);
    auto j = nlohmann::json::parse(out, nullptr, false);
    std::vector<uint64_t> ids;
    if (j.is_object()) {
      for (auto& r : j["runs"]) ids.push_back(r["job_id"].get<uint64_t>());
    }
    return std::pair{ids, j.is_object() ? j.value("goal", "") : ""};
  };
  auto loss = order({"--metric", "loss"});
  BOOST_TEST(loss.first == (std::vector<uint64_t>{1, 3, 2}));  // lowest first
  BOOST_TEST(loss.second == "min");
  auto acc = order({"--metric", "val_accuracy"});
  BOOST_TEST(acc.first == (std::vector<uint64_t>{2, 3, 1}));  // highest first
  BOOST_TEST(acc.second == "max");
  // A goal given on the command line wins over the name.
  BOOST_TEST(order({"--metric", "loss", "--max"}).second == "max");
  BOOST_TEST(order({"--metric", "val_accuracy", "--min"}).second == "min");
  BOOST_TEST(fake.compare_maximize() == (std::vector<bool>{false, true, true, false}));
  // The table says which way it ranked.
  auto [rc, out] = ty({"--metrics", fake.metrics(), "compare", "--jobs", "1,2,3", "--metric", "loss"}, home);
  BOOST_TEST(rc == 0);
  BOOST_TEST(contains(out, "loss (lower is better)"), out);
}

BOOST_AUTO_TEST_CASE(cancel_reports_each_job) {
  tt::TempDir home;
  FakeServices fake;
  auto [rc, out] = ty({"--scheduler", fake.scheduler(), "cancel", "101", "999", "102"}, home);
  BOOST_TEST(rc == 1, out);
  BOOST_TEST(contains(out, "Cancelled job 101"), out);
  BOOST_TEST(contains(out, "job 999 does not exist"), out);
  BOOST_TEST(contains(out, "already ended"), out);
}

BOOST_AUTO_TEST_CASE(logs_come_from_the_agent_of_the_jobs_node) {
  tt::TempDir home;
  FakeServices fake;
  auto [rc, out] = ty({"--scheduler", fake.scheduler(), "--broker", fake.broker(), "logs", "101"}, home);
  BOOST_TEST(rc == 0, out);
  BOOST_TEST(out == "line one\nline two\n");
  auto [rc2, out2] = ty({"--scheduler", fake.scheduler(), "--broker", fake.broker(), "logs", "101", "--stderr"}, home);
  BOOST_TEST(out2 == "an error line\n");
  auto [rc3, out3] = ty({"--scheduler", fake.scheduler(), "--broker", fake.broker(), "nodes"}, home);
  BOOST_TEST(rc3 == 0);
  BOOST_TEST(contains(out3, "node-1"), out3);
  BOOST_TEST(contains(out3, "2/4"), out3);
  BOOST_TEST(contains(out3, "A100"), out3);
}

BOOST_AUTO_TEST_CASE(a_metrics_command_against_no_aggregator_names_it) {
  tt::TempDir home;
  auto [rc, out] = ty({"--metrics", "ipc://" + home.path() + "/none", "--request-timeout", "300", "metrics", "5"}, home);
  BOOST_TEST(rc == 3);
  BOOST_TEST(contains(out, "metrics-aggregator"), out);
  auto [rc2, out2] = ty({"--billing", "ipc://" + home.path() + "/none", "--request-timeout", "300", "usage"}, home);
  BOOST_TEST(rc2 == 3);
  BOOST_TEST(contains(out2, "billing"), out2);
}

BOOST_AUTO_TEST_CASE(python_helper_appends_json_lines) {
  tt::TempDir dir;
  std::ofstream(dir / "train.py") << "import trainyard\n"
                                     "assert trainyard.enabled()\n"
                                     "for step in range(3):\n"
                                     "    trainyard.log(step, loss=1.0 / (step + 1), acc=step)\n"
                                     "try:\n"
                                     "    trainyard.log(3, loss='low')\n"
                                     "except TypeError as e:\n"
                                     "    print('TypeError:', e)\n"
                                     "try:\n"
                                     "    trainyard.log(3, loss=True)\n"
                                     "except TypeError:\n"
                                     "    print('bool refused')\n"
                                     "try:\n"
                                     "    trainyard.log(3, loss=float('nan'))\n"
                                     "except ValueError:\n"
                                     "    print('nan refused')\n";
  auto metrics = dir / "metrics.jsonl";
  auto [rc, out] = tt::run({"python3", dir / "train.py"}, 30s,
                           {{"PYTHONPATH", std::string(TY_SOURCE_DIR) + "/client/python"}, {"TY_METRICS_FILE", metrics}});
  BOOST_TEST(rc == 0, out);
  BOOST_TEST(contains(out, "TypeError: trainyard.log: metric 'loss' must be a number"), out);
  BOOST_TEST(contains(out, "bool refused"), out);
  BOOST_TEST(contains(out, "nan refused"), out);
  std::ifstream in(metrics);
  std::vector<nlohmann::json> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
  BOOST_REQUIRE(lines.size() == 3u);  // the refused values wrote nothing
  BOOST_TEST(lines[0]["step"] == 0);
  BOOST_TEST(lines[0]["loss"] == 1.0);
  BOOST_TEST(lines[2]["step"] == 2);
  BOOST_TEST(lines[2]["acc"] == 2);
}

BOOST_AUTO_TEST_CASE(python_helper_is_a_no_op_outside_trainyard) {
  tt::TempDir dir;
  std::ofstream(dir / "train.py") << "import os, trainyard\n"
                                     "assert not trainyard.enabled()\n"
                                     "trainyard.log(1, loss=0.5)\n"
                                     "print('files:', sorted(os.listdir('.')))\n";
  auto [rc, out] = tt::run({"bash", "-c", "cd " + dir.path() + " && python3 train.py"}, 30s,
                           {{"PYTHONPATH", std::string(TY_SOURCE_DIR) + "/client/python"}, {"TY_METRICS_FILE", ""}});
  BOOST_TEST(rc == 0, out);
  BOOST_TEST(contains(out, "files: ['train.py']"), out);
}

BOOST_AUTO_TEST_CASE(cpp_log_metrics_writes_the_same_lines) {
  tt::TempDir dir;
  ::unsetenv("TY_METRICS_FILE");
  BOOST_TEST(client::log_metrics(1, {{"loss", 0.5}}).ok());  // no-op
  ::setenv("TY_METRICS_FILE", (dir / "m.jsonl").c_str(), 1);
  BOOST_TEST(client::log_metrics(7, {{"loss", 0.25}, {"val_acc", 0.75}}).ok());
  BOOST_TEST(!client::log_metrics(8, {{"loss", std::nan("")}}).ok());
  BOOST_TEST(!client::log_metrics(8, {{"step", 1}}).ok());
  ::unsetenv("TY_METRICS_FILE");
  auto text = tt::read_file(dir / "m.jsonl");
  auto j = nlohmann::json::parse(text);
  BOOST_TEST(j["step"] == 7);
  BOOST_TEST(j["loss"] == 0.25);
  BOOST_TEST(j["val_acc"] == 0.75);
  BOOST_TEST(std::count(text.begin(), text.end(), '\n') == 1);
}

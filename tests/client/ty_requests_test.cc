// ty's requests and output against stand-in services (fake_services.h):
// submit, wait, queue and status as tables and JSON, compare's ranking,
// cancel, logs from the job's node, and a metrics command with no
// aggregator. In the same test program as ty_test.cc.
#include <boost/test/unit_test.hpp>

#include "fake_services.h"

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

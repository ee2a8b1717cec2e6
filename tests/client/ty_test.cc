// The ty binary as a user runs it: help, exit codes, errors within seconds
// when a service is away, and the metrics helpers (Python, C++). Its
// requests and output against stand-in services are ty_requests_test.cc,
// in the same test program.
#define BOOST_TEST_MODULE client_ty
#include <boost/test/unit_test.hpp>

#include "fake_services.h"

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

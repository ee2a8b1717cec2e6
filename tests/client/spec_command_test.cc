// Job spec input: what a job runs (a batch script, its interpreter and
// environment, or a plain command with its flags), driven through
// trainyard/job_spec.h.
#include <boost/test/unit_test.hpp>

#include "spec_test_support.h"

using namespace trainyard;
using namespace trainyard::client;
using namespace trainyard::client::spec_testing;

BOOST_AUTO_TEST_CASE(a_script_runs_as_its_copy_with_its_interpreter_in_the_submit_directory_with_its_arguments) {
  testing::TempDir dir;
  std::string text = "#!/bin/bash\n#SBATCH -t 5\necho \"$1\"\n";
  write(dir / "job.sh", text);
  auto c = ctx();
  c.cwd = dir.path();
  auto r = build_job_request({"job.sh", "first arg", "2"}, c);
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().message());
  auto& spec = r->request.spec;
  std::vector<std::string> want = {"/bin/bash", dir.path() + "/job.sh", "first arg", "2"};
  BOOST_TEST(spec.command == want, boost::test_tools::per_element());
  BOOST_TEST(spec.script == text);  // the text as of submission, never an argument
  BOOST_TEST(spec.script_arg == 1u);
  BOOST_TEST(spec.workdir == dir.path());
  // Edited after submitting: what runs is the copy (the agent writes
  // JobSpec.script to a file and runs it in place of command[script_arg]).
  write(dir / "job.sh", "#!/bin/bash\necho edited\n");
  write(dir / "slurm_script", spec.script);
  auto cmd = spec.command;
  cmd[spec.script_arg] = dir.path() + "/slurm_script";
  auto [rc, out] = testing::run(cmd, std::chrono::seconds(10));
  BOOST_TEST(rc == 0);
  BOOST_TEST(out == "first arg\n");
}

BOOST_AUTO_TEST_CASE(a_script_for_another_interpreter_runs_with_it) {
  testing::TempDir dir;
  write(dir / "train.py", "#!/usr/bin/env python3\n#SBATCH --gpus=1\nprint('hi')\n");
  auto c = ctx();
  c.cwd = dir.path();
  auto r = build_job_request({"train.py", "--lr", "3"}, c);
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().message());
  std::vector<std::string> want = {"/usr/bin/env", "python3", dir.path() + "/train.py", "--lr", "3"};
  BOOST_TEST(r->request.spec.command == want, boost::test_tools::per_element());
  BOOST_TEST(r->request.spec.script_arg == 2u);
  BOOST_TEST(r->request.spec.script.find("print('hi')") != std::string::npos);
  BOOST_TEST(r->request.spec.gpus_per_node == 1u);
}

BOOST_AUTO_TEST_CASE(scripts_export_the_environment_as_sbatch_but_not_local_devices) {
  testing::TempDir dir;
  auto r = submit_script(dir, "#!/bin/bash\ntrue\n");
  BOOST_REQUIRE(r.ok());
  auto& s = r->request.spec;
  BOOST_TEST(env_of(s, "PATH") == "/usr/bin");
  BOOST_TEST(env_of(s, "LR") == "0.1");
  BOOST_TEST(env_of(s, "CUDA_VISIBLE_DEVICES") == "<unset>");
  BOOST_TEST(env_of(s, "SLURM_JOB_ID") == "<unset>");
  BOOST_TEST(env_of(s, "TY_JOB_ID") == "<unset>");
  auto none = submit_script(dir, "#!/bin/bash\n#SBATCH --export=NONE\ntrue\n", {"--env", "A=1"});
  BOOST_TEST(none->request.spec.env.size() == 1u);
  BOOST_TEST(env_of(none->request.spec, "A") == "1");
  auto some = submit_script(dir, "#!/bin/bash\n#SBATCH --export=LR,X=y\ntrue\n");
  BOOST_TEST(some->request.spec.env.size() == 2u);
  BOOST_TEST(env_of(some->request.spec, "LR") == "0.1");
  BOOST_TEST(env_of(some->request.spec, "X") == "y");
}

BOOST_AUTO_TEST_CASE(a_plain_command_with_flags) {
  auto r = build_job_request({"--gpus", "2", "--time=1:00:00", "--label", "lr=0.01", "--experiment", "sweep", "--hold",
                              "python", "-u", "train.py", "--lr", "0.01"},
                             ctx());
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().message());
  auto& s = r->request.spec;
  std::vector<std::string> want = {"python", "-u", "train.py", "--lr", "0.01"};
  BOOST_TEST(s.command == want, boost::test_tools::per_element());
  BOOST_TEST(s.gpus_per_node == 2u);
  BOOST_TEST(s.time_limit_s == 3600u);
  BOOST_TEST(label_of(s, "lr") == "0.01");
  BOOST_TEST(s.experiment == "sweep");
  BOOST_TEST(s.name == "python");
  BOOST_TEST(s.env.empty());  // flags export nothing unless asked
  BOOST_TEST(r->request.hold);
  BOOST_TEST(s.workdir == "/home/ada/run");
}

BOOST_AUTO_TEST_CASE(double_dash_ends_options_and_wrap_runs_a_shell_line) {
  auto r = build_job_request({"-J", "x", "--", "--weird-program"}, ctx());
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().message());
  BOOST_TEST(r->request.spec.command.front() == "--weird-program");
  auto w = build_job_request({"--wrap", "echo hi && sleep 1"}, ctx());
  BOOST_REQUIRE_MESSAGE(w.ok(), w.status().message());
  std::vector<std::string> want = {"bash", "-c", "echo hi && sleep 1"};
  BOOST_TEST(w->request.spec.command == want, boost::test_tools::per_element());
  BOOST_TEST(w->request.spec.name == "wrap");
}

BOOST_AUTO_TEST_CASE(long_options_may_be_abbreviated_when_unique) {
  auto r = build_job_request({"--part=gpu", "--job=n", "true"}, ctx());
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().message());
  BOOST_TEST(r->request.spec.partition == "gpu");
  BOOST_TEST(r->request.spec.name == "n");
  BOOST_TEST(!build_job_request({"--mem-per=1G", "true"}, ctx()).ok());  // cpu or gpu?
}

BOOST_AUTO_TEST_CASE(extra_options_are_returned_to_the_caller) {
  std::vector<ExtraOption> extras = {{"wait", 0, OptionArg::kNone}, {"scheduler", 0, OptionArg::kRequired}};
  auto r = build_job_request({"--wait", "--scheduler", "tcp://h:1", "true"}, ctx(), extras);
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().message());
  BOOST_TEST(r->extras.count("wait") == 1u);
  BOOST_TEST(r->extras["scheduler"] == "tcp://h:1");
}

BOOST_AUTO_TEST_CASE(no_command_is_an_error) {
  auto r = build_job_request({"--gpus", "1"}, ctx());
  BOOST_TEST(!r.ok());
  BOOST_TEST(r.status().message().find("no command") != std::string::npos);
  BOOST_TEST(!build_job_request({"--gpus"}, ctx()).ok());
}

BOOST_AUTO_TEST_CASE(batch_scripts_are_recognised) {
  testing::TempDir dir;
  write(dir / "a.sh", "echo\n");
  write(dir / "b", "#!/bin/sh\necho\n");
  write(dir / "c", "echo\n");
  BOOST_TEST(looks_like_batch_script(dir / "a.sh"));
  BOOST_TEST(looks_like_batch_script(dir / "b"));
  BOOST_TEST(!looks_like_batch_script(dir / "c"));
  BOOST_TEST(!looks_like_batch_script(dir / "missing.sh"));
  BOOST_TEST(!looks_like_batch_script(dir.path()));
}

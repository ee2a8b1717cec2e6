// Job spec input: spec files (TOML, JSON) and REST bodies, and flags over
// them, driven through trainyard/job_spec.h.
#include <boost/test/unit_test.hpp>

#include "spec_test_support.h"

using namespace trainyard;
using namespace trainyard::client;
using namespace trainyard::client::spec_testing;

BOOST_AUTO_TEST_CASE(spec_files_and_rest_bodies_take_the_placement_and_notification_fields) {
  auto r = parse_spec_file(R"(command = ["python", "train.py"]
qos = "high"
constraint = "ib&rack=r1"
exclusive = true
nodelist = "gpu[01-02]"
exclude = ["gpu09"]
notify = ["ada@lab.org", "https://hooks.slack.com/x"]
mail_type = "END,FAIL"
signal = "B:USR1@120"
)",
                           "spec.toml");
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().message());
  BOOST_TEST(r->qos == "high");
  BOOST_TEST(r->constraint == "ib&rack=r1");
  BOOST_TEST(r->exclusive);
  BOOST_TEST(r->nodelist == (std::vector<std::string>{"gpu01", "gpu02"}), boost::test_tools::per_element());
  BOOST_TEST(r->exclude == std::vector<std::string>{"gpu09"}, boost::test_tools::per_element());
  BOOST_TEST(r->notify.size() == 2u);
  BOOST_TEST((r->notify_on == (fb::NotifyOn::End | fb::NotifyOn::Fail)));
  BOOST_TEST(r->signal == 10);
  BOOST_TEST(r->signal_before_s == 120u);
  BOOST_TEST(r->signal_batch_only);
  auto bad = parse_spec_file("command = [\"true\"]\nmail_type = \"SOMETIMES\"\n", "bad.toml");
  BOOST_TEST(bad.status().message().find("mail_type") != std::string::npos, bad.status().message());
  auto list = parse_spec_file("command = [\"true\"]\nnodelist = \"gpu[1-\"\n", "bad.toml");
  BOOST_TEST(list.status().message().find("nodelist") != std::string::npos, list.status().message());
}

BOOST_AUTO_TEST_CASE(a_json_number_too_large_for_any_type_is_an_error_not_a_crash) {
  // Found by fuzz_spec_file: nlohmann's out_of_range escaped the parse_error catch.
  auto r = parse_spec_file("{\"nodes\": " + std::string(400, '1') + "}", "spec.json");
  BOOST_TEST((r.status().code() == ErrorCode::InvalidArgument));
  BOOST_TEST(r.status().message().find("spec.json: not valid JSON") == 0u, r.status().message());
}

BOOST_AUTO_TEST_CASE(toml_spec_file) {
  auto r = parse_spec_file(R"(name = "resnet"
account = "vision"
command = ["python", "train.py"]
gpus_per_node = 4
gpu_type = "A100"
time_limit = "2:00:00"
memory = "32G"
nodes = 2
priority = -3
experiment = "sweep-1"
array = "0-4%2"
dependencies = ["afterok:5", {kind = "afterany", job_id = 6}]
preemptible = false
resumable = true

[env]
OMP_NUM_THREADS = "4"

[labels]
lr = 0.001
opt = "adam"
)",
                           "spec.toml");
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().message());
  BOOST_TEST(r->name == "resnet");
  BOOST_TEST(r->command.size() == 2u);
  BOOST_TEST(r->gpus_per_node == 4u);
  BOOST_TEST(r->time_limit_s == 7200u);
  BOOST_TEST(r->memory_mb == 32u * 1024);
  BOOST_TEST(r->nodes == 2u);
  BOOST_TEST(r->priority == -3);
  BOOST_TEST(r->array == "0-4%2");
  BOOST_TEST(r->dependencies.size() == 2u);
  BOOST_TEST(!r->preemptible);
  BOOST_TEST(r->resumable);
  BOOST_TEST(env_of(*r, "OMP_NUM_THREADS") == "4");
  BOOST_TEST(label_of(*r, "lr") == "0.001");
  BOOST_TEST(label_of(*r, "opt") == "adam");
}

BOOST_AUTO_TEST_CASE(json_spec_file) {
  auto r = parse_spec_file(R"({"name": "j", "command": "echo hi", "time_limit_s": 60, "cpus": 2,
                              "labels": {"seed": 3}})",
                           "spec.json");
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().message());
  std::vector<std::string> want = {"bash", "-c", "echo hi"};
  BOOST_TEST(r->command == want, boost::test_tools::per_element());
  BOOST_TEST(r->time_limit_s == 60u);
  BOOST_TEST(r->cpus == 2u);
  BOOST_TEST(label_of(*r, "seed") == "3");
}

BOOST_AUTO_TEST_CASE(a_broken_spec_file_names_file_line_and_field) {
  struct Case {
    std::string path, text, mentions;
  };
  for (auto& c : std::vector<Case>{
           {"a.toml", "name = \"x\"\n\ngpus_per_node = \"four\"\n", "a.toml line 3: field 'gpus_per_node'"},
           {"a.toml", "name = \"x\"\ngpu = 4\n", "a.toml line 2: field 'gpu' is not a job spec field"},
           {"a.toml", "name = \"x\"\ntime_limit = \"soon\"\n", "a.toml line 2: field 'time_limit'"},
           {"a.toml", "name = \"x\"\ncpus = -1\n", "a.toml line 2: field 'cpus'"},
           {"a.toml", "name = \"x\"\n[labels]\nlr = [1, 2]\n", "a.toml line 3: field 'labels.lr'"},
           {"a.toml", "name = \"x\"\nname = \n", "a.toml line 2: not valid TOML"},
           {"b.json", "{\n  \"name\": \"x\",\n  \"nodes\": \"two\"\n}", "b.json line 3: field 'nodes'"},
           {"b.json", "{\n  \"name\": \"x\",\n  \"memory\": true\n}", "b.json line 3: field 'memory'"},
           {"b.json", "{\n  \"name\": \"x\",\n  \"resumable\": \"yes\"\n}", "b.json line 3: field 'resumable'"},
           {"b.json", "{\n  \"name\": \"x\",\n  \"dependencies\": [\"afterok:x\"]\n}", "b.json line 3: field 'dependencies'"},
           {"b.json", "{\n  \"name\": \"x\",\n  oops\n}", "b.json line 3: not valid JSON"},
       }) {
    auto r = parse_spec_file(c.text, c.path);
    BOOST_TEST(!r.ok(), c.text);
    BOOST_TEST(r.status().message().find(c.mentions) != std::string::npos, r.status().message() << " / want " << c.mentions);
  }
}

BOOST_AUTO_TEST_CASE(spec_file_with_flags_over_it) {
  testing::TempDir dir;
  write(dir / "job.toml", "name = \"base\"\ncommand = [\"sleep\", \"1\"]\ntime_limit_s = 60\ngpus_per_node = 1\n");
  auto c = ctx();
  c.cwd = dir.path();
  auto r = build_job_request({"--file", "job.toml", "--gpus-per-node", "2", "--resumable"}, c);
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().message());
  BOOST_TEST(r->request.spec.resumable);
  BOOST_TEST(r->request.spec.name == "base");
  BOOST_TEST(r->request.spec.gpus_per_node == 2u);
  BOOST_TEST(r->request.spec.time_limit_s == 60u);
  BOOST_TEST(r->request.spec.command.front() == "sleep");
  auto missing = build_job_request({"--file", "nope.toml"}, c);
  BOOST_TEST(!missing.ok());
  BOOST_TEST(missing.status().message().find("nope.toml") != std::string::npos);
}

// Unit tests of the scheduler's pure core: what a submission is checked
// against (field validation, QOS) and the notices a job asks for.
#include <boost/test/unit_test.hpp>

#include "core_test_support.h"

using namespace trainyard;
using namespace trainyard::scheduler;
using namespace trainyard::scheduler::testing;

BOOST_AUTO_TEST_CASE(validation_errors_name_the_field) {
  SchedulerConfig cfg;
  cfg.accounts = {"vision", "nlp"};
  PartitionConfig gpu{"gpu", {}, 0, 86400};
  PartitionConfig cpu{"cpu", {{"pool", "cpu"}}, 600, 0};
  cfg.partitions = {gpu, cpu};
  Sim sim(cfg);
  sim.s.node_up(make_node("n1", 8, "A100", 32, 256'000));
  struct Case {
    std::string field;
    std::function<void(fb::JobSpecT&)> edit;
  };
  std::vector<Case> cases = {
      {"gpu_type", [](auto& s) { s.gpu_type = "V100"; }},
      {"gpus_per_node", [](auto& s) { s.gpu_type = "A100"; s.gpus_per_node = 0; }},
      {"gpus_per_node", [](auto& s) { s.gpus_per_node = 16; }},
      {"gpus_per_node", [](auto& s) { s.gpus_per_node = static_cast<uint32_t>(-1); }},
      {"time_limit_s", [](auto& s) { s.time_limit_s = 0; }},
      {"time_limit_s", [](auto& s) { s.time_limit_s = 100'000; }},
      {"partition", [](auto& s) { s.partition = "nope"; }},
      {"account", [](auto& s) { s.account = "physics"; }},
      {"account", [](auto& s) { s.account = ""; }},
      {"user", [](auto& s) { s.user = ""; }},
      {"command", [](auto& s) { s.command.clear(); }},
      {"nodes", [](auto& s) { s.nodes = 0; }},
      {"nodes", [](auto& s) { s.nodes = 2; }},
      {"cpus", [](auto& s) { s.cpus = 33; }},
      {"memory_mb", [](auto& s) { s.memory_mb = 300'000; }},
      {"array", [](auto& s) { s.array = "1-"; }},
      {"dependencies[0].job_id", [](auto& s) {
         auto d = std::make_unique<fb::DependencyT>();
         d->job_id = 999;
         s.dependencies.push_back(std::move(d));
       }},
      {"nodelist", [](auto& s) { s.nodelist = {"n9"}; }},            // no such node
      {"nodelist", [](auto& s) { s.nodelist = {"n1", "n1"}; }},  // two names for a one-node job
      {"nodelist", [](auto& s) {
         s.nodelist = {"n1"};
         s.exclude = {"n1"};
       }},
      {"constraint", [](auto& s) { s.constraint = "[rack1|rack2]"; }},
      {"constraint", [](auto& s) { s.constraint = "ib&&x"; }},
      {"signal", [](auto& s) { s.signal = 99; }},
  };
  for (auto& c : cases) {
    auto spec = make_spec(1);
    c.edit(spec);
    auto r = sim.s.submit(spec, sim.now);
    BOOST_TEST(!r.ok(), c.field);
    BOOST_TEST(r.status().code() == ErrorCode::InvalidArgument);
    BOOST_TEST(r.status().message().rfind(c.field + ":", 0) == 0u, c.field << " vs " << r.status().message());
  }
  BOOST_TEST(sim.s.job_count() == 0u);
  // The partition's default time limit fills a missing one.
  auto s = make_spec(0);
  s.partition = "cpu";
  s.time_limit_s = 0;
  auto r = sim.s.submit(s, sim.now);
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().to_string());
  BOOST_TEST(sim.s.job(r->job_ids[0])->spec->time_limit_s == 600u);
}

BOOST_AUTO_TEST_CASE(a_qos_raises_priority_caps_the_time_and_counts_jobs_per_user) {
  SchedulerConfig cfg;
  cfg.qos["high"] = QosConfig{100, 3600, 2};
  cfg.qos["normal"] = QosConfig{};
  cfg.default_qos = "normal";
  Sim sim(cfg);
  sim.s.node_up(make_node("n1", 1));
  auto high = make_spec(1);
  high.qos = "high";
  high.time_limit_s = 7200;
  auto over = sim.s.submit(high, sim.now);
  BOOST_TEST(over.status().code() == ErrorCode::InvalidArgument);
  BOOST_TEST(over.status().message().find("maximum of QOS 'high' (3600 s)") != std::string::npos,
             over.status().message());
  auto gold = make_spec(1);
  gold.qos = "gold";
  BOOST_TEST(sim.s.submit(gold, sim.now).status().message() == "qos: unknown QOS 'gold'; QOSes: high, normal");
  // Submitted after a normal job, the high one starts first; with no limit
  // given it gets the QOS's.
  JobId normal = sim.submit(make_spec(1));
  high.time_limit_s = 0;
  JobId first = sim.submit(high);
  BOOST_TEST(sim.s.job(normal)->spec->qos == "normal");  // the default QOS
  BOOST_TEST(sim.s.job(first)->spec->time_limit_s == 3600u);
  BOOST_TEST((placed_ids(sim.cycle()) == std::set<JobId>{first}));
  // Two unfinished jobs per user in "high": a third is refused, in other
  // QOSes and for other users it is not.
  sim.submit(high);
  auto third = sim.s.submit(high, sim.now);
  BOOST_TEST(third.status().code() == ErrorCode::ResourceExhausted);
  BOOST_TEST(third.status().message().find("scheduler.qos.high.max_jobs_per_user") != std::string::npos);
  high.user = "bob";
  BOOST_TEST(sim.s.submit(high, sim.now).ok());
  BOOST_TEST(sim.s.submit(make_spec(1), sim.now).ok());
  // One ends: room again.
  sim.start(first);
  sim.finish(first);
  high.user = "alice";
  BOOST_TEST(sim.s.submit(high, sim.now).ok());
}

BOOST_AUTO_TEST_CASE(notices_follow_the_asked_types_and_read_as_slurms_mail) {
  Sim sim;
  sim.s.node_up(make_node("n1", 8));
  auto spec = make_spec(1);
  spec.name = "train\r\nBcc: x@y.z";  // a name never breaks a mail header
  spec.notify = {"ada@lab.org"};
  spec.notify_on = fb::NotifyOn::Begin | fb::NotifyOn::Fail;
  JobId id = sim.submit(spec);
  const Job& j = *sim.s.job(id);
  BOOST_TEST(!notice_for(j, JobState::Pending, JobState::Scheduled, "", 0, sim.now));
  sim.now += 3'000'000'000;
  auto begin = notice_for(j, JobState::Scheduled, JobState::Running, "", 0, sim.now);
  BOOST_REQUIRE(begin);
  BOOST_TEST(begin->event == "begin");
  BOOST_TEST(begin->subject == "Trainyard Job_id=" + std::to_string(id) + " Name=train  Bcc: x@y.z Began, Queued time 00:00:03");
  BOOST_TEST(begin->to == std::vector<std::string>{"ada@lab.org"}, boost::test_tools::per_element());
  BOOST_TEST(!notice_for(j, JobState::Running, JobState::Succeeded, "", 0, sim.now));  // END not asked
  auto failed = notice_for(j, JobState::Running, JobState::Failed, "exit code 3", 3, sim.now);
  BOOST_REQUIRE(failed);
  BOOST_TEST(failed->event == "fail");
  BOOST_TEST(failed->state == "FAILED");
  BOOST_TEST(failed->subject.find("Failed, Run time") != std::string::npos);
  BOOST_TEST(failed->subject.find(", FAILED, ExitCode 3") != std::string::npos);
  // Where notices may go: mail, user names, and webhooks to listed hosts only.
  std::vector<std::string> hosts = {"hooks.slack.com", "127.0.0.1"};
  bool allowed =
      check_notify({"ada@lab.org", "ada", "https://hooks.slack.com/services/T/B/x", "http://127.0.0.1:9/h"}, hosts)
          .ok();
  BOOST_TEST(allowed);
  for (std::string bad : {"https://evil.example/x", "http://user@hooks.slack.com.evil/x", "a@b@c", "ada lovelace",
                          "x@y.z\r\nRCPT TO:<z@z>", "ftp://hooks.slack.com/x"}) {
    auto st = check_notify({bad}, hosts);
    BOOST_TEST(!st.ok(), bad);
    BOOST_TEST(st.message().rfind("notify[0]: ", 0) == 0u, st.message());
  }
}

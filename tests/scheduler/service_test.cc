// Integration tests of trainyard-scheduler: the real binary with a real
// trainyard-bus and the broker/agent test double (trainyard-fake-broker),
// all on loopback with their own data directories. A job's life, bad specs,
// cancel, a dead node, SIGKILL; policies: service_policy_test.cc.
#define BOOST_TEST_MODULE scheduler_service
#include <boost/test/unit_test.hpp>

#include "service_test_support.h"

using namespace trainyard;
using namespace trainyard::testing;
using namespace trainyard::scheduler::service_testing;
using namespace std::chrono_literals;

BOOST_AUTO_TEST_CASE(help_describes_the_service) {
  auto [rc, out] = run({bin("trainyard-scheduler"), "--help"});
  BOOST_TEST(rc == 0);
  BOOST_TEST(out.find("--ready-file") != std::string::npos);
  BOOST_TEST(out.find("scheduler") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_job_goes_pending_scheduled_running_succeeded_with_events) {
  Stack s({"n1:8", "n2:8"});
  Watcher w(s.ctx, s.dir / "watch", s.backend);
  auto c = s.client();
  // Wait until the scheduler knows the nodes (a job asking 8 GPUs passes validation).
  wait_for_nodes(*c, 8);
  int64_t t0 = monotonic_ms();
  uint64_t id = submit_ok(*c, make_spec(2, 0.2));
  int64_t acked = monotonic_ms();
  BOOST_REQUIRE(w.wait_for(id, fb::JobState::Succeeded, 15s));
  auto seen = w.states_of(id);
  std::vector<fb::JobState> want{fb::JobState::Pending, fb::JobState::Scheduled, fb::JobState::Running,
                                 fb::JobState::Succeeded};
  BOOST_TEST(seen == want, boost::test_tools::per_element());
  BOOST_TEST(w.was_submitted(id));
  BOOST_TEST(w.account_of(id) == "vision");
  auto rec = get_job(*c, id);
  BOOST_REQUIRE(rec);
  BOOST_REQUIRE_EQUAL(rec->history.size(), 4u);
  // Placed at once on an idle cluster, not on the next periodic cycle (1 s):
  // submitted -> Scheduled (the broker's reply included) by the scheduler's clock.
  double to_scheduled_ms = (rec->history[1]->time_ns - rec->history[0]->time_ns) / 1e6;
  BOOST_TEST_MESSAGE("submit->ack " << acked - t0 << " ms, submitted->scheduled " << to_scheduled_ms << " ms");
  BOOST_TEST(to_scheduled_ms < 200);
  BOOST_TEST(rec->state == fb::JobState::Succeeded);
  BOOST_TEST(rec->nodes.size() == 1u);
  BOOST_TEST(rec->gpu_indices.size() == 2u);
  BOOST_TEST(rec->attempt == 1u);
}

BOOST_AUTO_TEST_CASE(bad_specs_are_refused_with_the_field_named) {
  Stack s({"n1:8:A100"});
  auto c = s.client();
  wait_for_nodes(*c, 8);
  struct Case {
    std::string field;
    std::function<void(fb::JobSpecT&)> edit;
  };
  std::vector<Case> cases = {
      {"gpu_type", [](auto& s) { s.gpu_type = "V100"; }},
      {"gpus_per_node", [](auto& s) { s.gpus_per_node = 9; }},
      {"gpus_per_node", [](auto& s) { s.gpu_type = "A100"; s.gpus_per_node = 0; }},
      {"time_limit_s", [](auto& s) { s.time_limit_s = 0; }},
      {"partition", [](auto& s) { s.partition = "nowhere"; }},
      {"nodes", [](auto& s) { s.nodes = 2; }},
      {"array", [](auto& s) { s.array = "9-1"; }},
  };
  for (auto& k : cases) {
    auto spec = make_spec(1, 0.01);
    k.edit(spec);
    auto r = submit(*c, spec);
    BOOST_TEST(!r.ok(), k.field);
    BOOST_TEST(r.status().code() == ErrorCode::InvalidArgument);
    BOOST_TEST(r.status().message().rfind(k.field + ":", 0) == 0u, k.field << " vs " << r.status().message());
  }
}

BOOST_AUTO_TEST_CASE(cancel_of_a_running_job_stops_it_through_the_broker) {
  Stack s({"n1:4"});
  auto c = s.client();
  wait_for_nodes(*c, 4);
  auto spec = make_spec(4, 0);  // runs until stopped
  spec.grace_s = 3;
  uint64_t id = submit_ok(*c, spec);
  uint64_t waiting = submit_ok(*c, spec);  // no room: stays pending
  BOOST_REQUIRE(wait_state(*c, id, fb::JobState::Running, 10s));
  auto r = c->call(fb::RequestBody::CancelJob, [&](flatbuffers::FlatBufferBuilder& b) {
    return fb::CreateCancelJobDirect(b, id, "no longer needed").Union();
  });
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().to_string());
  BOOST_REQUIRE(wait_state(*c, id, fb::JobState::Cancelled, 10s));
  BOOST_TEST(get_job(*c, id)->reason == "no longer needed");
  BOOST_TEST(wait_until([&] { return s.broker_info().value("releases", 0) >= 1; }, 5s));
  // The freed GPUs go to the waiting job; cancelling a pending job is immediate.
  BOOST_REQUIRE(wait_state(*c, waiting, fb::JobState::Running, 10s));
  auto again = c->call(fb::RequestBody::CancelJob, [&](flatbuffers::FlatBufferBuilder& b) {
    return fb::CreateCancelJobDirect(b, id, "").Union();
  });
  BOOST_TEST(again.status().code() == ErrorCode::FailedPrecondition);
  auto hold = c->call(fb::RequestBody::HoldJob,
                      [&](flatbuffers::FlatBufferBuilder& b) { return fb::CreateHoldJob(b, waiting).Union(); });
  BOOST_TEST(hold.status().code() == ErrorCode::FailedPrecondition);
}

BOOST_AUTO_TEST_CASE(a_job_whose_node_dies_is_requeued_onto_another) {
  Stack s({"n1:2", "n2:2"});
  auto c = s.client();
  wait_for_nodes(*c, 2);
  auto spec = make_spec(2, 0);
  spec.max_retries = 1;
  uint64_t id = submit_ok(*c, spec);
  BOOST_REQUIRE(wait_state(*c, id, fb::JobState::Running, 10s));
  std::string first = get_job(*c, id)->nodes.at(0);
  s.node_event(first, "fail");
  BOOST_REQUIRE(wait_until(
      [&] {
        auto j = get_job(*c, id);
        return j && j->state == fb::JobState::Running && j->attempt == 2;
      },
      10s));
  auto j = get_job(*c, id);
  BOOST_TEST(j->nodes.at(0) != first);
  // Its second node dies too: retries are spent, the job ends NodeFailure.
  s.node_event(j->nodes.at(0), "fail");
  BOOST_REQUIRE(wait_state(*c, id, fb::JobState::NodeFailure, 10s));
}

BOOST_AUTO_TEST_CASE(sigkill_amid_200_jobs_loses_none_and_runs_none_twice) {
  Stack s({"n1:8", "n2:8", "n3:8", "n4:8"});
  auto c = s.client(1500);
  wait_for_nodes(*c, 8);
  const int kJobs = 200;
  std::vector<uint64_t> ids(kJobs, 0);
  std::set<int> kill_at{40, 90, 150};
  int kills = 0;
  for (int i = 0; i < kJobs; ++i) {
    auto spec = make_spec(1 + i % 4, 0.05 + (i % 5) * 0.03);
    spec.client_token = "job-" + std::to_string(i);
    // A client that does not know whether its submit was taken retries
    // with the same token until it gets an answer.
    for (int tries = 0; ids[i] == 0; ++tries) {
      BOOST_REQUIRE_LT(tries, 20);
      auto r = submit(*c, spec);
      if (r.ok()) {
        ids[i] = r->body<fb::Submitted>()->job_ids()->Get(0);
      } else {
        BOOST_REQUIRE_EQUAL(r.status().code(), ErrorCode::Unavailable);
        c = s.client(1500);
      }
    }
    if (kill_at.count(i)) {
      s.sched->kill9();
      s.sched->wait(5s);
      ++kills;
      s.start_scheduler();
      c = s.client(1500);
    }
  }
  // Once more while jobs are being placed, started and finished.
  std::this_thread::sleep_for(300ms);  // let work pile up; not a synchronisation
  s.sched->kill9();
  s.sched->wait(5s);
  s.start_scheduler();
  c = s.client(3000);
  std::set<uint64_t> distinct(ids.begin(), ids.end());
  BOOST_TEST(distinct.size() == static_cast<size_t>(kJobs));
  BOOST_REQUIRE(wait_until(
      [&] {
        auto r = c->call(fb::RequestBody::QueryJobs, [&](flatbuffers::FlatBufferBuilder& b) {
          std::vector<fb::JobState> st{fb::JobState::Succeeded};
          return fb::CreateQueryJobsDirect(b, &st, nullptr, nullptr, nullptr, 0, 10000).Union();
        });
        if (!r) return false;
        size_t done = 0;
        for (auto* j : *r->template body<fb::JobList>()->jobs()) done += distinct.count(j->job_id());
        return done == distinct.size();
      },
      45s));
  auto info = s.broker_info();
  for (uint64_t id : ids) {
    auto key = std::to_string(id);
    BOOST_TEST(info["runs_started"].value(key, 0) == 1, "job " << id << " runs");
    BOOST_TEST(info["grants"].value(key, 0) == 1, "job " << id << " grants");
  }
  BOOST_TEST_MESSAGE("kills: " << kills + 1 << ", broker saw " << info["allocates"] << " Allocates, "
                               << info["repeats"] << " repeats, " << info["conflicts"] << " conflicts");
}

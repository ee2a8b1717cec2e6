// Integration tests of trainyard-scheduler's policies through the real
// binary (service_test_support.h): arrays and dependencies, preemption by
// tier and the priority factors queries show, a bad policy key, fair-share
// usage across a purge and a SIGKILL.
#include <boost/test/unit_test.hpp>

#include "service_test_support.h"

using namespace trainyard;
using namespace trainyard::testing;
using namespace trainyard::scheduler::service_testing;
using namespace std::chrono_literals;

BOOST_AUTO_TEST_CASE(arrays_and_dependencies_through_the_service) {
  Stack s({"n1:8", "n2:8"});
  auto c = s.client();
  wait_for_nodes(*c, 8);
  Watcher w(s.ctx, s.dir / "watch", s.backend);
  auto spec = make_spec(1, 0.1);
  spec.array = "0-11%3";
  auto r = submit(*c, spec);
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().to_string());
  auto* sub = r->body<fb::Submitted>();
  BOOST_REQUIRE_EQUAL(sub->job_ids()->size(), 12u);
  uint64_t array_id = sub->array_job_id();
  auto after = make_spec(1, 0.01);
  auto d = std::make_unique<fb::DependencyT>();
  d->kind = fb::DependencyKind::AfterOk;
  d->job_id = array_id;
  after.dependencies.push_back(std::move(d));
  uint64_t dep = submit_ok(*c, after);
  BOOST_TEST(get_job(*c, dep)->reason == "Dependency");
  BOOST_REQUIRE(w.wait_for(dep, fb::JobState::Succeeded, 30s));
  // Replay the transitions in stream order: never more than 3 tasks hold
  // resources at once.
  std::set<uint64_t> tasks(sub->job_ids()->begin(), sub->job_ids()->end());
  std::set<uint64_t> active;
  size_t max_active = 0;
  {
    std::lock_guard lock(w.mu);
    for (auto& [job, to] : w.log) {
      if (!tasks.count(job)) continue;
      if (to == fb::JobState::Scheduled || to == fb::JobState::Running) {
        active.insert(job);
      } else {
        active.erase(job);
      }
      max_active = std::max(max_active, active.size());
    }
  }
  BOOST_TEST(max_active <= 3u);
  BOOST_TEST(max_active == 3u);
  for (auto t : tasks) BOOST_TEST(w.saw(t, fb::JobState::Succeeded));
}

BOOST_AUTO_TEST_CASE(a_higher_tier_preempts_through_the_broker_and_queries_show_priority_factors) {
  Stack s({"n1:4"}, {"scheduler.policy=fairshare+backfill", "scheduler.preemption.tiers=true",
                     "scheduler.fairshare.shares.vision=2"});
  Watcher w(s.ctx, s.dir / "watch", s.backend);
  auto c = s.client();
  wait_for_nodes(*c, 4);
  auto low = make_spec(4, 0);  // runs until stopped
  low.grace_s = 7;
  uint64_t victim = submit_ok(*c, low);
  BOOST_REQUIRE(w.wait_for(victim, fb::JobState::Running, 15s));
  auto high = make_spec(4, 0);
  high.account = "nlp";
  high.priority = 5;
  uint64_t boss = submit_ok(*c, high);
  BOOST_REQUIRE(w.wait_for(boss, fb::JobState::Running, 15s));
  // The victim went Running -> Preempted -> Pending and waits again.
  BOOST_REQUIRE(w.wait_for(victim, fb::JobState::Pending, 15s));
  auto seen = w.states_of(victim);
  std::vector<fb::JobState> want{fb::JobState::Pending, fb::JobState::Scheduled, fb::JobState::Running,
                                 fb::JobState::Preempted, fb::JobState::Pending};
  BOOST_TEST(seen == want, boost::test_tools::per_element());
  auto rec = get_job(*c, victim);
  BOOST_REQUIRE(rec);
  BOOST_TEST(rec->state == fb::JobState::Pending);
  BOOST_TEST(rec->preemptions == 1u);
  BOOST_TEST(rec->attempt == 2u);  // a new attempt, no retry spent
  BOOST_TEST(rec->reason == "Resources");
  BOOST_TEST(rec->priority_tier == 0);
  BOOST_TEST(rec->fairshare_factor > 0.0);
  BOOST_TEST(rec->fairshare_factor <= 1.0);
  BOOST_TEST(rec->age_factor >= 0.0);
  auto running = get_job(*c, boss);
  BOOST_REQUIRE(running);
  BOOST_TEST(running->priority_tier == 5);
  // Its backfill reservation: when the job holding the node reaches its limit.
  BOOST_REQUIRE(wait_until([&] { return get_job(*c, victim)->expected_start_ns > 0; }, 5s));
  int64_t due = running->start_time_ns + int64_t{600} * 1'000'000'000;
  BOOST_TEST(std::llabs(get_job(*c, victim)->expected_start_ns - due) < int64_t{5'000'000'000});
}

BOOST_AUTO_TEST_CASE(a_bad_policy_key_stops_the_scheduler_with_the_key_named) {
  TempDir dir;
  auto [rc, out] = run({bin("trainyard-scheduler"), "--set", "scheduler.data=" + dir / "d", "--set",
                        "scheduler.backfill=sometimes"});
  BOOST_TEST(rc != 0);
  BOOST_TEST(out.find("scheduler.backfill") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_purged_jobs_fair_share_usage_survives_a_sigkill_of_the_scheduler) {
  // No decay (half_life_s = 0), so the factor is the same at any time.
  Stack s({"n1:4"}, {"scheduler.policy=fairshare", "scheduler.fairshare.half_life_s=0", "scheduler.job_retention_s=1"});
  auto c = s.client();
  wait_for_nodes(*c, 4);
  uint64_t ran = submit_ok(*c, make_spec(4, 0.5));  // vision's only run
  BOOST_REQUIRE(wait_state(*c, ran, fb::JobState::Succeeded, 15s));
  // Its record is purged a second after it ended.
  BOOST_REQUIRE(wait_until([&] { return !get_job(*c, ran); }, 15s));
  auto held = [&](const std::string& account) {
    auto spec = make_spec(1, 0.5);
    spec.account = account;
    auto r = c->call(fb::RequestBody::SubmitJob, [&](flatbuffers::FlatBufferBuilder& b) {
      return fb::CreateSubmitJob(b, fb::CreateJobSpec(b, &spec), /*hold=*/true).Union();
    });
    BOOST_REQUIRE_MESSAGE(r.ok(), r.status().to_string());
    return r->body<fb::Submitted>()->job_ids()->Get(0);
  };
  uint64_t vision = held("vision");
  uint64_t nlp = held("nlp");
  double before = 0;
  BOOST_REQUIRE(wait_until(
      [&] {
        auto v = get_job(*c, vision);
        before = v ? v->fairshare_factor : 0;
        return before > 0 && before < 1;  // vision's usage counts against it
      },
      10s));
  s.sched->kill9();
  s.sched->wait(5s);
  s.start_scheduler();
  c = s.client(3000);
  std::optional<fb::JobRecordT> v;
  BOOST_REQUIRE(wait_until([&] { return (v = get_job(*c, vision)).has_value(); }, 15s));
  // The purged job's usage was restored with the rest (before, it was lost
  // with its record and vision's factor came back as 1).
  BOOST_TEST(v->fairshare_factor == before, boost::test_tools::tolerance(1e-9));
  BOOST_TEST(get_job(*c, nlp)->fairshare_factor == 1.0);
}

// Unit tests of the scheduler's pure core: job arrays (their specs and
// throttle), dependencies and begin times.
#include <boost/test/unit_test.hpp>

#include "core_test_support.h"

using namespace trainyard;
using namespace trainyard::scheduler;
using namespace trainyard::scheduler::testing;

BOOST_AUTO_TEST_CASE(array_throttle_never_exceeds_its_limit) {
  Sim sim;
  for (int i = 0; i < 4; ++i) sim.s.node_up(make_node("n" + std::to_string(i), 8));
  auto spec = make_spec(1);
  spec.array = "0-19%4";
  auto r = sim.s.submit(spec, sim.now);
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(r->job_ids.size() == 20u);
  BOOST_TEST(r->array_job_id != 0u);
  std::set<int32_t> indices;
  size_t max_active = 0, done = 0;
  for (int round = 0; round < 100 && done < 20; ++round) {
    sim.cycle();
    size_t active = 0;
    std::vector<JobId> running;
    for (JobId id : r->job_ids) {
      auto* j = sim.s.job(id);
      if (j->state == JobState::Scheduled || j->state == JobState::Running || j->allocating) {
        ++active;
        running.push_back(id);
      }
    }
    max_active = std::max(max_active, active);
    BOOST_REQUIRE_LE(active, 4u);
    // End one task per round.
    if (!running.empty()) {
      indices.insert(sim.s.job(running[0])->array_index);
      sim.start(running[0]);
      sim.finish(running[0]);
      ++done;
    }
  }
  BOOST_TEST(done == 20u);
  BOOST_TEST(max_active == 4u);
  BOOST_TEST(indices.size() == 20u);
}

BOOST_AUTO_TEST_CASE(array_specs_parse_like_slurm) {
  auto a = parse_array("0-99%8", 10000);
  BOOST_REQUIRE(a.ok());
  BOOST_TEST(a->indices.size() == 100u);
  BOOST_TEST(a->max_running == 8u);
  auto b = parse_array("1,3,5", 10000);
  BOOST_REQUIRE(b.ok());
  BOOST_TEST((b->indices == std::vector<int32_t>{1, 3, 5}));
  auto c = parse_array("0-15:4", 10000);
  BOOST_REQUIRE(c.ok());
  BOOST_TEST((c->indices == std::vector<int32_t>{0, 4, 8, 12}));
  for (const char* bad : {"", "5-1", "a-b", "1,,2", "0-9%0", "0-3:0", "-1"}) {
    auto r = parse_array(bad, 10000);
    BOOST_TEST(!r.ok(), bad);
    BOOST_TEST(r.status().message().rfind("array:", 0) == 0u, r.status().message());
  }
  BOOST_TEST(!parse_array("0-20000", 10000).ok());
}

BOOST_AUTO_TEST_CASE(dependencies_wait_and_start_when_met) {
  Sim sim;
  sim.s.node_up(make_node("n1", 8));
  JobId first = sim.submit(make_spec(1));
  auto after = make_spec(1);
  auto dep = std::make_unique<fb::DependencyT>();
  dep->kind = fb::DependencyKind::AfterOk;
  dep->job_id = first;
  after.dependencies.push_back(std::move(dep));
  JobId second = sim.submit(after);
  auto allocs = sim.cycle();
  BOOST_TEST((placed_ids(allocs) == std::set<JobId>{first}));
  BOOST_TEST(sim.s.reason_of(*sim.s.job(second)) == "Dependency");
  sim.start(first);
  sim.finish(first);
  BOOST_TEST((placed_ids(sim.cycle()) == std::set<JobId>{second}));
}

BOOST_AUTO_TEST_CASE(a_job_with_a_begin_time_waits_for_it_then_starts) {
  Sim sim;
  sim.s.node_up(make_node("n1", 8));
  auto spec = make_spec(1);
  spec.begin_ns = sim.now + 60'000'000'000;  // --begin=now+60
  JobId later = sim.submit(spec);
  JobId at_once = sim.submit(make_spec(1));
  sim.s.tick(sim.now);
  BOOST_TEST((placed_ids(sim.cycle()) == std::set<JobId>{at_once}));  // free GPUs do not start it early
  BOOST_TEST(sim.state(later) == JobState::Pending);
  BOOST_TEST(sim.s.reason_of(*sim.s.job(later)) == "BeginTime");
  sim.now += 59'000'000'000;
  sim.s.tick(sim.now);
  BOOST_TEST(sim.cycle().empty());
  sim.now += 1'000'000'000;
  sim.s.tick(sim.now);
  BOOST_TEST((placed_ids(sim.cycle()) == std::set<JobId>{later}));
  // Held while it waits, released after its time: it starts at the release.
  spec.begin_ns = sim.now + 5'000'000'000;
  JobId held = sim.submit(spec);
  BOOST_TEST(sim.s.hold(held, sim.now).ok());
  sim.now += 10'000'000'000;
  sim.s.tick(sim.now);
  BOOST_TEST(sim.cycle().empty());
  BOOST_TEST(sim.s.release(held, sim.now).ok());
  BOOST_TEST((placed_ids(sim.cycle()) == std::set<JobId>{held}));
}

BOOST_AUTO_TEST_CASE(dependency_that_can_never_be_met_cancels_with_a_reason) {
  Sim sim;
  sim.s.node_up(make_node("n1", 8));
  JobId first = sim.submit(make_spec(1));
  auto with = [&](fb::DependencyKind k) {
    auto s = make_spec(1);
    auto d = std::make_unique<fb::DependencyT>();
    d->kind = k;
    d->job_id = first;
    s.dependencies.push_back(std::move(d));
    return sim.submit(s);
  };
  JobId ok = with(fb::DependencyKind::AfterOk);
  JobId notok = with(fb::DependencyKind::AfterNotOk);
  JobId any = with(fb::DependencyKind::AfterAny);
  sim.cycle();
  sim.start(first);
  sim.finish(first, fb::RunOutcome::Failed, 2);  // max_retries 0: Failed for good
  BOOST_TEST(sim.state(first) == JobState::Failed);
  BOOST_TEST(sim.state(ok) == JobState::Cancelled);
  BOOST_TEST(sim.s.job(ok)->reason.find("DependencyNeverSatisfied") == 0u, sim.s.job(ok)->reason);
  BOOST_TEST(sim.s.job(ok)->reason.find("Failed") != std::string::npos);
  auto placed = placed_ids(sim.cycle());
  BOOST_TEST(placed.count(notok) == 1u);
  BOOST_TEST(placed.count(any) == 1u);
  // A chain: a job waiting on the cancelled one is cancelled in turn.
  auto chained = make_spec(1);
  auto d = std::make_unique<fb::DependencyT>();
  d->job_id = ok;
  chained.dependencies.push_back(std::move(d));
  JobId c = sim.submit(chained);
  BOOST_TEST(sim.state(c) == JobState::Cancelled);
}

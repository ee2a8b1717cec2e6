// Unit tests of the scheduling policy in the core: fair share (decayed,
// dominant-resource usage; shares; age), EASY backfill and its
// reservations, strict FIFO, gangs, quotas with borrowing and reclaim,
// preemption by tier (grace, non-preemptible jobs), "any" GPU type, and
// NUMA-aware packing. Time is virtual: each test drives the core directly.
// This file: fair share, backfill and FIFO, gangs and placement; quotas and
// preemption are in policy_quotas_and_tiers_test.cc, the shared helpers in
// policy_test_support.h.
#define BOOST_TEST_MODULE scheduler_policy
#include <boost/test/unit_test.hpp>

#include "policy_test_support.h"

using namespace trainyard;
using namespace trainyard::scheduler;
using namespace trainyard::scheduler::policy_testing;

// --- fair share ----------------------------------------------------------------

BOOST_AUTO_TEST_CASE(fair_share_puts_the_account_that_used_less_first) {
  Sim sim({}, "fairshare");
  sim.s.node_up(make_node("n1", 1));
  JobId used = sim.submit(make_spec(1, "vision"));
  sim.cycle();
  sim.advance(1000);
  JobId a = sim.submit(make_spec(1, "vision"));  // submitted first...
  sim.advance(1);
  JobId b = sim.submit(make_spec(1, "nlp"));     // ...but nlp used nothing
  sim.finish(used);
  sim.s.tick(sim.now);  // factors are refreshed on the periodic tick
  BOOST_TEST(sim.s.factors(*sim.s.job(a)).fairshare < sim.s.factors(*sim.s.job(b)).fairshare);
  BOOST_TEST(sim.s.factors(*sim.s.job(b)).fairshare == 1.0);
  BOOST_TEST((sim.cycle() == std::set<JobId>{b}));
  BOOST_TEST(sim.reason(a) == "Resources");
}

BOOST_AUTO_TEST_CASE(fair_share_usage_decays_with_its_half_life) {
  SchedulerConfig c;
  c.fairshare.half_life_s = 100;
  c.fairshare.weight_age = 0;
  Sim sim(c, "fairshare");
  sim.s.node_up(make_node("n1", 1));
  // vision used the GPU for 500 s long ago, nlp for 200 s just now.
  JobId old_run = sim.submit(make_spec(1, "vision"));
  sim.cycle();
  sim.advance(500);
  sim.finish(old_run);
  sim.advance(2000);  // 20 half-lives
  JobId recent = sim.submit(make_spec(1, "nlp"));
  sim.cycle();
  sim.advance(200);
  JobId b = sim.submit(make_spec(1, "nlp"));
  JobId a = sim.submit(make_spec(1, "vision"));
  sim.finish(recent);
  sim.s.tick(sim.now);
  BOOST_TEST(sim.s.factors(*sim.s.job(a)).fairshare > sim.s.factors(*sim.s.job(b)).fairshare);
  BOOST_TEST((sim.cycle() == std::set<JobId>{a}));
}

BOOST_AUTO_TEST_CASE(fair_share_weighs_the_dominant_gpu_type_and_the_shares) {
  // vision used both A100s (all of that type); nlp used more GPU-seconds
  // but only half of the V100s: vision's dominant share is the larger.
  Sim sim({}, "fairshare");
  sim.s.node_up(make_node("a100", 2, "A100"));
  sim.s.node_up(make_node("v100", 8, "V100"));
  JobId va = sim.submit(make_spec(2, "vision", 3600, 0, "A100"));
  JobId nv = sim.submit(make_spec(4, "nlp", 3600, 0, "V100"));
  sim.cycle();
  sim.advance(1000);
  sim.finish(va);
  sim.finish(nv);
  JobId a = sim.submit(make_spec(1, "vision"));
  JobId b = sim.submit(make_spec(1, "nlp"));
  sim.s.tick(sim.now);
  BOOST_TEST(sim.s.factors(*sim.s.job(a)).fairshare < sim.s.factors(*sim.s.job(b)).fairshare);

  // The same usage with vision holding 4 times nlp's share turns it round.
  SchedulerConfig c;
  c.fairshare.shares = {{"vision", 4}, {"nlp", 1}};
  Sim weighted(c, "fairshare");
  weighted.s.node_up(make_node("a100", 2, "A100"));
  weighted.s.node_up(make_node("v100", 8, "V100"));
  va = weighted.submit(make_spec(2, "vision", 3600, 0, "A100"));
  nv = weighted.submit(make_spec(4, "nlp", 3600, 0, "V100"));
  weighted.cycle();
  weighted.advance(1000);
  weighted.finish(va);
  weighted.finish(nv);
  a = weighted.submit(make_spec(1, "vision"));
  b = weighted.submit(make_spec(1, "nlp"));
  weighted.s.tick(weighted.now);
  BOOST_TEST(weighted.s.factors(*weighted.s.job(a)).fairshare > weighted.s.factors(*weighted.s.job(b)).fairshare);
}

BOOST_AUTO_TEST_CASE(age_lets_a_long_waiting_job_pass_a_lighter_account) {
  SchedulerConfig c;
  c.fairshare.weight_fairshare = 1000;
  c.fairshare.weight_age = 2000;
  c.fairshare.max_age_s = 3600;
  Sim sim(c, "fairshare");
  sim.s.node_up(make_node("n1", 1));
  JobId blocker = sim.submit(make_spec(1, "vision", 100'000));
  sim.cycle();
  JobId old = sim.submit(make_spec(1, "vision"));
  sim.advance(3600);
  JobId fresh = sim.submit(make_spec(1, "nlp"));
  sim.finish(blocker);
  sim.s.tick(sim.now);
  auto fo = sim.s.factors(*sim.s.job(old)), ff = sim.s.factors(*sim.s.job(fresh));
  BOOST_TEST(fo.age == 1.0);
  BOOST_TEST(ff.age == 0.0);
  BOOST_TEST(fo.fairshare < ff.fairshare);
  BOOST_TEST(fo.priority > ff.priority);
  BOOST_TEST((sim.cycle() == std::set<JobId>{old}));
}

// --- backfill ------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(easy_backfill_starts_short_jobs_and_keeps_long_ones_off_the_reservation) {
  Sim sim(with(Backfill::kEasy));
  sim.s.node_up(make_node("n1", 4));
  JobId running = sim.submit(make_spec(2, "vision", 100));
  sim.cycle();
  int64_t t0 = sim.now;
  JobId big = sim.submit(make_spec(4, "vision", 100));
  JobId short_one = sim.submit(make_spec(1, "vision", 50));   // ends before the big one's start
  JobId long_one = sim.submit(make_spec(2, "vision", 500));   // would delay it
  JobId long_small = sim.submit(make_spec(1, "vision", 500)); // would leave it 3 of 4 at its start
  BOOST_TEST((sim.cycle() == std::set<JobId>{short_one}));
  BOOST_TEST(sim.s.job(big)->expected_start_ns == t0 + 100 * kS);
  BOOST_TEST(sim.reason(big) == "Resources");
  BOOST_TEST(sim.reason(long_one) == "Priority");
  BOOST_TEST(sim.reason(long_small) == "Priority");
  sim.advance(50);
  sim.finish(short_one);
  BOOST_TEST(sim.cycle().empty());
  sim.advance(50);
  sim.finish(running);
  BOOST_TEST((sim.cycle() == std::set<JobId>{big}));
  BOOST_TEST(sim.s.job(big)->start_time_ns == t0 + 100 * kS);
}

BOOST_AUTO_TEST_CASE(greedy_would_delay_the_big_job_easy_does_not) {
  // The same jobs without a reservation: the long job takes the GPUs the
  // big one waits for.
  Sim sim(with(Backfill::kGreedy));
  sim.s.node_up(make_node("n1", 4));
  sim.submit(make_spec(2, "vision", 100));
  sim.cycle();
  sim.submit(make_spec(4, "vision", 100));
  JobId long_one = sim.submit(make_spec(2, "vision", 500));
  BOOST_TEST((sim.cycle() == std::set<JobId>{long_one}));
}

BOOST_AUTO_TEST_CASE(backfill_never_delays_a_reservation_random_workload) {
  // Jobs of random shapes and limits, runs that end at or before their
  // limits: every job starts no later than the first start it was promised.
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    std::mt19937_64 rng(seed);
    Sim sim(with(Backfill::kEasy));
    for (int n = 0; n < 3; ++n) sim.s.node_up(make_node("n" + std::to_string(n), 4));
    std::map<JobId, int64_t> run_for, promised;
    for (int i = 0; i < 40; ++i) {
      uint32_t gpus = 1 + static_cast<uint32_t>(rng() % 4);
      uint64_t limit = 10 + rng() % 200;
      auto spec = make_spec(gpus, "vision", limit);
      if (rng() % 8 == 0) spec.nodes = 2;
      JobId id = sim.submit(spec);
      run_for[id] = static_cast<int64_t>(1 + rng() % limit);
    }
    std::map<JobId, int64_t> ends;  // running: when they end
    for (int step = 0; step < 1000 && (!ends.empty() || sim.s.queued() > 0); ++step) {
      for (JobId id : sim.cycle()) ends[id] = sim.now + run_for[id] * kS;
      for (auto& r : sim.s.reservations()) {
        if (!promised.count(r.job)) promised[r.job] = r.start_ns;
      }
      if (ends.empty()) break;
      auto next = std::min_element(ends.begin(), ends.end(), [](auto& a, auto& b) { return a.second < b.second; });
      sim.now = next->second;
      for (auto it = ends.begin(); it != ends.end();) {
        if (it->second == sim.now) {
          sim.finish(it->first);
          it = ends.erase(it);
        } else {
          ++it;
        }
      }
    }
    BOOST_TEST_REQUIRE(sim.s.queued() == 0u);
    BOOST_TEST(!promised.empty());
    for (auto& [id, at] : promised) {
      BOOST_TEST(sim.s.job(id)->history.size() >= 2u);
      int64_t started = 0;
      for (auto& t : sim.s.job(id)->history) {
        if (t.to == JobState::Running) started = t.time_ns;
      }
      BOOST_TEST(started <= at, "seed " << seed << ": job " << id << " started " << (started - at) / kS
                                          << " s after its reserved start");
    }
  }
}

BOOST_AUTO_TEST_CASE(fifo_is_strict_order_in_a_partition) {
  Sim sim(with(Backfill::kOff), "fifo");
  sim.s.node_up(make_node("n1", 4));
  sim.submit(make_spec(2, "vision", 100));
  sim.cycle();
  JobId big = sim.submit(make_spec(4));
  JobId small = sim.submit(make_spec(1, "vision", 10, 5));  // a higher tier means nothing to fifo
  BOOST_TEST(sim.cycle().empty());
  BOOST_TEST(sim.reason(big) == "Resources");
  BOOST_TEST(sim.reason(small) == "Priority");
}

// --- gangs, placement ----------------------------------------------------------

BOOST_AUTO_TEST_CASE(a_gang_reservation_holds_every_node_it_needs) {
  Sim sim(with(Backfill::kEasy));
  sim.s.node_up(make_node("n1", 4));
  sim.s.node_up(make_node("n2", 4));
  sim.s.node_up(make_node("n3", 4));
  JobId a = sim.submit(make_spec(4, "vision", 100));
  JobId b = sim.submit(make_spec(2, "vision", 200));
  sim.cycle();
  auto gang = make_spec(4, "vision", 100);
  gang.nodes = 3;
  JobId g = sim.submit(gang);
  JobId filler = sim.submit(make_spec(2, "vision", 1000));  // fits on the free node, but outlives the reservation
  BOOST_TEST(sim.cycle().empty());
  BOOST_REQUIRE_EQUAL(sim.s.reservations().size(), 1u);
  BOOST_TEST(sim.s.reservations()[0].nodes.size() == 3u);
  BOOST_TEST(sim.s.job(g)->expected_start_ns == sim.now + 200 * kS);
  BOOST_TEST(sim.reason(filler) == "Priority");
  sim.advance(100);
  sim.finish(a);
  BOOST_TEST(sim.cycle().empty());  // all three nodes or none
  BOOST_TEST(sim.s.cluster().free_gpus() == 10u);
  sim.advance(100);
  sim.finish(b);
  BOOST_TEST((sim.cycle() == std::set<JobId>{g}));
  BOOST_TEST(sim.s.job(g)->nodes.size() == 3u);
}

BOOST_AUTO_TEST_CASE(multi_gpu_jobs_take_gpus_of_one_numa_domain_and_fragmentation_is_measured) {
  Sim sim;
  sim.s.node_up(with_numa(make_node("n1", 8), {0, 0, 0, 0, 1, 1, 1, 1}));
  sim.s.node_up(with_numa(make_node("n2", 8), {0, 0, 0, 0, 1, 1, 1, 1}));
  JobId three = sim.submit(make_spec(3));
  sim.cycle();
  JobId two = sim.submit(make_spec(2));
  sim.cycle();
  JobId one = sim.submit(make_spec(1));
  sim.cycle();
  std::string node = sim.s.job(three)->nodes.at(0);
  BOOST_TEST(sim.s.job(two)->nodes.at(0) == node);  // packed on the used node
  BOOST_TEST(sim.s.job(one)->nodes.at(0) == node);
  auto domain = [](const std::vector<uint32_t>& g) {
    std::set<int> d;
    for (auto i : g) d.insert(i < 4 ? 0 : 1);
    return d;
  };
  BOOST_TEST(domain(sim.s.job(three)->gpu_indices).size() == 1u);
  BOOST_TEST(domain(sim.s.job(two)->gpu_indices).size() == 1u);
  BOOST_TEST(domain(sim.s.job(two)->gpu_indices) != domain(sim.s.job(three)->gpu_indices));
  BOOST_TEST(domain(sim.s.job(one)->gpu_indices) == domain(sim.s.job(three)->gpu_indices));  // fills the fuller domain
  auto f = sim.s.cluster().fragmentation();
  BOOST_TEST(f.free_gpus == 10u);
  BOOST_TEST(f.free_on_whole_nodes == 8u);
  BOOST_TEST(f.whole_free_nodes == 1u);
  BOOST_TEST(f.ratio() == 0.2, boost::test_tools::tolerance(1e-9));
}

BOOST_AUTO_TEST_CASE(any_type_reserves_on_the_type_that_starts_it_soonest) {
  Sim sim(with(Backfill::kEasy));
  sim.s.node_up(make_node("v100", 4, "V100"));
  sim.s.node_up(make_node("a100", 4, "A100"));
  sim.submit(make_spec(4, "vision", 1000, 0, "V100"));
  JobId a100_job = sim.submit(make_spec(4, "vision", 100, 0, "A100"));
  sim.cycle();
  JobId any = sim.submit(make_spec(4, "vision", 100));
  BOOST_TEST(sim.cycle().empty());
  BOOST_REQUIRE_EQUAL(sim.s.reservations().size(), 1u);
  auto& r = sim.s.reservations()[0];
  BOOST_TEST(sim.s.cluster().gpu_type_name(r.type) == "A100");
  BOOST_TEST(sim.s.job(any)->expected_start_ns == sim.now + 100 * kS);
  sim.advance(100);
  sim.finish(a100_job);
  BOOST_TEST((sim.cycle() == std::set<JobId>{any}));
  BOOST_TEST(sim.s.job(any)->nodes.at(0) == "a100");
}

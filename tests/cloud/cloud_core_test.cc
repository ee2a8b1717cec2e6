// Unit tests of the broker's cloud core (CloudPools): when it rents, which
// pool, when it gives back, the lease lifecycle, boot timeouts, launch
// errors, orphans and the kill switch. No processes: time is a number.
// This file: when it rents and from which pool, at what price and within
// what budget, and the pools' config; a lease's life once rented is in
// cloud_lease_test.cc, the shared helpers in cloud_core_test_support.h.
#define BOOST_TEST_MODULE cloud_core
#include <boost/test/unit_test.hpp>

#include "cloud_core_test_support.h"

using namespace trainyard;
using namespace trainyard::broker;
using namespace trainyard::broker::cloud_testing;

BOOST_FIXTURE_TEST_CASE(rents_only_once_a_job_has_waited_max_wait_before_burst, Fixture) {
  CloudPools c({}, {pool("burst", 30)});
  std::vector<WaitingJob> w{job(7, 2, kT0)};  // owned-1 could take it: it waits its turn first
  CloudEffects fx;
  c.plan(w, cluster, kT0 + 119 * kS, fx);
  BOOST_TEST(launches(fx) == 0u);
  c.plan(w, cluster, kT0 + 120 * kS, fx);
  BOOST_TEST(launches(fx) == 1u);
  BOOST_TEST(c.lease(1)->for_job == 7u);
  BOOST_TEST(c.lease(1)->node == "burst-0");  // the pool's first slot
  BOOST_TEST(c.lease(1)->price_micros_per_hour == 30'000'000);
  BOOST_TEST(c.waiting_reason(7, kT0 + 120 * kS) == "waiting for cloud node (pool burst, ready in ~3 min)");
}

BOOST_FIXTURE_TEST_CASE(the_backfill_reservation_decides_before_the_job_has_waited, Fixture) {
  CloudPools c({}, {pool("burst", 30)});
  auto soon = job(1, 2, kT0);
  soon.expected_start_ns = kT0 + 60 * kS;  // owned nodes free up within the threshold
  auto late = job(2, 2, kT0);
  late.expected_start_ns = kT0 + 3600 * kS;
  CloudEffects fx;
  c.plan({soon, late}, cluster, kT0 + kS, fx);
  BOOST_TEST(launches(fx) == 1u);
  BOOST_TEST(c.lease(1)->for_job == 2u);
}

BOOST_FIXTURE_TEST_CASE(a_large_job_waits_burst_large_wait_s_for_owned_nodes_a_small_one_only_the_threshold, Fixture) {
  CloudOptions o;
  o.burst_large_gpu_hours = 10;
  o.burst_large_wait_s = 3600;
  CloudPools c(o, {pool("burst", 30)});
  auto small = job(1, 1, kT0);
  small.time_limit_s = 3600;       // 1 GPU-hour
  auto large = job(2, 2, kT0);
  large.time_limit_s = 10 * 3600;  // 20 GPU-hours: large
  auto unknown = job(3, 2, kT0);   // no time limit: its compute is unknown, not large
  BOOST_TEST(c.burst_threshold_ns(*c.pool("burst"), small) == 120 * kS);
  BOOST_TEST(c.burst_threshold_ns(*c.pool("burst"), large) == 3600 * kS);
  BOOST_TEST(c.burst_threshold_ns(*c.pool("burst"), unknown) == 120 * kS);
  CloudEffects fx;
  c.plan({small, large}, cluster, kT0 + 120 * kS, fx);
  BOOST_REQUIRE_EQUAL(launches(fx), 1u);
  BOOST_TEST(c.lease(1)->for_job == 1u);

  CloudPools d(o, {pool("burst", 30)});
  fx = {};
  d.plan({large}, cluster, kT0 + 3599 * kS, fx);
  BOOST_TEST(launches(fx) == 0u);
  d.plan({large}, cluster, kT0 + 3600 * kS, fx);
  BOOST_REQUIRE_EQUAL(launches(fx), 1u);
  BOOST_TEST(d.lease(1)->for_job == 2u);

  // Its backfill reservation starts later than burst_large_wait_s: waiting
  // would not get it owned nodes in time, so it rents at once.
  CloudPools e(o, {pool("burst", 30)});
  auto far = large;
  far.expected_start_ns = kT0 + 2 * 3600 * kS;
  fx = {};
  e.plan({far}, cluster, kT0 + kS, fx);
  BOOST_TEST(launches(fx) == 1u);
}

// estimate_owned_start: owned-1's two GPUs are busy until kT0 + 2 h (the
// running lease's time limit); the waiting jobs are placed after it in
// queue order, and one that rents by its estimate delays nobody behind it.
BOOST_FIXTURE_TEST_CASE(estimate_owned_start_rents_at_once_a_job_whose_estimated_owned_wait_is_past_its_threshold,
                        Fixture) {
  AllocateRequest run;
  run.job_id = 100;
  run.attempt = 1;
  auto spec = std::make_shared<fb::JobSpecT>();
  spec->time_limit_s = 2 * 3600;
  run.spec = spec;
  run.placements.push_back(PlacementRequest{"owned-1", {0, 1}, 1, 0});
  Effects e;
  BOOST_REQUIRE(cluster.allocate(run, {kT0, kT0}, e));
  auto first = job(1, 2, kT0);  // 2 GPU-hours: large, waits up to 4 h
  first.time_limit_s = 3600;
  auto small = job(2, 1, kT0);  // a quarter GPU-hour: rents past 120 s
  small.time_limit_s = 900;
  auto last = job(3, 2, kT0);   // large too
  last.time_limit_s = 3600;
  CloudOptions o;
  o.burst_large_gpu_hours = 1;
  o.burst_large_wait_s = 4 * 3600;
  int64_t now = kT0 + 10 * kS;
  CloudEffects fx;
  CloudPools off(o, {pool("burst", 30)});
  off.plan({first, small, last}, cluster, now, fx);
  BOOST_TEST(launches(fx) == 0u);  // no reservation: each waits its threshold first
  BOOST_TEST(off.owned_start_estimate(2) == 0);

  o.estimate_owned_start = true;
  CloudPools on(o, {pool("burst", 30)});
  fx = {};
  on.plan({first, small, last}, cluster, now, fx);
  BOOST_TEST(on.owned_start_estimate(1) == kT0 + 2 * 3600 * kS);  // when the running lease's limit frees owned-1
  BOOST_TEST(on.owned_start_estimate(2) == kT0 + 3 * 3600 * kS);  // behind job 1: 3 h away, past 120 s
  BOOST_TEST(on.owned_start_estimate(3) == kT0 + 3 * 3600 * kS);  // job 2 rents: it does not delay job 3
  BOOST_REQUIRE_EQUAL(launches(fx), 1u);                           // only job 2 rents; 1 and 3 wait under 4 h
  BOOST_TEST(on.lease(1)->for_job == 2u);
}

BOOST_FIXTURE_TEST_CASE(rented_for_eligible_only_keeps_an_idle_node_closed_until_an_eligible_job_claims_it, Fixture) {
  CloudOptions o;
  o.rented_for_eligible_only = true;
  CloudPools c(o, {pool("burst", 30)});
  CloudEffects fx;
  c.plan({job(1, 2, kT0)}, cluster, kT0 + 120 * kS, fx);
  BOOST_REQUIRE_EQUAL(launches(fx), 1u);
  int64_t t = kT0 + 200 * kS;
  c.plan({}, cluster, t, fx);  // job 1 started on the owned node: no job is meant for the booting node now
  BOOST_TEST(c.lease(1)->for_job == 0u);
  make_ready(c, 1, t);
  BOOST_TEST(cluster.node("burst-0")->drained);  // registered closed: no waiting job may take it unasked

  // A job about to start on owned nodes (not eligible) neither opens it nor rents.
  auto next = job(2, 2, t);
  fx = {};
  c.plan({next}, cluster, t + 10 * kS, fx);
  BOOST_TEST(launches(fx) == 0u);
  BOOST_TEST(cluster.node("burst-0")->drained);
  // Once it is eligible, it claims the idle node instead of renting another.
  c.plan({next}, cluster, t + 120 * kS, fx);
  BOOST_TEST(launches(fx) == 0u);
  BOOST_TEST(c.lease(1)->for_job == 2u);
  BOOST_TEST(!cluster.node("burst-0")->drained);
  BOOST_TEST(to_string(c.lease(1)->state) == "ready");
}

BOOST_FIXTURE_TEST_CASE(a_job_no_owned_node_can_take_rents_at_once_from_the_cheapest_pool_that_fits, Fixture) {
  CloudPools c({}, {pool("dear", 40, "H100"), pool("cheap", 20, "H100"), pool("cheapest-a100", 5, "A100")});
  CloudEffects fx;
  c.plan({job(3, 4, kT0, "H100")}, cluster, kT0 + kS, fx);
  BOOST_REQUIRE_EQUAL(launches(fx), 1u);
  BOOST_TEST(c.lease(1)->pool == "cheap");
}

BOOST_FIXTURE_TEST_CASE(waits_for_its_own_reasons_never_rent, Fixture) {
  CloudPools c({}, {pool("burst", 30)});
  auto held = job(3, 4, kT0, "H100");
  held.waits_for_resources = false;  // held, a dependency, over quota, budget spent
  CloudEffects fx;
  c.plan({held}, cluster, kT0 + 3600 * kS, fx);
  BOOST_TEST(launches(fx) == 0u);
}

BOOST_FIXTURE_TEST_CASE(never_rents_again_for_a_job_a_booting_node_will_take, Fixture) {
  CloudPools c({}, {pool("burst", 30)});
  CloudEffects fx;
  c.plan({job(1, 8, kT0, "A100")}, cluster, kT0 + kS, fx);
  c.plan({job(1, 8, kT0, "A100")}, cluster, kT0 + 2 * kS, fx);
  BOOST_TEST(launches(fx) == 1u);
  // Job 1 started elsewhere; job 2 of the same shape takes the booting node.
  c.plan({job(2, 8, kT0, "A100")}, cluster, kT0 + 3 * kS, fx);
  BOOST_TEST(launches(fx) == 1u);
  BOOST_TEST(c.lease(1)->for_job == 2u);
}

BOOST_FIXTURE_TEST_CASE(a_gang_gets_all_its_nodes_or_none, Fixture) {
  auto small = pool("small", 30);
  small.max_nodes = 2;
  CloudPools c({}, {small});
  CloudEffects fx;
  c.plan({job(1, 8, kT0, "A100", 3)}, cluster, kT0 + kS, fx);
  BOOST_TEST(launches(fx) == 0u);
  CloudPools big({}, {pool("big", 30)});
  big.plan({job(1, 8, kT0, "A100", 3)}, cluster, kT0 + kS, fx);
  BOOST_TEST(launches(fx) == 3u);
}

BOOST_FIXTURE_TEST_CASE(dated_prices_price_each_launch_at_its_date_and_the_lease_keeps_it, Fixture) {
  // Prices change on 2027-02-01 and 2027-03-01.
  auto c = Config::parse(
      "[pools.burst]\ndriver = \"/bin/true\"\ngpu_type = \"H100\"\nprice_per_node_hour = \"40.00\"\n"
      "prices = [{from = 2027-02-01, price_per_node_hour = \"30.00\"},\n"
      "          {from = \"2027-03-01\", price_per_node_hour = 25, spot_price_per_node_hour = \"9.50\"}]\n");
  BOOST_REQUIRE(c);
  auto s = CloudSettings::from_config(*c);
  BOOST_REQUIRE_MESSAGE(s, s.status().to_string());
  const PoolConfig& p = s->pools.at(0);
  BOOST_REQUIRE_EQUAL(p.prices.size(), 2u);
  constexpr int64_t kDay = 86'400 * kS;
  int64_t feb1 = days_from_civil(2027, 2, 1) * kDay, mar1 = days_from_civil(2027, 3, 1) * kDay;
  BOOST_TEST(p.price(feb1 - 1) == 40'000'000);
  BOOST_TEST(p.price(feb1) == 30'000'000);
  BOOST_TEST(p.price(mar1) == 25'000'000);
  BOOST_TEST(p.spot_at(mar1) == 9'500'000);
  // A launch is priced at its date; the lease keeps it (billing charges it).
  CloudPools pools({}, {p});
  CloudEffects fx;
  pools.plan({job(1, 8, feb1 - kS, "H100")}, cluster, feb1 - kS, fx);
  pools.plan({job(1, 8, feb1 - kS, "H100"), job(2, 8, feb1 + kS, "H100")}, cluster, feb1 + kS, fx);
  BOOST_REQUIRE(pools.lease(2));
  BOOST_TEST(pools.lease(1)->price_micros_per_hour == 40'000'000);
  BOOST_TEST(pools.lease(2)->price_micros_per_hour == 30'000'000);
  // Dates must rise; unknown keys and bad dates are refused, naming them.
  auto bad = [](const std::string& prices, const std::string& says) {
    auto cfg = Config::parse("[pools.b]\ndriver = \"/bin/true\"\ngpu_type = \"H100\"\nprices = " + prices + "\n");
    BOOST_REQUIRE(cfg);
    auto r = CloudSettings::from_config(*cfg);
    BOOST_REQUIRE(!r);
    BOOST_TEST(r.status().message().find(says) != std::string::npos, r.status().message());
  };
  bad("[{from = 2027-03-01, price_per_node_hour = 1}, {from = 2027-02-01, price_per_node_hour = 2}]", "dates must rise");
  bad("[{from = \"March\", price_per_node_hour = 1}]", "pools.b.prices[0].from");
  bad("[{from = 2027-03-01, price_per_node_hour = 1, colour = 2}]", "pools.b.prices[0].colour: unknown");
  bad("[{from = 2027-03-01}]", "needs from and price_per_node_hour");
}

BOOST_AUTO_TEST_CASE(prices_are_read_exactly) {
  BOOST_TEST(*parse_price_micros("k", "29.39") == 29'390'000);
  BOOST_TEST(*parse_price_micros("k", "0.000001") == 1);
  BOOST_TEST(!parse_price_micros("k", "1.2.3"));
  BOOST_TEST(!parse_price_micros("k", "-1"));
  BOOST_TEST(parse_price_micros("pools.x.price_per_node_hour", "abc").status().message().find("pools.x") == 0u);
}

BOOST_FIXTURE_TEST_CASE(a_budget_too_small_for_the_launchs_estimate_rents_nothing, Fixture) {
  auto p = pool("burst", 36, "H100", 4);  // 36.00 per node-hour
  p.idle_release_s = 60;
  p.boot_timeout_s = 240;                // no boot seen yet: the estimate is half of it
  CloudPools c({}, {p});
  auto j = job(5, 4, kT0, "H100", 2);
  j.time_limit_s = 3600;
  // Two nodes for 120 s of boot + 3600 s + 60 s idle at 36.00 an hour.
  BOOST_TEST(c.estimated_cost_micros(p, j, kT0) == 2 * 36'000'000LL * 3780 / 3600);
  BOOST_REQUIRE(c.cheapest_fit(j, kT0));
  BOOST_TEST(c.cheapest_fit(j, kT0)->name == "burst");
  c.set_budget_left("vision", 50'000'000);  // 50.00 left < 75.60
  CloudEffects fx;
  c.plan({j}, cluster, kT0 + kS, fx);
  BOOST_TEST(launches(fx) == 0u);
  BOOST_REQUIRE(c.refused().count(5));
  BOOST_TEST(c.refused().at(5).find("would cost about 75.60") != std::string::npos, c.refused().at(5));
  BOOST_TEST(c.refused().at(5).find("account vision has 50.00 of its budget left") != std::string::npos);
  // Another account's budget, or enough of this one's: it rents.
  auto other = j;
  other.id = 6;
  other.account = "physics";
  CloudEffects fx2;
  c.plan({other}, cluster, kT0 + 2 * kS, fx2);
  BOOST_TEST(launches(fx2) == 2u);
  c.set_budget_left("vision", 80'000'000);
  auto p2 = pool("burst", 36, "H100", 4);
  CloudPools fresh({}, {p2});
  fresh.set_budget_left("vision", 80'000'000);
  CloudEffects fx3;
  fresh.plan({j}, cluster, kT0 + kS, fx3);
  BOOST_TEST(launches(fx3) == 2u);
  BOOST_TEST(fresh.refused().empty());
  fresh.set_budget_left("vision", std::nullopt);  // the budget removed
  BOOST_TEST(fresh.budgets_left().empty());
}

BOOST_AUTO_TEST_CASE(pool_config_is_checked_key_by_key) {
  auto c = Config::parse("[pools.aws-a100]\ndriver = \"/bin/true\"\ngpu_type = \"A100\"\nmin_nodes = 3\nmax_nodes = 2\n");
  BOOST_REQUIRE(c);
  auto s = CloudSettings::from_config(*c);
  BOOST_REQUIRE(!s);
  BOOST_TEST(s.status().message().find("pools.aws-a100.min_nodes") != std::string::npos);
  auto bad = Config::parse("[pools.\"a.b\"]\ndriver = \"/bin/true\"\ngpu_type = \"A100\"\n");
  BOOST_REQUIRE(bad);
  BOOST_TEST(!CloudSettings::from_config(*bad));
  auto ok = Config::parse(
      "[pools.aws]\ndriver = [\"/bin/true\", \"--x\"]\ngpu_type = \"A100\"\nprice_per_node_hour = \"32.77\"\n"
      "spot_price_per_node_hour = 12.5\nspot = true\nlabels = [\"cloud=aws\"]\n");
  BOOST_REQUIRE(ok);
  auto good = CloudSettings::from_config(*ok);
  BOOST_REQUIRE(good);
  BOOST_REQUIRE_EQUAL(good->pools.size(), 1u);
  BOOST_TEST(good->pools[0].price(kT0) == 12'500'000);
  BOOST_TEST(good->pools[0].driver.size() == 2u);
  BOOST_TEST(good->pools[0].labels[0].second == "aws");
}

BOOST_AUTO_TEST_CASE(every_pool_key_is_known_to_the_config_schema_and_a_typo_is_refused) {
  auto c = Config::parse(
      "[cloud]\nmax_wait_before_burst_s = 60\npoll_ms = 500\nreconcile_s = 30\norphan_grace_s = 60\n"
      "backoff_s = 30\nbackoff_max_s = 900\ndriver_timeout_s = 120\nestimate_owned_start = true\n"
      "[pools.aws-a100]\ndriver = [\"x\"]\ngpu_type = \"A100\"\ngpus_per_node = 8\ncpus = 1\nmemory_mb = 1\n"
      "partition = \"gpu\"\nlabels = [\"a=b\"]\nmin_nodes = 0\nmax_nodes = 2\nprice_per_node_hour = \"1\"\n"
      "spot_price_per_node_hour = \"1\"\nspot = false\nboot_timeout_s = 1\nidle_release_s = 0\n"
      "max_concurrent_launches = 1\nmax_wait_before_burst_s = 5\n",
      "t.toml");
  BOOST_REQUIRE(c);
  auto s = ConfigSchema::trainyard().check(*c);
  BOOST_TEST(s.ok(), s.message());
  auto read = CloudSettings::from_config(*c);
  BOOST_REQUIRE(read.ok());
  BOOST_TEST(read->core.estimate_owned_start);
  auto typo = Config::parse("[pools.x]\nidle_release = 5\n", "t.toml");
  BOOST_REQUIRE(typo);
  auto t = ConfigSchema::trainyard().check(*typo);
  BOOST_TEST(t.message().find("pools.*.idle_release_s") != std::string::npos, t.message());
}

// Unit tests of the broker's cloud core (CloudPools): when it rents, which
// pool, when it gives back, the lease lifecycle, boot timeouts, launch
// errors, orphans and the kill switch. No processes: time is a number.
#define BOOST_TEST_MODULE cloud_core
#include <boost/test/unit_test.hpp>

#include "cloud_options.h"
#include "core/cloud_pools.h"
#include "calendar/calendar.h"
#include "util/config_schema.h"

using namespace trainyard;
using namespace trainyard::broker;

namespace {

constexpr int64_t kS = 1'000'000'000;
constexpr int64_t kT0 = 1'000'000 * kS;

std::shared_ptr<const fb::NodeInfoT> node_info(const std::string& name, int gpus, const std::string& type = "A100") {
  auto n = std::make_shared<fb::NodeInfoT>();
  n->name = name;
  for (int i = 0; i < gpus; ++i) {
    auto g = std::make_unique<fb::GpuInfoT>();
    g->index = static_cast<uint32_t>(i);
    g->type = type;
    n->gpus.push_back(std::move(g));
  }
  n->cpus = 64;
  n->memory_mb = 1 << 20;
  return n;
}

PoolConfig pool(const std::string& name, int64_t price_units, const std::string& type = "A100", uint32_t gpus = 8) {
  PoolConfig p;
  p.name = name;
  p.driver = {"/bin/true"};
  p.gpu_type = type;
  p.gpus_per_node = gpus;
  p.max_nodes = 4;
  p.price_micros_per_hour = price_units * 1'000'000;
  p.boot_timeout_s = 300;
  p.idle_release_s = 60;
  p.max_wait_before_burst_s = 120;
  return p;
}

WaitingJob job(uint64_t id, uint32_t gpus, int64_t submit_ns, const std::string& type = "", uint32_t nodes = 1) {
  WaitingJob j;
  j.id = id;
  j.account = "vision";
  j.gpu_type = type;
  j.gpus_per_node = gpus;
  j.nodes = nodes;
  j.submit_ns = submit_ns;
  j.waits_for_resources = true;
  return j;
}

struct Fixture {
  Cluster cluster;
  Fixture() {
    Effects fx;
    BOOST_REQUIRE(cluster.register_node(node_info("owned-1", 2), {}, {kT0, kT0}, fx));
  }
  static size_t launches(const CloudEffects& fx) {
    return static_cast<size_t>(std::count_if(fx.calls.begin(), fx.calls.end(),
                                             [](const DriverCall& c) { return c.kind == DriverCall::kLaunch; }));
  }
  // Launch answered, listed running, its agent registered: ready.
  void make_ready(CloudPools& c, uint64_t id, int64_t now) {
    CloudEffects fx;
    c.launched(id, LaunchOutcome{true, "i-" + std::to_string(id), "", ""}, now, fx);
    c.listed(c.lease(id)->pool, {{"i-" + std::to_string(id), c.lease(id)->pool, id, "running"}}, now + 1, now + 1, fx);
    BOOST_REQUIRE_EQUAL(to_string(c.lease(id)->state), "registering");
    Effects e;
    BOOST_REQUIRE(cluster.register_node(node_info(c.lease(id)->node, 8), {}, {now + 2, now + 2}, e));
    c.node_registered(c.lease(id)->node, cluster, now + 2, fx);
    BOOST_REQUIRE_EQUAL(to_string(c.lease(id)->state), "ready");
  }
};

}  // namespace

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

BOOST_FIXTURE_TEST_CASE(a_ready_node_is_released_after_idle_release_s_and_metered_to_the_confirmed_release, Fixture) {
  CloudPools c({}, {pool("burst", 30)});
  CloudEffects fx;
  c.plan({job(1, 8, kT0, "H100")}, cluster, kT0, fx);  // H100: no owned node fits... but the pool is A100
  BOOST_TEST(launches(fx) == 0u);
  c.plan({job(1, 8, kT0, "A100")}, cluster, kT0 + 200 * kS, fx);
  BOOST_REQUIRE_EQUAL(launches(fx), 1u);
  int64_t t = kT0 + 200 * kS;
  make_ready(c, 1, t + 10 * kS);
  t += 20 * kS;
  // The job is gone (it ran and ended); a job that fits keeps the node.
  c.plan({job(9, 1, t)}, cluster, t, fx);
  c.plan({job(9, 1, t)}, cluster, t + 100 * kS, fx);
  BOOST_TEST(to_string(c.lease(1)->state) == "ready");
  fx = {};
  c.plan({}, cluster, t + 120 * kS, fx);
  BOOST_TEST(to_string(c.lease(1)->state) == "ready");  // idle since t + 100 s
  c.plan({}, cluster, t + 160 * kS, fx);
  BOOST_TEST(to_string(c.lease(1)->state) == "releasing");
  BOOST_TEST(cluster.node("burst-0")->drained);
  BOOST_REQUIRE(!fx.calls.empty());
  BOOST_TEST(fx.calls.back().kind == DriverCall::kTerminate);
  BOOST_TEST(fx.calls.back().instance_id == "i-1");
  fx = {};
  c.terminated(1, true, "", t + 161 * kS, fx);
  BOOST_TEST(to_string(c.lease(1)->state) == "releasing");  // not verified yet
  c.listed("burst", {}, t + 162 * kS, t + 163 * kS, fx);
  BOOST_TEST(to_string(c.lease(1)->state) == "released");
  BOOST_TEST(c.lease(1)->metered_ns(0) == t + 163 * kS - (kT0 + 200 * kS));
}

BOOST_FIXTURE_TEST_CASE(idle_release_zero_releases_at_once, Fixture) {
  auto p = pool("burst", 30);
  p.idle_release_s = 0;
  CloudPools c({}, {p});
  CloudEffects fx;
  c.plan({job(1, 8, kT0, "A100")}, cluster, kT0 + 200 * kS, fx);
  make_ready(c, 1, kT0 + 201 * kS);
  c.plan({}, cluster, kT0 + 210 * kS, fx);
  BOOST_TEST(to_string(c.lease(1)->state) == "releasing");
}

BOOST_FIXTURE_TEST_CASE(a_busy_node_is_kept_and_min_nodes_are_never_released, Fixture) {
  auto p = pool("burst", 30);
  p.idle_release_s = 0;
  p.min_nodes = 1;
  CloudPools c({}, {p});
  CloudEffects fx;
  c.plan({}, cluster, kT0, fx);  // min_nodes: one is rented with no job waiting
  BOOST_REQUIRE_EQUAL(launches(fx), 1u);
  make_ready(c, 1, kT0 + kS);
  c.plan({}, cluster, kT0 + 100 * kS, fx);
  BOOST_TEST(to_string(c.lease(1)->state) == "ready");
}

BOOST_FIXTURE_TEST_CASE(a_boot_timeout_terminates_verifies_and_backs_off, Fixture) {
  CloudPools c({}, {pool("burst", 30)});
  CloudEffects fx;
  c.plan({job(1, 8, kT0, "A100")}, cluster, kT0 + 200 * kS, fx);
  int64_t t = kT0 + 200 * kS;
  c.launched(1, LaunchOutcome{true, "i-1", "", ""}, t + kS, fx);
  fx = {};
  c.plan({job(1, 8, kT0, "A100")}, cluster, t + 301 * kS, fx);
  BOOST_TEST(to_string(c.lease(1)->state) == "releasing");
  BOOST_TEST(c.lease(1)->failure == "boot_timeout");
  BOOST_TEST(launches(fx) == 0u);  // backing off: job 1 gets no new node yet
  c.terminated(1, true, "", t + 302 * kS, fx);
  c.listed("burst", {{"i-1", "burst", 1, "terminating"}}, t + 303 * kS, t + 303 * kS, fx);
  BOOST_TEST(to_string(c.lease(1)->state) == "releasing");  // still listed: not gone yet
  c.listed("burst", {}, t + 304 * kS, t + 304 * kS, fx);
  BOOST_TEST(to_string(c.lease(1)->state) == "failed");
  BOOST_TEST(c.pool_state("burst").backoff_until_ns == t + 331 * kS);
  fx = {};
  c.plan({job(1, 8, kT0, "A100")}, cluster, t + 332 * kS, fx);
  BOOST_TEST(launches(fx) == 1u);
}

BOOST_FIXTURE_TEST_CASE(capacity_quota_and_config_errors_are_told_apart, Fixture) {
  CloudPools c({}, {pool("a", 10), pool("b", 20)});
  CloudEffects fx;
  c.plan({job(1, 8, kT0, "A100")}, cluster, kT0 + 200 * kS, fx);
  BOOST_REQUIRE_EQUAL(c.lease(1)->pool, "a");
  c.launched(1, LaunchOutcome{false, "", "capacity", "no A100 in eu-west-1a"}, kT0 + 201 * kS, fx);
  BOOST_TEST(to_string(c.lease(1)->state) == "failed");
  BOOST_TEST(c.lease(1)->reason == "capacity: no A100 in eu-west-1a");
  fx = {};
  c.plan({job(1, 8, kT0, "A100")}, cluster, kT0 + 202 * kS, fx);  // retried elsewhere: the next cheapest
  BOOST_REQUIRE_EQUAL(launches(fx), 1u);
  BOOST_TEST(c.lease(2)->pool == "b");
  c.launched(2, LaunchOutcome{false, "", "config", "no such image"}, kT0 + 203 * kS, fx);
  BOOST_TEST(c.pool_state("b").paused);  // stop and alert until an operator resumes it
  BOOST_TEST(c.pool_state("b").pause_reason.find("no such image") != std::string::npos);
  BOOST_TEST(!c.pool_state("a").paused);
}

BOOST_FIXTURE_TEST_CASE(an_orphan_is_terminated_after_its_grace_and_a_vanished_instance_ends_its_lease, Fixture) {
  CloudOptions o;
  o.orphan_grace_s = 30;
  CloudPools c(o, {pool("burst", 30)});
  CloudEffects fx;
  c.listed("burst", {{"i-x", "burst", 99, "running"}}, kT0, kT0, fx);
  BOOST_TEST(fx.calls.empty());
  c.listed("burst", {{"i-x", "burst", 99, "running"}}, kT0 + 31 * kS, kT0 + 31 * kS, fx);
  BOOST_REQUIRE_EQUAL(fx.calls.size(), 1u);
  BOOST_TEST(fx.calls[0].kind == DriverCall::kTerminate);
  BOOST_TEST(fx.calls[0].instance_id == "i-x");
  BOOST_TEST(fx.calls[0].lease == 0u);
  fx = {};
  c.plan({job(1, 8, kT0, "A100")}, cluster, kT0 + 200 * kS, fx);
  make_ready(c, 1, kT0 + 201 * kS);
  c.listed("burst", {}, kT0 + 300 * kS, kT0 + 300 * kS, fx);
  BOOST_TEST(to_string(c.lease(1)->state) == "failed");
  BOOST_TEST(c.lease(1)->failure == "lost");
}

BOOST_FIXTURE_TEST_CASE(pause_stops_launches_globally_or_per_pool, Fixture) {
  CloudPools c({}, {pool("a", 10), pool("b", 20)});
  CloudEffects fx;
  BOOST_REQUIRE(c.pause("", true, "month end", fx));
  c.plan({job(1, 8, kT0, "A100")}, cluster, kT0 + 200 * kS, fx);
  BOOST_TEST(launches(fx) == 0u);
  BOOST_REQUIRE(c.pause("", false, "", fx));
  BOOST_REQUIRE(c.pause("a", true, "", fx));
  c.plan({job(1, 8, kT0, "A100")}, cluster, kT0 + 200 * kS, fx);
  BOOST_REQUIRE_EQUAL(launches(fx), 1u);
  BOOST_TEST(c.lease(1)->pool == "b");
  BOOST_TEST((c.pause("nope", true, "", fx).code() == ErrorCode::NotFound));
}

BOOST_FIXTURE_TEST_CASE(after_a_restart_a_requested_lease_is_launched_again_with_its_token, Fixture) {
  CloudPools c({}, {pool("burst", 30)});
  CloudEffects fx;
  c.plan({job(1, 8, kT0, "A100")}, cluster, kT0 + 200 * kS, fx);
  CloudPools again({}, {pool("burst", 30)});
  again.restore(*c.lease(1));
  CloudEffects after;
  again.resume(kT0 + 300 * kS, after);
  BOOST_REQUIRE_EQUAL(after.calls.size(), 1u);
  BOOST_TEST(after.calls[0].kind == DriverCall::kLaunch);
  BOOST_TEST(after.calls[0].lease == 1u);
  BOOST_TEST(again.next_id() == 2u);
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
      "backoff_s = 30\nbackoff_max_s = 900\ndriver_timeout_s = 120\n"
      "[pools.aws-a100]\ndriver = [\"x\"]\ngpu_type = \"A100\"\ngpus_per_node = 8\ncpus = 1\nmemory_mb = 1\n"
      "partition = \"gpu\"\nlabels = [\"a=b\"]\nmin_nodes = 0\nmax_nodes = 2\nprice_per_node_hour = \"1\"\n"
      "spot_price_per_node_hour = \"1\"\nspot = false\nboot_timeout_s = 1\nidle_release_s = 0\n"
      "max_concurrent_launches = 1\nmax_wait_before_burst_s = 5\n",
      "t.toml");
  BOOST_REQUIRE(c);
  auto s = ConfigSchema::trainyard().check(*c);
  BOOST_TEST(s.ok(), s.message());
  BOOST_TEST(CloudSettings::from_config(*c).ok());
  auto typo = Config::parse("[pools.x]\nidle_release = 5\n", "t.toml");
  BOOST_REQUIRE(typo);
  auto t = ConfigSchema::trainyard().check(*typo);
  BOOST_TEST(t.message().find("pools.*.idle_release_s") != std::string::npos, t.message());
}

BOOST_FIXTURE_TEST_CASE(a_node_the_waiting_jobs_fit_but_never_get_is_released_after_five_minutes, Fixture) {
  // ty-sim found rented nodes kept idle for days: a waiting job fit them,
  // but the scheduler never placed it there (a gang wider than the idle
  // nodes, one behind a reservation, strict FIFO).
  CloudPools c({}, {pool("burst", 30)});  // idle_release_s = 60
  CloudEffects fx;
  c.plan({job(1, 8, kT0, "A100")}, cluster, kT0 + 200 * kS, fx);
  BOOST_REQUIRE_EQUAL(launches(fx), 1u);
  int64_t t = kT0 + 300 * kS;
  make_ready(c, 1, t);
  // Its job ran elsewhere; another one that fits it keeps waiting, always
  // "about to start" on the owned node, so it rents nothing either.
  auto stuck = job(7, 2, t);
  stuck.expected_start_ns = t + 100 * kS;  // within max_wait_before_burst: not eligible to rent
  fx = {};
  c.plan({stuck}, cluster, t + 10 * kS, fx);
  BOOST_TEST(launches(fx) == 0u);
  c.plan({stuck}, cluster, t + 200 * kS, fx);
  BOOST_TEST(to_string(c.lease(1)->state) == "ready");  // idle_release_s passed, but a job fits
  c.plan({stuck}, cluster, t + 299 * kS, fx);
  BOOST_TEST(to_string(c.lease(1)->state) == "ready");
  c.plan({stuck}, cluster, t + 320 * kS, fx);
  BOOST_TEST(to_string(c.lease(1)->state) == "releasing");
  BOOST_TEST(c.lease(1)->reason.find("not placed on it") != std::string::npos, c.lease(1)->reason);
}

BOOST_FIXTURE_TEST_CASE(nodes_are_the_pools_slots_reused_only_once_their_instance_is_gone, Fixture) {
  auto p = pool("burst", 30, "H100");
  p.max_nodes = 2;
  p.idle_release_s = 0;
  CloudPools c({}, {p});
  CloudEffects fx;
  c.plan({job(1, 8, kT0, "H100"), job(2, 8, kT0, "H100")}, cluster, kT0 + kS, fx);
  BOOST_REQUIRE_EQUAL(launches(fx), 2u);
  BOOST_TEST(c.lease(1)->node == "burst-0");
  BOOST_TEST(c.lease(2)->node == "burst-1");
  BOOST_TEST(c.free_slots(p).empty());
  // Lease 1's launch failed without an answer (the driver timed out): an
  // instance may exist, and the inventory shows one tagged for it.
  c.launched(1, LaunchOutcome{false, {}, "driver", "timed out"}, kT0 + 2 * kS, fx);
  BOOST_TEST(c.lease(1)->ended());
  c.listed("burst", {{"i-stray", "burst", 1, "running"}}, kT0 + 3 * kS, kT0 + 3 * kS, fx);
  BOOST_TEST(c.free_slots(p).empty(), "burst-0 stays taken while its orphan lives");
  // Terminated as an orphan and gone from the next list: free again.
  c.listed("burst", {}, kT0 + 200 * kS, kT0 + 200 * kS, fx);
  BOOST_TEST(c.free_slots(p) == std::vector<std::string>{"burst-0"});
  c.launched(2, LaunchOutcome{false, {}, "capacity", "no H100 left"}, kT0 + 201 * kS, fx);
  BOOST_TEST(c.free_slots(p) == (std::vector<std::string>{"burst-0", "burst-1"}));
  CloudEffects again;
  c.plan({job(3, 8, kT0 + 200 * kS, "H100")}, cluster, kT0 + 1000 * kS, again);
  BOOST_REQUIRE_EQUAL(launches(again), 1u);
  BOOST_TEST(c.lease(3)->node == "burst-0");
  BOOST_TEST(c.lease_of_node("burst-0")->id == 3u);
  // A restart restores ended and live leases in any order: a name is its newest lease's.
  CloudPools r({}, {p});
  r.restore(*c.lease(3));
  r.restore(*c.lease(1));
  BOOST_TEST(r.lease_of_node("burst-0")->id == 3u);
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

BOOST_FIXTURE_TEST_CASE(a_spot_notice_drains_the_node_tells_its_runs_and_the_job_falls_back_to_on_demand, Fixture) {
  auto p = pool("burst", 30, "H100");
  p.spot = true;
  p.spot_price_micros_per_hour = 9'000'000;
  CloudOptions o;
  o.spot_fallback_after = 2;
  CloudPools c(o, {p});
  CloudEffects fx;
  c.plan({job(1, 8, kT0, "H100")}, cluster, kT0 + kS, fx);
  BOOST_REQUIRE_EQUAL(launches(fx), 1u);
  BOOST_TEST(c.lease(1)->spot);
  BOOST_TEST(c.lease(1)->price_micros_per_hour == 9'000'000);
  make_ready(c, 1, kT0 + 2 * kS);
  // The inventory carries a notice: reclaimed two minutes from now.
  CloudEffects notice;
  ListedInstance li{"i-1", "burst", 1, "running"};
  li.interrupt_at_ns = kT0 + 130 * kS;
  c.listed("burst", {li}, kT0 + 10 * kS, kT0 + 10 * kS, notice);
  BOOST_TEST(to_string(c.lease(1)->state) == "draining");
  BOOST_TEST(c.lease(1)->interrupt_at_ns == kT0 + 130 * kS);
  BOOST_REQUIRE_EQUAL(notice.interruptions.size(), 1u);
  BOOST_TEST(notice.interruptions[0].node == "burst-0");
  BOOST_TEST(notice.interruptions[0].deadline_ns == kT0 + 130 * kS);
  BOOST_TEST(notice.interruptions[0].reason.find("spot interruption notice") == 0u);
  // Told once: the next list with the same notice changes nothing.
  CloudEffects again;
  c.listed("burst", {li}, kT0 + 20 * kS, kT0 + 20 * kS, again);
  BOOST_TEST(again.interruptions.empty());
  // Two interruptions of job 1: its next rent is on-demand.
  BOOST_TEST(!c.falls_back(1));
  c.spot_interrupted(1);
  c.spot_interrupted(1);
  BOOST_TEST(c.falls_back(1));
  auto j = job(1, 8, kT0, "H100");
  j.time_limit_s = 3600;
  // The on-demand price, for the boot seen (1 s), the time limit and the idle release.
  BOOST_TEST(c.estimated_cost_micros(p, j, kT0) == 30'000'000LL * (1 + 3600 + 60) / 3600);
  CloudEffects rent;
  c.plan({j}, cluster, kT0 + 30 * kS, rent);
  BOOST_REQUIRE_EQUAL(launches(rent), 1u);
  BOOST_TEST(!c.lease(2)->spot);
  BOOST_TEST(c.lease(2)->price_micros_per_hour == 30'000'000);
  BOOST_TEST(c.lease(2)->reason.find("on-demand after 2 spot interruptions") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_spot_notice_revokes_every_lease_of_the_node_with_the_notices_time_as_grace) {
  Cluster cluster;
  Effects fx;
  BOOST_REQUIRE(cluster.register_node(node_info("burst-0", 8, "H100"), {}, {kT0, kT0}, fx));
  AllocateRequest req;
  req.job_id = 9;
  req.attempt = 1;
  req.placements.push_back(PlacementRequest{"burst-0", {0, 1}, 1, 0});
  BOOST_REQUIRE(cluster.allocate(req, {kT0, kT0}, fx));
  Effects out;
  cluster.interrupt("burst-0", kT0 + 100 * kS, "spot interruption notice", {kT0 + 10 * kS, kT0 + 10 * kS}, out);
  BOOST_TEST(cluster.node("burst-0")->drained);
  size_t revoked = 0;
  for (auto& e : out.events) {
    if (e.kind != EventKind::kLeaseRevoked) continue;
    ++revoked;
    BOOST_TEST(e.grace_s == 90u);
    BOOST_TEST((e.cause == fb::RevokeCause::SpotInterruption));
    BOOST_TEST(e.lease.job_id == 9u);
  }
  BOOST_TEST(revoked == 1u);
}

BOOST_FIXTURE_TEST_CASE(a_slot_drained_on_its_way_out_takes_jobs_again_with_its_next_instance, Fixture) {
  auto p = pool("burst", 30, "H100");
  p.idle_release_s = 0;
  CloudPools c({}, {p});
  CloudEffects fx;
  c.plan({job(1, 8, kT0, "H100")}, cluster, kT0 + kS, fx);
  make_ready(c, 1, kT0 + 2 * kS);
  c.plan({}, cluster, kT0 + 10 * kS, fx);  // idle: drained and terminated
  BOOST_TEST(cluster.node("burst-0")->drained);
  c.terminated(1, true, "", kT0 + 11 * kS, fx);
  c.listed("burst", {}, kT0 + 12 * kS, kT0 + 12 * kS, fx);
  BOOST_TEST(to_string(c.lease(1)->state) == "released");
  CloudEffects again;
  c.plan({job(2, 8, kT0 + 20 * kS, "H100")}, cluster, kT0 + 3600 * kS, again);
  BOOST_REQUIRE(c.lease(2));
  BOOST_TEST(c.lease(2)->node == "burst-0");
  make_ready(c, 2, kT0 + 3601 * kS);
  BOOST_TEST(!cluster.node("burst-0")->drained);  // the broker's own drain of the old instance is gone
}

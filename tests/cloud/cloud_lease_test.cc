// Unit tests of the broker's cloud core (CloudPools): a rented node's life
// (its release when idle, boot timeouts, launch errors, orphans, the kill
// switch, a restart, the pools' slots and spot notices). No processes: time
// is a number.
#include <boost/test/unit_test.hpp>

#include "cloud_core_test_support.h"

using namespace trainyard;
using namespace trainyard::broker;
using namespace trainyard::broker::cloud_testing;

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

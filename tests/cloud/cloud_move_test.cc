// Unit tests of moving back (CloudOptions::move_to_owned_min_left_s): a
// rented node whose resumable jobs owned nodes can take now is emptied, its
// jobs requeued onto the owned GPUs and the node released; when it must not
// happen; and the rented nodes kept closed meanwhile.
#include <boost/test/unit_test.hpp>

#include <map>

#include "cloud_core_test_support.h"

using namespace trainyard;
using namespace trainyard::broker;
using namespace trainyard::broker::cloud_testing;

namespace {

struct MoveFixture : Fixture {
  std::map<uint64_t, uint32_t> attempts;
  CloudOptions options() {
    CloudOptions o;
    o.move_to_owned_min_left_s = 3600;
    return o;
  }
  // Runs `job` on `node` (GPUs 0..gpus-1) from `at`, as the scheduler's Allocate does.
  uint64_t run(uint64_t job, const std::string& node, uint32_t gpus, int64_t at, bool resumable = true,
               uint64_t time_limit_s = 4 * 3600) {
    AllocateRequest req;
    req.job_id = job;
    req.attempt = ++attempts[job];
    auto spec = std::make_shared<fb::JobSpecT>();
    spec->resumable = resumable;
    spec->time_limit_s = time_limit_s;
    spec->grace_s = 45;
    req.spec = spec;
    std::vector<uint32_t> g;
    for (uint32_t i = 0; i < gpus; ++i) g.push_back(i);
    req.placements.push_back(PlacementRequest{node, g, 1, 0});
    Effects e;
    auto ids = cluster.allocate(req, {at, at}, e);
    BOOST_REQUIRE_MESSAGE(ids.ok(), ids.status().to_string());
    return ids->front();
  }
  void end(uint64_t lease, int64_t at) {
    Effects e;
    BOOST_REQUIRE(cluster.release(lease, false, "run ended", 0, {at, at}, e));
  }
  // A ready node of pool "burst" (rented for job `for_job`, which then started elsewhere).
  void rent_ready(CloudPools& c, uint64_t for_job, int64_t at, uint32_t gpus = 2) {
    CloudEffects fx;
    c.plan({job(for_job, gpus, at - 200 * kS)}, cluster, at, fx);
    BOOST_REQUIRE_EQUAL(launches(fx), 1u);
    make_ready(c, c.next_id() - 1, at + kS);
  }
};

}  // namespace

BOOST_FIXTURE_TEST_CASE(a_resumable_job_on_a_rented_node_moves_to_owned_gpus_once_they_free_up, MoveFixture) {
  CloudPools c(options(), {pool("burst", 30)});
  uint64_t owned_run = run(5, "owned-1", 2, kT0);  // the owned node is busy
  rent_ready(c, 1, kT0 + 10 * kS);
  int64_t t = kT0 + 20 * kS;
  uint64_t rented_run = run(1, "burst-0", 2, t);
  // Owned GPUs busy: it stays.
  CloudEffects fx;
  c.plan({}, cluster, t + 60 * kS, fx);
  BOOST_TEST(fx.interruptions.empty());
  BOOST_TEST(to_string(c.lease(1)->state) == "ready");

  // They free up and no job waits for them: the node is emptied.
  end(owned_run, t + 100 * kS);
  fx = {};
  c.plan({}, cluster, t + 101 * kS, fx);
  BOOST_REQUIRE_EQUAL(fx.interruptions.size(), 1u);
  BOOST_TEST(fx.interruptions[0].node == "burst-0");
  BOOST_TEST(fx.interruptions[0].move_to_owned());
  BOOST_TEST(fx.interruptions[0].moved_jobs == std::vector<uint64_t>{1}, boost::test_tools::per_element());
  BOOST_TEST(fx.interruptions[0].deadline_ns == 0);  // each run's own grace
  BOOST_TEST(to_string(c.lease(1)->state) == "draining");
  BOOST_TEST(c.moved().count(1) == 1u);

  // The shell revokes the node's runs as preemptions, with the job's grace.
  Effects revoked;
  cluster.interrupt("burst-0", 0, "cloud: " + fx.interruptions[0].reason, {t + 101 * kS, t + 101 * kS}, revoked,
                    fb::RevokeCause::Preemption);
  size_t n = 0;
  for (auto& e : revoked.events) {
    if (e.kind != EventKind::kLeaseRevoked) continue;
    ++n;
    BOOST_TEST(e.lease.job_id == 1u);
    BOOST_TEST(e.grace_s == 45u);
    BOOST_TEST((e.cause == fb::RevokeCause::Preemption));
  }
  BOOST_TEST(n == 1u);
  BOOST_TEST(cluster.node("burst-0")->drained);

  // The run stops; the job waits, requeued: nothing is rented for it (it
  // waited long since its submission, but owned GPUs wait for it), and the
  // emptied node is given back.
  end(rented_run, t + 140 * kS);
  fx = {};
  c.plan({job(1, 2, kT0 - 3600 * kS)}, cluster, t + 141 * kS, fx);
  BOOST_TEST(launches(fx) == 0u);
  BOOST_TEST(to_string(c.lease(1)->state) == "releasing");
}

BOOST_FIXTURE_TEST_CASE(no_move_for_a_job_not_resumable_near_its_limit_or_whose_owned_room_a_waiting_job_wants,
                        MoveFixture) {
  // A fresh pool per case; each rents burst-0 again.
  {
    CloudPools c(options(), {pool("burst", 30)});
    rent_ready(c, 1, kT0 + 10 * kS);
    uint64_t r = run(1, "burst-0", 2, kT0 + 20 * kS, /*resumable=*/false);
    CloudEffects fx;
    c.plan({}, cluster, kT0 + 30 * kS, fx);
    BOOST_TEST(fx.interruptions.empty());  // it would start over: never moved
    end(r, kT0 + 40 * kS);
  }
  {
    CloudPools c(options(), {pool("burst", 30)});
    rent_ready(c, 1, kT0 + 50 * kS);
    // Half an hour of its limit left, under move_to_owned_min_left_s (1 h).
    uint64_t r = run(1, "burst-0", 2, kT0 + 60 * kS, true, 3600);
    CloudEffects fx;
    c.plan({}, cluster, kT0 + 60 * kS + 1800 * kS, fx);
    BOOST_TEST(fx.interruptions.empty());
    end(r, kT0 + 2000 * kS);
  }
  {
    CloudPools c(options(), {pool("burst", 30)});
    rent_ready(c, 1, kT0 + 3000 * kS);
    uint64_t r = run(1, "burst-0", 2, kT0 + 3010 * kS);
    // A job waits that the owned node could take: the free GPUs are its.
    CloudEffects fx;
    c.plan({job(9, 2, kT0 + 3015 * kS)}, cluster, kT0 + 3020 * kS, fx);
    BOOST_TEST(fx.interruptions.empty());
    // Gone: the move happens.
    c.plan({}, cluster, kT0 + 3030 * kS, fx);
    BOOST_TEST(fx.interruptions.size() == 1u);
    end(r, kT0 + 3040 * kS);
  }
  {
    // Off (0): never.
    CloudPools c({}, {pool("burst", 30)});
    rent_ready(c, 1, kT0 + 4000 * kS);
    uint64_t r = run(1, "burst-0", 2, kT0 + 4010 * kS);
    CloudEffects fx;
    c.plan({}, cluster, kT0 + 4020 * kS, fx);
    BOOST_TEST(fx.interruptions.empty());
    end(r, kT0 + 4030 * kS);
  }
}

BOOST_FIXTURE_TEST_CASE(a_job_is_moved_once_and_rented_nodes_stay_closed_until_it_starts_on_owned_gpus, MoveFixture) {
  auto p = pool("burst", 30);
  p.idle_release_s = 3600;
  CloudPools c(options(), {p});
  uint64_t busy = run(5, "owned-1", 2, kT0);
  rent_ready(c, 1, kT0);  // burst-0
  uint64_t r = run(1, "burst-0", 2, kT0 + 3 * kS);
  rent_ready(c, 2, kT0 + 5 * kS, 8);  // burst-1, for an 8-GPU job that then started elsewhere: idle, open
  BOOST_REQUIRE(c.lease(2)->node == "burst-1");
  BOOST_TEST(!cluster.node("burst-1")->drained);
  end(busy, kT0 + 15 * kS);
  CloudEffects fx;
  c.plan({}, cluster, kT0 + 20 * kS, fx);
  BOOST_REQUIRE_EQUAL(fx.interruptions.size(), 1u);
  BOOST_TEST(fx.interruptions[0].node == "burst-0");
  Effects revoked;
  cluster.interrupt("burst-0", 0, "moved", {kT0 + 20 * kS, kT0 + 20 * kS}, revoked, fb::RevokeCause::Preemption);
  // Until job 1 starts again, burst-1 takes no job: it goes to the owned GPUs.
  c.plan({}, cluster, kT0 + 21 * kS, fx);
  BOOST_TEST(cluster.node("burst-1")->drained);
  end(r, kT0 + 60 * kS);
  fx = {};
  c.plan({job(1, 2, kT0)}, cluster, kT0 + 61 * kS, fx);
  BOOST_TEST(cluster.node("burst-1")->drained);
  BOOST_TEST(launches(fx) == 0u);
  // It started on owned-1: burst-1 is open again.
  uint64_t owned = run(1, "owned-1", 2, kT0 + 62 * kS);
  c.plan({}, cluster, kT0 + 63 * kS, fx);
  BOOST_TEST(!cluster.node("burst-1")->drained);

  // Later it runs on a rented node again (the owned node went to others):
  // it is not moved a second time.
  end(owned, kT0 + 100 * kS);
  uint64_t again = run(1, "burst-1", 2, kT0 + 110 * kS);
  fx = {};
  c.plan({}, cluster, kT0 + 120 * kS, fx);
  BOOST_TEST(fx.interruptions.empty());
  BOOST_TEST(to_string(c.lease(2)->state) == "ready");
  end(again, kT0 + 130 * kS);

  // A broker restarted while a node was closed for a move opens it again
  // (the node's drain reason says why it was closed).
  Effects e;
  BOOST_REQUIRE(cluster.drain("burst-1", true, "cloud: closed while jobs moved to owned nodes start there", e));
  CloudPools restarted(options(), {p});
  for (auto& [id, l] : c.leases()) restarted.restore(l);
  fx = {};
  restarted.plan({}, cluster, kT0 + 140 * kS, fx);
  BOOST_TEST(!cluster.node("burst-1")->drained);
}

BOOST_FIXTURE_TEST_CASE(a_job_that_ended_is_forgotten_its_move_and_its_spot_count_with_it, MoveFixture) {
  auto o = options();
  o.spot_fallback_after = 2;
  CloudPools c(o, {pool("burst", 30)});
  // Job 1 was moved back; job 2's spot nodes were reclaimed twice (it now
  // rents on-demand); job 3 was both.
  c.restore_moved(1);
  c.spot_interrupted(2);
  c.spot_interrupted(2);
  c.restore_moved(3);
  c.restore_spot_interruptions(3, 1);
  BOOST_TEST(c.jobs_remembered() == 3u);
  BOOST_TEST(c.falls_back(2));

  BOOST_TEST(c.forget_job(1));
  BOOST_TEST(c.forget_job(2));
  BOOST_TEST(!c.moved().count(1));
  BOOST_TEST(c.spot_interruptions(2) == 0u);
  BOOST_TEST(!c.falls_back(2));
  BOOST_TEST(c.jobs_remembered() == 1u);
  BOOST_TEST(!c.forget_job(2));  // nothing left of it
  BOOST_TEST(!c.forget_job(4));  // never remembered
  BOOST_TEST(c.forget_job(3));
  BOOST_TEST(c.jobs_remembered() == 0u);
}

// Cloud pools end to end: the real bus, scheduler, resource broker and an
// owned agent, plus a pool whose `local` driver (deploy/drivers/local)
// starts real trainyard-agent processes after a boot delay. Jobs are real
// processes; `ty cloud status --json` is how the tests read the leases.
#define BOOST_TEST_MODULE cloud
#include <boost/test/unit_test.hpp>

#include "cloud_cluster.h"

BOOST_AUTO_TEST_CASE(owned_nodes_first_and_no_burst_while_the_reservation_is_within_max_wait) {
  PoolSettings p;
  p.max_wait_s = 20;
  CloudCluster cc(p);
  auto cl = testing::connect(*cc.c);
  auto first = submit(cl, job("sleep 3", 2, 8));  // owned-a is free: it runs there
  auto r = wait_state(cl, cc, first, fb::JobState::Running);
  BOOST_TEST(r.nodes == std::vector<std::string>{"owned-a"});
  // Waits behind `first`, whose time limit says owned-a is free within 8 s < 20 s.
  auto second = submit(cl, job("true", 2, 60));
  auto done = wait_state(cl, cc, second, fb::JobState::Succeeded);
  BOOST_TEST(done.nodes == std::vector<std::string>{"owned-a"});
  BOOST_TEST(cc.leases().size() == 0u, "no cloud node was rented: " << cc.leases().dump());
}

BOOST_AUTO_TEST_CASE(burst_when_work_would_wait_then_give_the_node_back_when_idle) {
  PoolSettings p;
  p.max_wait_s = 20;
  p.idle_release_s = 2;
  CloudCluster cc(p);
  auto cl = testing::connect(*cc.c);
  auto blocker = submit(cl, job("sleep 60", 2, 600));
  wait_state(cl, cc, blocker, fb::JobState::Running);
  // Its reservation starts when `blocker` may end (600 s > 20 s): rent now.
  auto waiting = submit(cl, job("sleep 1", 2, 60));
  nlohmann::json first;
  BOOST_REQUIRE_MESSAGE(wait_until(
                            [&] {
                              auto l = cc.leases();
                              if (l.size() == 1) first = l[0];
                              return l.size() == 1;
                            },
                            10s),
                        "no lease: " << cc.logs());
  BOOST_TEST(first["for_job"] == waiting);  // rented for it (cleared once it runs)
  // While the node boots (1 s here) the job says what it waits for.
  std::string reason;
  bool says = wait_until(
      [&] {
        auto r = cl.status(waiting);
        if (r) reason = r->reason;
        return r && r->reason.find("waiting for cloud node (pool burst, ready in ~") == 0;
      },
      5s);
  BOOST_TEST(says, "the waiting job's reason: " << reason);
  auto ran = wait_state(cl, cc, waiting, fb::JobState::Running, 25s);
  BOOST_TEST(ran.nodes == std::vector<std::string>{"burst-0"});
  auto l = cc.leases().at(0);
  int64_t submit_to_launch = l["requested_ns"].get<int64_t>() - ran.submit_time_ns;
  int64_t ready_to_start = ran.start_time_ns - l["ready_ns"].get<int64_t>();
  BOOST_TEST_MESSAGE("FIGURE submit->launch request: " << ms(submit_to_launch) << " ms (eligible at once)");
  BOOST_TEST_MESSAGE("FIGURE registration->job start: " << ms(ready_to_start) << " ms");
  BOOST_TEST(submit_to_launch < 2'000'000'000);  // one scheduler cycle + one poll, well under 1 s each
  BOOST_TEST(ready_to_start < 2'000'000'000);
  wait_state(cl, cc, waiting, fb::JobState::Succeeded);
  auto released = wait_lease(cc, 0, "Released", 15s);
  int64_t idle_from = ran.start_time_ns;
  BOOST_TEST(released["ended_ns"].get<int64_t>() - idle_from > 2'000'000'000);  // ran 1 s, then idle 2 s
  BOOST_TEST(cc.instances() == 0u);
  BOOST_TEST(cc.leases().size() == 1u);
  BOOST_REQUIRE(cl.cancel(blocker).ok());
}

BOOST_AUTO_TEST_CASE(a_node_that_never_registers_is_terminated_at_its_boot_timeout_and_the_pool_backs_off) {
  PoolSettings p;
  p.gpu_type = "H100";
  p.boot_timeout_s = 2;
  p.extra = {"cloud.backoff_s=60"};
  CloudCluster cc(p, R"({"never_register": true})");
  auto cl = testing::connect(*cc.c);
  auto id = submit(cl, job("true", 4, 60, "H100"));  // no owned H100: rents at once
  wait_lease(cc, 0, "Provisioning", 10s);
  BOOST_TEST(cc.instances() == 1u);
  auto failed = wait_lease(cc, 0, "Failed", 15s);
  BOOST_TEST(failed["failure"] == "boot_timeout");
  BOOST_TEST(cc.instances() == 0u);  // verified gone
  auto pools = cc.status()["pools"];
  BOOST_TEST(pools.at(0)["backoff_until_ns"].get<int64_t>() > failed["ended_ns"].get<int64_t>());
  std::this_thread::sleep_for(1500ms);
  BOOST_TEST(cc.leases().size() == 1u, "backing off: no second launch yet");
  auto j = cl.status(id);
  BOOST_REQUIRE(j.ok());
  BOOST_TEST(fb::EnumNameJobState(j->state) == std::string("Pending"));
}

BOOST_AUTO_TEST_CASE(a_capacity_error_fails_the_lease_with_its_reason_and_the_next_try_succeeds) {
  PoolSettings p;
  p.gpu_type = "H100";
  CloudCluster cc(p, R"({"capacity_errors": 1})");
  auto cl = testing::connect(*cc.c);
  auto id = submit(cl, job("true", 4, 60, "H100"));
  auto failed = wait_lease(cc, 0, "Failed", 10s);
  BOOST_TEST(failed["failure"] == "capacity");
  BOOST_TEST(failed["reason"].get<std::string>().find("capacity: injected capacity error") == 0u);
  auto done = wait_state(cl, cc, id, fb::JobState::Succeeded, 25s);
  // The failed launch made no instance, so the next lease takes its slot.
  BOOST_TEST(done.nodes == std::vector<std::string>{"burst-0"});
  BOOST_TEST(cc.leases().size() == 2u);
}

BOOST_AUTO_TEST_CASE(sigkill_of_the_broker_while_provisioning_leaks_no_instance) {
  PoolSettings p;
  p.gpu_type = "H100";
  p.idle_release_s = 0;
  CloudCluster cc(p, R"({"boot_delay_s": 3})");
  auto cl = testing::connect(*cc.c);
  auto id = submit(cl, job("true", 4, 60, "H100"));
  wait_lease(cc, 0, "Provisioning", 10s);
  cc.c->kill9("broker");
  BOOST_REQUIRE(cl.cancel(id).ok());  // nobody needs the node any more
  {
    // An instance tagged for a lease the broker never had: an orphan.
    std::string req = R"({"op":"launch","pool":"burst","client_token":"stray-1","tags":{"trainyard-pool":"burst","trainyard-lease":"999"},"node":{"name":"stray","gpu_type":"H100","gpus":1}})";
    std::ofstream(cc.state / "req.json") << req;
    auto [lrc, lout] = testing::run({"sh", "-c", std::string(TY_SOURCE_DIR "/deploy/drivers/local --state ") + cc.state.path() +
                                                   " --agent /bin/false < " + (cc.state / "req.json")},
                                    10s);
    BOOST_REQUIRE_MESSAGE(lrc == 0 && lout.find("\"ok\": true") != std::string::npos, lout);
  }
  BOOST_TEST(cc.instances() == 2u);
  cc.c->start("broker");
  // The restarted broker carries the lease on; the node registers, is idle
  // (idle_release_s = 0) and is released; the orphan goes after its grace.
  wait_lease(cc, 0, "Released", 20s);
  BOOST_TEST(wait_until([&] { return cc.instances() == 0; }, 10s), "instances left: " << cc.instances() << "\n" << cc.logs());
}

BOOST_AUTO_TEST_CASE(a_gang_rents_all_its_nodes_at_once_and_runs_across_them) {
  PoolSettings p;
  p.gpu_type = "H100";
  p.idle_release_s = 0;
  CloudCluster cc(p);
  auto cl = testing::connect(*cc.c);
  auto spec = job("true", 4, 60, "H100");
  spec.nodes = 2;
  auto id = submit(cl, spec);
  auto done = wait_state(cl, cc, id, fb::JobState::Succeeded, 25s);
  BOOST_TEST(done.nodes.size() == 2u);
  auto leases = cc.leases();
  BOOST_REQUIRE_EQUAL(leases.size(), 2u);
  // Both asked in the same decision: all or none.
  BOOST_TEST(std::llabs(leases[0]["requested_ns"].get<int64_t>() - leases[1]["requested_ns"].get<int64_t>()) < 1000000);
  auto big = job("true", 4, 60, "H100");
  big.nodes = 3;  // more than max_nodes = 2: never rented (not two of three)
  auto never = submit(cl, big);
  std::this_thread::sleep_for(1500ms);
  BOOST_TEST(cc.leases().size() == 2u);
  BOOST_REQUIRE(cl.cancel(never).ok());
}

BOOST_AUTO_TEST_CASE(a_config_error_pauses_the_pool_until_ty_cloud_resume) {
  PoolSettings p;
  p.gpu_type = "H100";
  p.idle_release_s = 0;
  CloudCluster cc(p, R"({"config_errors": 1})");
  auto cl = testing::connect(*cc.c);
  auto id = submit(cl, job("true", 4, 60, "H100"));
  auto failed = wait_lease(cc, 0, "Failed", 10s);
  BOOST_TEST(failed["failure"] == "config");
  auto pool = cc.status()["pools"].at(0);
  BOOST_TEST(pool["paused"] == true);
  BOOST_TEST(pool["pause_reason"].get<std::string>().find("injected config error") != std::string::npos);
  std::this_thread::sleep_for(1s);
  BOOST_TEST(cc.leases().size() == 1u, "paused: nothing more is launched");
  auto [rc, out] = cc.c->ty({"cloud", "resume", "burst"});
  BOOST_REQUIRE_MESSAGE(rc == 0, out);
  wait_state(cl, cc, id, fb::JobState::Succeeded, 25s);
  wait_lease(cc, 1, "Released", 10s);
  // The global switch: nothing is rented while it is off.
  auto [prc, pout] = cc.c->ty({"cloud", "pause", "--reason", "month end"});
  BOOST_REQUIRE_MESSAGE(prc == 0, pout);
  BOOST_TEST(cc.status()["pause_reason"] == "month end");
  auto held = submit(cl, job("true", 4, 60, "H100"));
  std::this_thread::sleep_for(1500ms);
  BOOST_TEST(cc.leases().size() == 2u);
  auto [src, sout] = cc.c->ty({"cloud", "status"});
  BOOST_TEST(src == 0);
  BOOST_TEST(sout.find("Every pool is PAUSED: month end") != std::string::npos, sout);
  auto cancelled = cl.cancel(held);
  BOOST_TEST(cancelled.ok(), cancelled.to_string());
}

BOOST_AUTO_TEST_CASE(a_resumable_job_moves_from_its_rented_node_to_the_owned_one_once_that_frees_up) {
  PoolSettings p;
  p.idle_release_s = 600;  // the node goes because it was emptied, not for idleness
  p.extra = {"cloud.move_to_owned_min_left_s=60"};
  CloudCluster cc(p);
  auto cl = testing::connect(*cc.c);
  auto blocker = submit(cl, job("sleep 300", 2, 600));
  wait_state(cl, cc, blocker, fb::JobState::Running);
  auto spec = job("sleep 300", 2, 600);
  spec.resumable = true;
  auto mover = submit(cl, spec);
  auto rented = wait_state(cl, cc, mover, fb::JobState::Running, 25s);
  BOOST_REQUIRE(rented.nodes == std::vector<std::string>{"burst-0"});
  // The owned node frees up and nobody waits for it: the job is stopped
  // (SIGTERM, its grace), requeued and starts again there.
  BOOST_REQUIRE(cl.cancel(blocker).ok());
  fb::JobRecordT moved;
  BOOST_REQUIRE_MESSAGE(wait_until(
                            [&] {
                              auto r = cl.status(mover);
                              if (r) moved = *r;
                              return r && r->state == fb::JobState::Running && r->attempt >= 2;
                            },
                            30s),
                        "job " << mover << " is " << fb::EnumNameJobState(moved.state) << " attempt " << moved.attempt
                               << ": " << moved.reason << "\n"
                               << cc.logs());
  BOOST_TEST(moved.nodes == std::vector<std::string>{"owned-a"});
  BOOST_TEST(moved.preemptions == 1u);  // a preemption: no retry spent
  bool said = false;
  std::string history;
  for (auto& t : moved.history) {
    if (!t) continue;
    said = said || t->reason.find("move there") != std::string::npos;
    history += fb::EnumNameJobState(t->to) + std::string(": ") + t->reason + "\n";
  }
  BOOST_TEST(said, "the job's history says why it was requeued:\n" << history);
  // The emptied node is given back at once, long before its idle time.
  wait_lease(cc, 0, "Released", 20s);
  BOOST_TEST(cc.leases().size() == 1u, "nothing else was rented: " << cc.leases().dump());
  // The broker remembers the move (a job is moved once) until the job ends,
  // then forgets it: what it keeps does not grow with every job ever run.
  BOOST_TEST(cc.status()["jobs_remembered"] == 1);
  BOOST_REQUIRE(cl.cancel(mover).ok());
  wait_state(cl, cc, mover, fb::JobState::Cancelled);
  BOOST_TEST(wait_until([&] { return cc.status()["jobs_remembered"] == 0; }, 10s), cc.status().dump());
}

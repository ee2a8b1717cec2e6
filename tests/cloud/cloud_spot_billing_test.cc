// Cloud pools end to end, what they cost and whom they trust: spot
// interruptions and notices, billing of node time, budgets before a launch,
// and rented nodes joining under CURVE. The same real processes as
// cloud_test.cc (cloud_cluster.h), in the same test program.
#include <boost/test/unit_test.hpp>

#include "cloud_cluster.h"

BOOST_AUTO_TEST_CASE(a_spot_interruption_requeues_the_job_keeping_its_id_on_a_new_node) {
  PoolSettings p;
  p.gpu_type = "H100";
  p.idle_release_s = 0;
  CloudCluster cc(p);
  auto cl = testing::connect(*cc.c);
  auto spec = job("sleep 60", 4, 600, "H100");
  spec.max_retries = 1;
  auto id = submit(cl, spec);
  auto ran = wait_state(cl, cc, id, fb::JobState::Running, 20s);
  BOOST_REQUIRE(ran.nodes == std::vector<std::string>{"burst-0"});
  std::string instance = cc.leases().at(0)["instance_id"];
  auto [rc, out] = testing::run({TY_SOURCE_DIR "/deploy/drivers/local", "--state", cc.state.path(), "interrupt", instance});
  BOOST_REQUIRE_MESSAGE(rc == 0, out);
  // Gone from the driver's list: the lease fails (lost), the node is down at
  // once, the job is requeued and a new node is rented for it.
  auto lost = wait_lease(cc, 0, "Failed", 10s);
  BOOST_TEST(lost["failure"] == "lost");
  bool moved = wait_until(
      [&] {
        auto r = cl.status(id);
        return r && r->state == fb::JobState::Running && r->attempt == ran.attempt + 1;
      },
      25s);
  auto now_is = cl.status(id);
  BOOST_TEST_REQUIRE(moved, "job " << id << " did not run again on a new node: "
                                   << (now_is ? std::string(fb::EnumNameJobState(now_is->state)) + " attempt " +
                                                    std::to_string(now_is->attempt) + ": " + now_is->reason
                                              : now_is.status().to_string())
                                   << "\n" << cc.logs());
  // The reclaimed instance is gone, so its slot (and key) serve the new
  // instance: the same node name, a second lease, a new machine.
  auto leases = cc.leases();
  BOOST_TEST_REQUIRE(leases.size() == 2u);
  BOOST_TEST(leases[1]["node"] == "burst-0");
  BOOST_TEST(leases[1]["instance_id"] != instance);
  BOOST_TEST(cl.status(id)->nodes == std::vector<std::string>{"burst-0"});
  auto r = cl.status(id);
  BOOST_TEST(r->attempt == ran.attempt + 1);  // the same job, its next attempt
  BOOST_REQUIRE(cl.cancel(id).ok());
}

BOOST_AUTO_TEST_CASE(billing_equals_the_node_time_at_the_pool_price_split_into_job_and_overhead) {
  PoolSettings p;
  p.gpu_type = "H100";
  p.idle_release_s = 1;
  p.billing = true;
  CloudCluster cc(p);
  auto cl = testing::connect(*cc.c);
  auto id = submit(cl, job("sleep 3", 2, 600, "H100"));  // 2 of the node's 4 GPUs
  wait_state(cl, cc, id, fb::JobState::Succeeded, 25s);
  auto l = wait_lease(cc, 0, "Released", 15s);
  int64_t node_ns = l["ended_ns"].get<int64_t>() - l["requested_ns"].get<int64_t>();
  // 36.00 per node-hour, in micro-units, floored once for the whole node.
  int64_t expected = static_cast<int64_t>(static_cast<__int128>(node_ns) * 36'000'000 / (3600LL * 1'000'000'000));
  std::time_t now = std::time(nullptr);
  char month[8];
  std::strftime(month, sizeof month, "%Y-%m", std::gmtime(&now));
  int64_t job_part = 0, overhead = 0;
  // The whole invoice, overhead lines included, is the admins' to read (a
  // plain member sees their own lines): the login user runs this cluster.
  const char* login = std::getenv("USER");
  auto admin = testing::connect(*cc.c, std::string("user:") + (login && *login ? login : "root"));
  bool billed = wait_until(
      [&] {
        auto inv = admin.invoice("vision", month);
        if (!inv) return false;
        job_part = overhead = 0;
        for (auto& line : inv->lines) {
          if (line->gpu_type == "cloud:burst") job_part += line->cost_micros;
          if (line->gpu_type == "cloud:burst:overhead") overhead += line->cost_micros;
        }
        return overhead > 0;
      },
      10s);
  BOOST_TEST_REQUIRE(billed, "no cloud overhead billed\n" << cc.logs());
  BOOST_TEST_MESSAGE("FIGURE node time " << ms(node_ns) << " ms: job " << job_part << " + overhead " << overhead
                                         << " = " << job_part + overhead << " micro-units (expected " << expected << ")");
  BOOST_TEST(job_part > 0);
  BOOST_TEST(job_part + overhead == expected);
}

BOOST_AUTO_TEST_CASE(rented_nodes_join_under_curve_with_their_slots_keys_and_a_missing_key_stops_the_broker) {
  PoolSettings p;
  p.gpu_type = "H100";
  p.idle_release_s = 0;
  CloudCluster cc(p);
  BOOST_REQUIRE(cc.c->secure());
  auto cl = testing::connect(*cc.c);
  auto id = submit(cl, job("true", 4, 60, "H100"));
  // It ran on the rented node: the broker took burst-0's registration only
  // from agent:burst-0's key, and the job's run events reached the bus
  // only on that principal's stream.
  auto done = wait_state(cl, cc, id, fb::JobState::Succeeded, 25s);
  BOOST_TEST(done.nodes == std::vector<std::string>{"burst-0"});
  // The key reached the rented agent through the driver's stdin, mode 0600
  // where the driver wrote it, never in an argument of the agent.
  std::string home;
  for (auto& e : std::filesystem::directory_iterator(cc.state.path())) {
    if (e.is_directory() && e.path().filename().string().rfind("local-", 0) == 0) home = e.path();
  }
  BOOST_REQUIRE(!home.empty());
  auto key = std::filesystem::path(home) / "keys" / "agent-burst-0.key";
  BOOST_REQUIRE(std::filesystem::exists(key));
  BOOST_TEST(((std::filesystem::status(key).permissions() & std::filesystem::perms::mask) ==
              (std::filesystem::perms::owner_read | std::filesystem::perms::owner_write)));

  // A pool of 5 slots where the keys directory has 4: the broker refuses to
  // start and names the missing key and how to make it.
  testing::TempDir data;
  std::string driver = std::string("pools.burst.driver=[\"") + TY_SOURCE_DIR + "/deploy/drivers/local\", \"--state\", \"" +
                       data.path() + "\"]";
  auto [rc, out] = testing::run({testing::bin("trainyard-resource-broker"), "--set", "broker.endpoint=tcp://127.0.0.1:*",
                                 "--set", "broker.data=" + (data / "db"), "--set",
                                 "security.keys_dir=" + cc.c->keys_dir(), "--set", driver, "--set",
                                 "pools.burst.gpu_type=H100", "--set", "pools.burst.max_nodes=5"},
                                20s);
  BOOST_TEST(rc != 0);
  BOOST_TEST(out.find("pools.burst: rented node burst-4 has no usable key") != std::string::npos, out);
  BOOST_TEST(out.find("ty admin keys") != std::string::npos, out);
}

BOOST_AUTO_TEST_CASE(a_budget_stops_a_launch_until_it_covers_the_estimate_and_ty_submit_estimate_says_so) {
  PoolSettings p;
  p.gpu_type = "H100";
  p.idle_release_s = 0;
  p.boot_timeout_s = 20;  // no boot seen yet: the estimate counts half of it
  p.billing = true;
  CloudCluster cc(p);
  const char* login = std::getenv("USER");
  auto admin = testing::connect(*cc.c, std::string("user:") + (login && *login ? login : "root"));
  client::Budget budget;
  budget.account = "vision";
  budget.monthly_micros = 500'000;  // 0.50 EUR; renting 1 node for 10 + 60 + 0 s at 36.00/h is 0.70
  budget.hard = true;
  BOOST_REQUIRE(admin.set_budget(budget).ok());
  // ty submit --estimate: the owned price (none: no owned H100) and the cloud one.
  auto [erc, eout] = cc.c->ty({"submit", "--estimate", "--hold", "--account", "vision", "--gpus-per-node", "4",
                               "--gpu-type", "H100", "--time", "1:00", "--wrap", "true"});
  BOOST_REQUIRE_MESSAGE(erc == 0, eout);
  BOOST_TEST(eout.find("If it rents a cloud node (pool burst): at most 0.70 EUR") != std::string::npos, eout);
  auto cl = testing::connect(*cc.c);
  // The broker hears of the budget from billing's account.budget.
  std::string refused;
  auto id = submit(cl, job("true", 4, 60, "H100"));
  bool held_back = wait_until(
      [&] {
        auto [rc, out] = cc.c->ty({"cloud", "status"});
        refused = out;
        return out.find("job " + std::to_string(id) + ": not rented") != std::string::npos;
      },
      10s);
  BOOST_TEST_REQUIRE(held_back, refused << "\n" << cc.logs());
  BOOST_TEST(refused.find("account vision has 0.50 of its budget left") != std::string::npos, refused);
  // The job says so itself (ty status, squeue's reason), from the broker's cloud.refused.
  std::string reason;
  bool says = wait_until(
      [&] {
        auto r = cl.status(id);
        if (r) reason = r->reason;
        return r && r->reason.find("cloud node not rented: ") != std::string::npos &&
               r->reason.find("account vision has 0.50 of its budget left") != std::string::npos;
      },
      5s);
  BOOST_TEST(says, "the waiting job's reason: " << reason);
  BOOST_TEST(cc.leases().size() == 0u);
  // Enough budget: it rents and runs.
  budget.monthly_micros = 5'000'000;
  BOOST_REQUIRE(admin.set_budget(budget).ok());
  auto done = wait_state(cl, cc, id, fb::JobState::Succeeded, 25s);
  BOOST_TEST(done.nodes == std::vector<std::string>{"burst-0"});
}

BOOST_AUTO_TEST_CASE(a_spot_notice_sends_sigterm_with_its_deadline_requeues_the_job_and_it_falls_back_to_on_demand) {
  PoolSettings p;
  p.gpu_type = "H100";
  p.idle_release_s = 0;
  p.extra = {"pools.burst.spot=true", "pools.burst.spot_price_per_node_hour=\"12.00\"", "cloud.spot_fallback_after=1"};
  CloudCluster cc(p);
  auto cl = testing::connect(*cc.c);
  // The job saves its work on SIGTERM to shared storage, as a checkpointing
  // trainer would (the reclaimed machine's disk goes with it). Saving takes
  // it 2 s, as a real checkpoint takes time: the node drains meanwhile (with
  // an instant exit and idle_release_s=0 the lease would pass through
  // Draining quicker than this test polls).
  std::string ckpt = cc.state / "checkpoint";
  auto spec = job("if [ \"$SLURM_RESTART_COUNT\" = 0 ]; then trap 'sleep 2; echo \"checkpoint at SIGTERM on $SLURMD_NODENAME\" >> " +
                      ckpt + "; exit 143' TERM; sleep 60 & wait; else echo \"resumed on $SLURMD_NODENAME\" >> " + ckpt +
                      "; fi",
                  4, 600, "H100");
  auto id = submit(cl, spec);
  auto ran = wait_state(cl, cc, id, fb::JobState::Running, 20s);
  auto first = cc.leases().at(0);
  BOOST_TEST(first["spot"] == true);
  BOOST_TEST(first["price_micros_per_hour"] == 12'000'000);
  std::string instance = first["instance_id"];
  // A notice: reclaimed in 8 s. The run gets SIGTERM at once (not at the
  // reclaim), the node takes nothing new, and the job runs again, the same
  // job, spending no retry (max_retries is 0).
  auto [rc, out] = testing::run(
      {TY_SOURCE_DIR "/deploy/drivers/local", "--state", cc.state.path(), "--notice", "8", "interrupt", instance});
  BOOST_REQUIRE_MESSAGE(rc == 0, out);
  auto noticed = wait_lease(cc, 0, "Draining", 10s);
  BOOST_TEST(noticed["reason"].get<std::string>().find("spot interruption notice") == 0u, noticed.dump());
  BOOST_TEST(noticed["interrupt_at_ns"].get<int64_t>() > 0);
  auto done = wait_state(cl, cc, id, fb::JobState::Succeeded, 40s);
  BOOST_TEST(done.attempt == ran.attempt + 1);
  std::ifstream in(ckpt);
  std::string saved((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  BOOST_TEST(saved.find("checkpoint at SIGTERM on burst-0\n") == 0u, saved);
  BOOST_TEST(saved.find("resumed on ") != std::string::npos, saved);
  // Its second node was rented on-demand: one spot interruption is the
  // fallback threshold here.
  auto leases = cc.leases();
  BOOST_REQUIRE(leases.size() >= 2u);
  BOOST_TEST(leases[1]["spot"] == false);
  BOOST_TEST(leases[1]["price_micros_per_hour"] == 36'000'000);
}

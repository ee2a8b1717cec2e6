// Cloud pools end to end: the real bus, scheduler, resource broker and an
// owned agent, plus a pool whose `local` driver (deploy/drivers/local)
// starts real trainyard-agent processes after a boot delay. Jobs are real
// processes; `ty cloud status --json` is how the tests read the leases.
#define BOOST_TEST_MODULE cloud
#include <boost/test/unit_test.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <thread>

#include "cluster.h"
#include "cluster_client.h"
#include "trainyard/client.h"

using namespace std::chrono_literals;
using namespace trainyard;
using trainyard::testing::Cluster;
using trainyard::testing::ClusterOptions;
using trainyard::testing::TempDir;
using trainyard::testing::wait_until;

namespace {

// A free loopback port, for the scheduler: the broker starts first and must
// know where to read the waiting jobs.
int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd);
    throw std::runtime_error("no free port");
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

struct PoolSettings {
  int max_wait_s = 2;
  int idle_release_s = 2;
  int boot_timeout_s = 20;
  int max_nodes = 2;
  std::string gpu_type = "A100";
  std::vector<std::string> extra;  // more broker --set
  bool billing = false;            // with billing (the test rate card) and cloud metering
  bool secure = true;              // CURVE (the default); false: security.mode = "none"
  int keyed_slots = 4;             // the slots that get keys (burst-0 .. burst-<n - 1>)
};

// A cluster with one owned node (2 A100) and a pool "burst" of 4-GPU nodes.
struct CloudCluster {
  TempDir state;  // the local driver's instances (and inject.json)
  std::unique_ptr<Cluster> c;
  int64_t started_ns = 0;

  explicit CloudCluster(const PoolSettings& p = {}, const std::string& inject = "{}") {
    std::ofstream(state / "inject.json") << inject;
    std::string sched = "scheduler.endpoint=tcp://127.0.0.1:" + std::to_string(free_port());
    ClusterOptions o;
    // CURVE, as every install: the pool's slots have keys like any node
    // (burst-0 .. burst-<max_nodes - 1>), which the broker hands to the
    // local driver at each launch.
    o.secure = p.secure;
    if (p.keyed_slots > 0) o.agent_keys = {"burst-[0-" + std::to_string(p.keyed_slots - 1) + "]"};
    o.agents = {{"owned-a", 2, "A100"}};
    o.scheduler_sets = {sched, "scheduler.backfill=easy", "scheduler.gpu_types=[\"H100\"]", "scheduler.cycle_ms=200"};
    std::string driver = std::string("pools.burst.driver=[\"") + TY_SOURCE_DIR + "/deploy/drivers/local\", \"--state\", \"" +
                         state.path() + "\", \"--agent\", \"" + testing::bin("trainyard-agent") +
                         "\", \"--agent-set\", \"agent.run_as=agent\"]";
    o.broker_sets = {sched, driver, "pools.burst.gpu_type=" + p.gpu_type, "pools.burst.gpus_per_node=4",
                     "pools.burst.max_nodes=" + std::to_string(p.max_nodes), "pools.burst.price_per_node_hour=\"36.00\"",
                     "pools.burst.boot_timeout_s=" + std::to_string(p.boot_timeout_s),
                     "pools.burst.idle_release_s=" + std::to_string(p.idle_release_s),
                     "pools.burst.max_wait_before_burst_s=" + std::to_string(p.max_wait_s), "cloud.poll_ms=100",
                     "cloud.reconcile_s=1", "cloud.orphan_grace_s=1", "cloud.backoff_s=1"};
    o.broker_sets.insert(o.broker_sets.end(), p.extra.begin(), p.extra.end());
    if (p.billing) o.with_test_billing(state.path());
    c = std::make_unique<Cluster>(o);
  }
  ~CloudCluster() {
    c.reset();
    testing::kill_processes_mentioning(state.path());  // the rented agents and their jobs
  }

  nlohmann::json status() {
    auto [rc, out] = c->ty({"cloud", "status", "--ended", "--json"});
    BOOST_REQUIRE_MESSAGE(rc == 0, "ty cloud status: " << out);
    return nlohmann::json::parse(out);
  }
  nlohmann::json leases() { return status()["leases"]; }
  // Instances the driver still holds (a leak if no lease is live).
  size_t instances() {
    size_t n = 0;
    if (!std::filesystem::exists(state / "instances")) return 0;
    for (auto& e : std::filesystem::directory_iterator(state / "instances")) n += e.path().extension() == ".json";
    return n;
  }
  // The services' logs, then each rented agent's (the driver keeps them in
  // the instance's home).
  std::string logs() {
    std::string out = c->logs();
    for (auto& e : std::filesystem::directory_iterator(state.path())) {
      auto log = e.path() / "agent.log";
      if (!e.is_directory() || !std::filesystem::exists(log)) continue;
      std::ifstream in(log);
      std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      if (text.size() > 3000) text = "..." + text.substr(text.size() - 3000);
      out += "---- rented agent " + e.path().filename().string() + " ----\n" + text + "\n";
    }
    return out;
  }
};

fb::JobSpecT job(const std::string& shell, uint32_t gpus, uint64_t time_limit_s = 600, const std::string& type = "") {
  fb::JobSpecT s;
  s.name = "cloud-test";
  s.user = "alice";
  s.account = "vision";
  s.command = {"sh", "-c", shell};
  s.gpus_per_node = gpus;
  s.gpu_type = type;
  s.time_limit_s = time_limit_s;
  s.grace_s = 1;
  return s;
}

uint64_t submit(client::Client& cl, const fb::JobSpecT& spec) {
  auto r = cl.submit(spec);
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().to_string());
  return r->job_ids.at(0);
}

fb::JobRecordT wait_state(client::Client& cl, CloudCluster& cc, uint64_t id, fb::JobState want,
                          std::chrono::milliseconds timeout = 20s) {
  fb::JobRecordT last;
  bool ok = wait_until(
      [&] {
        auto r = cl.status(id);
        if (r) last = *r;
        return r && r->state == want;
      },
      timeout);
  BOOST_REQUIRE_MESSAGE(ok, "job " << id << " never reached " << fb::EnumNameJobState(want) << " (is "
                                   << fb::EnumNameJobState(last.state) << ": " << last.reason << ")\n"
                                   << cc.logs());
  return last;
}

nlohmann::json wait_lease(CloudCluster& cc, size_t index, const std::string& state, std::chrono::milliseconds timeout = 20s) {
  nlohmann::json last;
  bool ok = wait_until(
      [&] {
        auto l = cc.leases();
        if (l.size() <= index) return false;
        last = l[index];
        return last["state"] == state;
      },
      timeout);
  BOOST_REQUIRE_MESSAGE(ok, "lease #" << index << " never became " << state << ": " << last.dump() << "\n" << cc.logs());
  return last;
}

double ms(int64_t ns) { return static_cast<double>(ns) / 1e6; }

}  // namespace

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
  // trainer would (the reclaimed machine's disk goes with it).
  std::string ckpt = cc.state / "checkpoint";
  auto spec = job("if [ \"$SLURM_RESTART_COUNT\" = 0 ]; then trap 'echo \"checkpoint at SIGTERM on $SLURMD_NODENAME\" >> " +
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

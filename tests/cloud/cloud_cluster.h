// What the cloud pool tests share: a whole cluster with one owned node and
// a pool "burst" whose `local` driver (deploy/drivers/local) starts real
// trainyard-agent processes after a boot delay, and the waits they use.
#pragma once

#include <boost/test/unit_test.hpp>

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
#include "cluster_jobs.h"
#include "trainyard/client.h"

using namespace std::chrono_literals;
using namespace trainyard;
using trainyard::testing::Cluster;
using trainyard::testing::ClusterOptions;
using trainyard::testing::submit;
using trainyard::testing::TempDir;
using trainyard::testing::wait_until;

namespace {

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
    // The broker starts first and must know where to read the waiting jobs.
    std::string sched = "scheduler.endpoint=tcp://127.0.0.1:" + std::to_string(testing::free_loopback_port());
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

// testing::job on a GPU type, with a grace of 1 s.
inline fb::JobSpecT job(const std::string& shell, uint32_t gpus, uint64_t time_limit_s = 600, const std::string& type = "") {
  auto s = testing::job(shell, gpus, time_limit_s);
  s.gpu_type = type;
  s.grace_s = 1;
  return s;
}

inline fb::JobRecordT wait_state(client::Client& cl, CloudCluster& cc, uint64_t id, fb::JobState want,
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

inline nlohmann::json wait_lease(CloudCluster& cc, size_t index, const std::string& state, std::chrono::milliseconds timeout = 20s) {
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

inline double ms(int64_t ns) { return static_cast<double>(ns) / 1e6; }

}  // namespace

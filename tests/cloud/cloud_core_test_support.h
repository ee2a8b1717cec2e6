// What the cloud core's unit tests share: owned and rented nodes, pools and
// waiting jobs to feed CloudPools, and a Fixture with one owned node that
// brings a launched lease to ready. No processes: time is a number.
#pragma once

#include <boost/test/unit_test.hpp>

#include <algorithm>

#include "cloud_options.h"
#include "core/cloud_pools.h"
#include "calendar/calendar.h"
#include "util/config_schema.h"

namespace trainyard::broker::cloud_testing {

inline constexpr int64_t kS = 1'000'000'000;
inline constexpr int64_t kT0 = 1'000'000 * kS;

inline std::shared_ptr<const fb::NodeInfoT> node_info(const std::string& name, int gpus,
                                                      const std::string& type = "A100") {
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

inline PoolConfig pool(const std::string& name, int64_t price_units, const std::string& type = "A100",
                       uint32_t gpus = 8) {
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

inline WaitingJob job(uint64_t id, uint32_t gpus, int64_t submit_ns, const std::string& type = "", uint32_t nodes = 1) {
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
  // Launch answered, listed running, its agent registered: ready. The
  // inventory lists every live instance of the pool (one missing from it
  // would end its lease).
  void make_ready(CloudPools& c, uint64_t id, int64_t now) {
    CloudEffects fx;
    c.launched(id, LaunchOutcome{true, "i-" + std::to_string(id), "", ""}, now, fx);
    std::vector<ListedInstance> listed;
    for (auto& [lid, l] : c.leases()) {
      if (!l.ended() && l.pool == c.lease(id)->pool && !l.instance_id.empty()) {
        listed.push_back({l.instance_id, l.pool, lid, "running"});
      }
    }
    c.listed(c.lease(id)->pool, listed, now + 1, now + 1, fx);
    BOOST_REQUIRE_EQUAL(to_string(c.lease(id)->state), "registering");
    Effects e;
    BOOST_REQUIRE(cluster.register_node(node_info(c.lease(id)->node, 8), {}, {now + 2, now + 2}, e));
    c.node_registered(c.lease(id)->node, cluster, now + 2, fx);
    BOOST_REQUIRE_EQUAL(to_string(c.lease(id)->state), "ready");
  }
};

}  // namespace trainyard::broker::cloud_testing

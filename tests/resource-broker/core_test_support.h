// What the broker core's unit tests share: node descriptions, a Cluster
// fixture on a manual clock, and its allocate helpers.
#pragma once

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <memory>
#include <string>

#include "core/cluster.h"
#include "print.h"
#include "records.h"

namespace trainyard::broker {
inline std::ostream& operator<<(std::ostream& os, LeaseState s) { return os << to_string(s); }
}  // namespace trainyard::broker

namespace trainyard::broker::core_testing {

constexpr int64_t kSecond = 1'000'000'000;

inline std::shared_ptr<const fb::NodeInfoT> node_info(const std::string& name, int gpus,
                                                      const std::string& type = "A100", uint32_t cpus = 64,
                                                      uint64_t memory_mb = 512 * 1024) {
  auto n = std::make_shared<fb::NodeInfoT>();
  n->name = name;
  for (int i = 0; i < gpus; ++i) {
    auto g = std::make_unique<fb::GpuInfoT>();
    g->index = static_cast<uint32_t>(i);
    g->type = type;
    g->memory_mb = 81920;
    g->uuid = name + "-gpu-" + std::to_string(i);
    n->gpus.push_back(std::move(g));
  }
  n->cpus = cpus;
  n->memory_mb = memory_mb;
  n->agent_endpoint = "tcp://127.0.0.1:7000";
  return n;
}

inline std::shared_ptr<const fb::JobSpecT> spec(const std::string& gpu_type = "", uint32_t cpus = 4,
                                                uint64_t mem = 1024) {
  auto s = std::make_shared<fb::JobSpecT>();
  s->name = "train";
  s->user = "ada";
  s->command = {"python", "train.py"};
  s->gpu_type = gpu_type;
  s->cpus = cpus;
  s->memory_mb = mem;
  s->grace_s = 10;
  return s;
}

inline AllocateRequest single(uint64_t job, const std::string& node, std::vector<uint32_t> gpus, uint32_t attempt = 0) {
  AllocateRequest r;
  r.job_id = job;
  r.attempt = attempt;
  r.spec = spec();
  r.placements.push_back(PlacementRequest{node, std::move(gpus), 0, 0});
  return r;
}

inline size_t count(const Effects& fx, EventKind k) {
  return static_cast<size_t>(
      std::count_if(fx.events.begin(), fx.events.end(), [k](const Event& e) { return e.kind == k; }));
}

struct Fixture {
  Cluster cluster{ClusterOptions{5 * kSecond}};
  Now now{1'700'000'000 * kSecond, 100 * kSecond};

  void advance(int64_t ns) {
    now.wall_ns += ns;
    now.mono_ns += ns;
  }
  void add_node(const std::string& name, int gpus, const std::string& type = "A100") {
    Effects fx;
    BOOST_REQUIRE(cluster.register_node(node_info(name, gpus, type), {}, now, fx));
  }
  uint64_t grant(uint64_t job, const std::string& node, std::vector<uint32_t> gpus) {
    Effects fx;
    auto r = cluster.allocate(single(job, node, std::move(gpus)), now, fx);
    BOOST_REQUIRE_MESSAGE(r.ok(), r.status().to_string());
    return r->front();
  }
};

}  // namespace trainyard::broker::core_testing

// What the scheduling policy's unit tests share: nodes (with NUMA domains),
// specs per account, and a Sim whose broker grants at once and whose runs
// start at once and end when the test says. Time is virtual.
#pragma once

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <map>
#include <random>
#include <set>

#include "core/scheduler.h"
#include "test_nodes.h"

namespace trainyard::fb {
inline std::ostream& operator<<(std::ostream& os, JobState s) { return os << EnumNameJobState(s); }
}  // namespace trainyard::fb

namespace trainyard::scheduler::policy_testing {

inline constexpr int64_t kS = 1'000'000'000;

using scheduler::testing::make_node;  // test_nodes.h
using scheduler::testing::with_numa;

inline fb::JobSpecT make_spec(uint32_t gpus, const std::string& account = "vision", uint64_t limit_s = 3600,
                              int32_t priority = 0, const std::string& type = "") {
  fb::JobSpecT s;
  s.name = "train";
  s.user = account + "-user";
  s.account = account;
  s.command = {"python", "train.py"};
  s.gpus_per_node = gpus;
  s.gpu_type = type;
  s.priority = priority;
  s.time_limit_s = limit_s;
  return s;
}

inline SchedulerConfig with(Backfill b) {
  SchedulerConfig c;
  c.backfill = b;
  return c;
}

// The core, a broker that grants every Allocate at once, and agents whose
// runs start at once and end when the test says.
struct Sim {
  explicit Sim(SchedulerConfig c = {}, std::string policy = "priority")
      : s(c, make_policy(policy, c.fairshare)) {}
  Scheduler s;
  int64_t now = 1'000 * kS;
  uint64_t next_lease = 100;
  std::map<JobId, std::vector<uint64_t>> leases;
  std::vector<ReleaseRequest> releases;
  std::vector<StateChange> changes;

  JobId submit(const fb::JobSpecT& spec) {
    auto r = s.submit(spec, now);
    BOOST_REQUIRE_MESSAGE(r.ok(), r.status().to_string());
    return r->job_ids.at(0);
  }
  void collect() {
    auto out = s.take_output();
    for (auto& r : out.releases) releases.push_back(r);
    for (auto& c : out.changes) changes.push_back(c);
  }
  // A cycle at `now`; every allocation is granted and its run starts.
  std::set<JobId> cycle() {
    s.tick(now);
    s.cycle(now);
    auto out = s.take_output();
    for (auto& r : out.releases) releases.push_back(r);
    for (auto& c : out.changes) changes.push_back(c);
    std::set<JobId> started;
    for (auto& a : out.allocations) {
      std::vector<uint64_t> ids;
      for (size_t i = 0; i < a.nodes.size(); ++i) ids.push_back(next_lease++);
      s.allocated(a.job, a.attempt, ids, now);
      for (size_t r = 0; r < a.nodes.size(); ++r) {
        s.lease_granted(Grant{ids[r], a.job, a.attempt, a.nodes[r].node, a.nodes[r].gpus, a.nodes[r].cpus,
                              a.nodes[r].memory_mb, static_cast<uint32_t>(r)},
                        now);
      }
      s.run_started(a.job, a.attempt, ids[0], now, now);
      leases[a.job] = ids;
      started.insert(a.job);
    }
    collect();
    return started;
  }
  void finish(JobId id, fb::RunOutcome outcome = fb::RunOutcome::Succeeded) {
    uint32_t attempt = s.job(id)->attempt;
    for (uint64_t l : leases[id]) s.run_finished(RunEnd{id, attempt, l, outcome, 0, 0, ""}, now);  // every node
    for (uint64_t l : leases[id]) s.lease_released(l, id, now);
    leases.erase(id);
    collect();
  }
  void advance(int64_t seconds) { now += seconds * kS; }
  JobState state(JobId id) const { return s.job(id)->state; }
  std::string reason(JobId id) const { return s.reason_of(*s.job(id)); }
};

}  // namespace trainyard::scheduler::policy_testing

// What the scheduler core's unit tests share: nodes and specs to submit, and
// a tiny in-test "broker" (Sim) that grants what the core asks for.
#pragma once

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <map>
#include <set>

#include "core/array_spec.h"
#include "core/notify.h"
#include "core/scheduler.h"
#include "test_nodes.h"

namespace trainyard::fb {
inline std::ostream& operator<<(std::ostream& os, JobState s) { return os << EnumNameJobState(s); }
inline std::ostream& operator<<(std::ostream& os, ErrorCode c) { return os << EnumNameErrorCode(c); }
}  // namespace trainyard::fb

namespace trainyard::scheduler::testing {

inline fb::JobSpecT make_spec(uint32_t gpus = 1, const std::string& type = "", int32_t priority = 0) {
  fb::JobSpecT s;
  s.name = "train";
  s.user = "alice";
  s.account = "vision";
  s.command = {"python", "train.py"};
  s.gpus_per_node = gpus;
  s.gpu_type = type;
  s.priority = priority;
  s.time_limit_s = 3600;
  return s;
}

// The core plus a broker that grants every Allocate at once.
struct Sim {
  explicit Sim(SchedulerConfig c = {}) : s(std::move(c)) {}
  Scheduler s;
  int64_t now = 1'000'000'000;
  uint64_t next_lease = 100;
  std::map<JobId, std::vector<uint64_t>> leases;  // current attempt's leases by rank
  std::map<uint64_t, JobId> lease_job;
  std::vector<ReleaseRequest> releases;

  JobId submit(const fb::JobSpecT& spec) {
    auto r = s.submit(spec, now);
    BOOST_REQUIRE_MESSAGE(r.ok(), r.status().to_string());
    return r->job_ids.at(0);
  }
  // Runs a cycle; grants each allocation (reply, then lease.granted).
  std::vector<AllocateRequest> cycle() {
    now += 1'000'000;
    s.cycle(now);
    auto out = s.take_output();
    for (auto& r : out.releases) releases.push_back(r);
    for (auto& a : out.allocations) {
      std::vector<uint64_t> ids;
      for (size_t i = 0; i < a.nodes.size(); ++i) ids.push_back(next_lease++);
      s.allocated(a.job, a.attempt, ids, now);
      for (size_t r = 0; r < a.nodes.size(); ++r) {
        Grant g{ids[r], a.job, a.attempt, a.nodes[r].node, a.nodes[r].gpus, a.nodes[r].cpus, a.nodes[r].memory_mb,
                static_cast<uint32_t>(r)};
        s.lease_granted(g, now);
        lease_job[ids[r]] = a.job;
      }
      leases[a.job] = ids;
    }
    auto rest = s.take_output();
    for (auto& r : rest.releases) releases.push_back(r);
    return out.allocations;
  }
  void start(JobId id) {
    s.run_started(id, s.job(id)->attempt, leases[id].at(0), now, now);
  }
  // The run ends; the broker frees its leases.
  void finish(JobId id, fb::RunOutcome outcome = fb::RunOutcome::Succeeded, int32_t exit_code = 0) {
    const Job* j = s.job(id);
    RunEnd e{id, j->attempt, leases[id].at(0), outcome, exit_code, 0, ""};
    s.run_finished(e, now);
    for (uint64_t l : leases[id]) s.lease_released(l, id, now);
    leases.erase(id);
  }
  JobState state(JobId id) const { return s.job(id)->state; }
  const std::vector<std::string>& nodes_of(JobId id) const { return s.job(id)->nodes; }
};

inline std::set<JobId> placed_ids(const std::vector<AllocateRequest>& allocs) {
  std::set<JobId> out;
  for (auto& a : allocs) out.insert(a.job);
  return out;
}

}  // namespace trainyard::scheduler::testing

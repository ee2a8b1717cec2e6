// The scheduler's view of cloud nodes being rented for its waiting jobs
// (the broker's cloud.<pool>.<state> events): a pending job a booting node
// is meant for says so, with the node's expected ready time; one the broker
// would rent for but its account's budget does not cover (cloud.refused)
// says that.
#include <algorithm>

#include <fmt/format.h>

#include "shell.h"

namespace trainyard::scheduler {

void SchedulerShell::on_cloud_lease(const bus::Event& e) {
  const auto* l = e.as<fb::CloudLease>();
  if (!l) return;
  // Forget what this lease was meant for before: it may have moved to another job.
  for (auto it = cloud_waits_.begin(); it != cloud_waits_.end();) {
    it = it->second.lease == l->lease_id() ? cloud_waits_.erase(it) : std::next(it);
  }
  bool booting = l->state() == fb::CloudLeaseState::Requested || l->state() == fb::CloudLeaseState::Provisioning ||
                 l->state() == fb::CloudLeaseState::Registering;
  if (!booting || l->for_job() == 0) return;
  cloud_waits_[l->for_job()] = CloudWait{l->lease_id(), l->pool()->str(), l->expected_ready_ns()};
}

void SchedulerShell::on_cloud_refusals(const bus::Event& e) {
  const auto* r = e.as<fb::CloudRefusals>();
  if (!r) return;
  cloud_refused_.clear();  // each event is the whole set
  if (!r->refused()) return;
  for (const auto* one : *r->refused()) {
    if (one && one->job_id() != 0 && one->reason()) cloud_refused_[one->job_id()] = one->reason()->str();
  }
}

std::string SchedulerShell::reason_for(const Job& j) const {
  if (j.state != fb::JobState::Pending) return std::string(core_.reason_of(j));
  if (auto it = cloud_waits_.find(j.id); it != cloud_waits_.end()) {
    // The broker's wording (core/cloud_pools.h, cloud_wait_reason).
    int64_t left_s = std::max<int64_t>(0, (it->second.expected_ready_ns - clock_.now_ns()) / 1'000'000'000);
    return fmt::format("waiting for cloud node (pool {}, ready in ~{} min)", it->second.pool, (left_s + 59) / 60);
  }
  if (auto it = cloud_refused_.find(j.id); it != cloud_refused_.end()) {
    // "Resources; cloud node not rented: renting 1 node(s) of pool ... would
    // cost about ... and account ... has ... of its budget left this month"
    return fmt::format("{}; cloud node {}", core_.reason_of(j), it->second);
  }
  return std::string(core_.reason_of(j));
}

}  // namespace trainyard::scheduler

// The simulation's side of the rented cloud pools: the broker's decision
// after each batch of events, and what it changes (nodes booting, drained,
// gone; spot reclaims), applied to the scheduler core.
#include <set>

#include "sim/cloud_jobs.h"
#include "sim/simulation.h"

namespace trainyard::scheduler::sim::detail {

// As the broker does every cloud.poll_ms: read the waiting jobs, decide.
// Between events it wakes when a job's wait reaches the threshold or a
// node's idle time runs out, so nothing waits on a polling period.
bool Simulation::cloud_plan(int64_t t) {
  auto waiting = waiting_for_cloud(core_, &first_live_);
  CloudChanges ch;
  cloud_->plan(waiting, t, ch);
  cloud_apply(ch, t);
  if (!ch.undrained.empty()) return true;
  int64_t wake = cloud_->next_wake_ns(waiting, t);
  if (wake > 0 && (cloud_wake_ <= t || wake < cloud_wake_)) {
    events_.push(Event{wake, seq_++, Kind::kCloudWake, 0, 0});
    cloud_wake_ = wake;
  }
  return false;
}

void Simulation::cloud_apply(const CloudChanges& ch, int64_t t) {
  for (auto& [node, ready] : ch.booting) {
    events_.push(Event{ready, seq_++, Kind::kCloudReady, cloud_booting_.size(), 0});
    cloud_booting_.push_back(node);
  }
  for (auto& node : ch.drained) core_.node_drained(node, true);
  for (auto& node : ch.undrained) core_.node_drained(node, false);
  for (auto& node : ch.gone) core_.node_down(node);
  for (auto& r : ch.reclaims) {
    events_.push(Event{r.at_ns, seq_++, Kind::kCloudReclaim, cloud_reclaims_.size(), 0});
    cloud_reclaims_.push_back(r);
  }
  for (auto& node : ch.moves) cloud_move(node, t);
}

std::set<size_t> Simulation::jobs_on(const std::string& node) const {
  std::set<size_t> jobs;
  for (auto& [lease, at] : lease_node_) {
    if (at.second == node) jobs.insert(at.first);
  }
  return jobs;
}

void Simulation::cloud_move(const std::string& node, int64_t t) {
  for (size_t i : jobs_on(node)) {
    const Job* j = core_.job(ids_[i]);
    if (!j || leases_[i].empty() || moving_[i]) continue;
    moving_[i] = true;
    int64_t stop = t + static_cast<int64_t>(j->spec->grace_s) * kSecond;
    events_.push(Event{stop, seq_++, Kind::kRunEnd, i, j->attempt + 1000000});
  }
}

void Simulation::cloud_reclaim(size_t k, int64_t t) {
  // After the trace's last job: nothing more to simulate (a min_nodes spot
  // node would otherwise be reclaimed and rented again forever).
  if (arrived_ == trace_.size() && lease_node_.empty() && core_.queued() == 0) return;
  const auto r = cloud_reclaims_[k];
  std::set<size_t> victims = jobs_on(r.node);
  CloudChanges ch;
  if (!cloud_->reclaim(r.node, r.lease, t, ch)) return;
  // As the broker's spot notice does: each run is preempted (no retry
  // spent), its job requeued; here it starts over from scratch.
  for (size_t i : victims) {
    cloud_->spot_interrupted(ids_[i], 1);
    end_run(i, fb::RunOutcome::Preempted, t);
  }
  cloud_apply(ch, t);
}

void Simulation::cloud_ready(size_t k, int64_t t) {
  CloudNodeShape shape;
  CloudChanges ch;
  if (cloud_->node_ready(cloud_booting_[k], t, &shape, ch)) core_.node_up(cloud_node_info(shape));
  cloud_apply(ch, t);
}

}  // namespace trainyard::scheduler::sim::detail

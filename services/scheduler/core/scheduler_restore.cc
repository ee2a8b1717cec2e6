// Restore: the core rebuilt from stored nodes, leases and jobs before it
// serves, with the derived state (queue, arrays, dependencies, tokens,
// fair-share usage) recomputed.
#include "core/scheduler.h"

#include <algorithm>

#include "core/array_spec.h"
#include "core/validation.h"

namespace trainyard::scheduler {

// --- restore -----------------------------------------------------------------

void Scheduler::restore_node(const fb::NodeInfoT& info, bool up, bool drained) {
  cluster_.upsert(info);
  if (!up) cluster_.set_up(info.name, false);
  if (drained) cluster_.set_drained(info.name, true);
}

void Scheduler::restore_job(Job job) {
  JobId id = job.id;
  next_id_ = std::max(next_id_, id + 1);
  if (job.array_job_id) next_id_ = std::max(next_id_, job.array_job_id + 1);
  jobs_[id] = std::move(job);
}

void Scheduler::finish_restore(int64_t now_ns) {
  // Derived state first, for every job, then queue what waits.
  for (auto& [id, j] : jobs_) derive(id, j);
  // What active jobs hold, and when they are due to end.
  for (auto& [id, j] : jobs_) {
    if (!j.active()) continue;
    held_changed(j, true);
    int64_t start = j.state == JobState::Running && j.start_time_ns ? j.start_time_ns : now_ns;
    set_lease_ends(j, start + limit_ns(j));
    if (j.spec->exclusive) {
      for (uint64_t l : j.lease_ids) {
        if (l) cluster_.set_lease_exclusive(l);
      }
    }
  }
  replay_fair_share(now_ns);
  for (auto& [key, c] : carried_usage_) {
    policy_->add_usage(usage_.index(key.first), cluster_.intern_gpu_type(key.second), c.gpu_s,
                       std::min(c.as_of_ns, now_ns));
  }
  for (auto& [id, j] : jobs_) j.usage_open = j.state == JobState::Running;
  for (auto& [id, j] : jobs_) {
    if (j.state == JobState::Pending) make_ready(j, now_ns);
  }
  // Factors once the waiting jobs are queued again: an account whose only
  // work is waiting counts among those sharing (before, it did not until
  // the next tick).
  policy_->refresh(now_ns);
  resend_releases();
  full_ = true;
}

void Scheduler::derive(JobId id, Job& j) {
  j.shape = shape_of(*j.spec, cluster_);
  j.other_partitions = other_partitions(*j.spec, cluster_);
  j.tier = tier_for(*j.spec, j.shape);
  j.account = usage_.index(j.spec->account);
  j.dirty = false;
  j.queued = false;
  j.allocating = false;
  if (j.array_job_id) {
    auto& a = arrays_[j.array_job_id];
    a.tasks.push_back(id);
    if (a.tasks.size() == 1 && !j.spec->array.empty()) {
      auto parsed = parse_array(j.spec->array, UINT32_MAX);
      if (parsed) a.max_running = parsed->max_running;
    }
    if (j.active()) ++a.active;
  }
  if (!j.spec->client_token.empty()) {
    auto& r = tokens_[token_key(j.spec->user, j.spec->client_token)];
    r.array_job_id = j.array_job_id;
    r.job_ids.push_back(id);
  }
  if (!j.terminal()) {
    for (auto& d : j.spec->dependencies) dependents_[d->job_id].push_back(id);
    count_unfinished(*j.spec, 1);
  } else {
    ended_.emplace(j.end_time_ns, id);
  }
}

void Scheduler::replay_fair_share(int64_t now_ns) {
  // Fair-share history: every run in the jobs' histories, replayed in time
  // order into the policy (usage of runs whose GPU type is not recorded
  // counts as the job's type, or as any type).
  struct RunEdge {
    int64_t time;
    bool start;
    JobId job;
  };
  std::vector<RunEdge> edges;
  for (auto& [id, j] : jobs_) {
    for (size_t h = 0; h < j.history.size(); ++h) {
      if (j.history[h].to != JobState::Running) continue;
      edges.push_back(RunEdge{j.history[h].time_ns, true, id});
      if (h + 1 < j.history.size()) edges.push_back(RunEdge{j.history[h + 1].time_ns, false, id});
    }
  }
  std::sort(edges.begin(), edges.end(), [](const RunEdge& a, const RunEdge& b) {
    if (a.time != b.time) return a.time < b.time;
    if (a.start != b.start) return !a.start;  // ends first
    return a.job < b.job;
  });
  for (auto& edge : edges) {
    Job& j = jobs_[edge.job];
    if (!j.counted) {
      j.held_type = j.shape.gpu_type;
      j.held_gpus = j.shape.gpus * j.shape.nodes;
    }
    if (edge.start) {
      policy_->on_started(j, std::min(edge.time, now_ns));
    } else {
      policy_->on_ended(j, std::min(edge.time, now_ns));
    }
  }
}

}  // namespace trainyard::scheduler

#include "sim/simulator.h"

#include <algorithm>
#include <set>

#include "sim/simulation.h"

namespace trainyard::scheduler::sim {
namespace detail {

uint64_t Simulation::add_nodes() {
  std::map<std::string, int> per_type;
  for (auto& g : options_.nodes) {
    for (uint32_t i = 0; i < g.count; ++i) {
      fb::NodeInfoT n;
      std::string base = g.type.empty() ? "node" : g.type;
      std::transform(base.begin(), base.end(), base.begin(), [](unsigned char c) { return std::tolower(c); });
      n.name = base + "-" + std::to_string(per_type[base]++);
      for (uint32_t k = 0; k < g.gpus; ++k) {
        auto gpu = std::make_unique<fb::GpuInfoT>();
        gpu->index = k;
        gpu->type = g.type;
        gpu->memory_mb = 80'000;
        n.gpus.push_back(std::move(gpu));
      }
      n.cpus = g.gpus * 16;
      n.memory_mb = g.gpus * 128'000ull;
      n.simulated = true;
      if (cloud_) cloud_->add_owned(n.name, g.type, g.gpus);
      core_.node_up(n);
    }
    total_gpus_ += uint64_t{g.count} * g.gpus;
    widest_ = std::max(widest_, g.gpus);
  }
  return total_gpus_;
}

void Simulation::account_time(int64_t t) {
  if (cloud_) cloud_->account(t);
  if (t <= last_t_) return;
  // Utilisation: busy GPUs over [last_t, t), split over sample buckets.
  int64_t a = last_t_;
  while (a < t) {
    size_t b = static_cast<size_t>((a - first_submit_) / bucket_ns_);
    int64_t bucket_end = first_submit_ + static_cast<int64_t>(b + 1) * bucket_ns_;
    int64_t e = std::min(t, bucket_end);
    if (bucket_busy_.size() <= b) bucket_busy_.resize(b + 1, 0);
    bucket_busy_[b] += static_cast<double>(busy_) * to_s(e - a);
    a = e;
  }
  busy_gpu_s_ += static_cast<double>(busy_) * to_s(t - last_t_);
  if (core_.queued() > 0) {
    queued_busy_gpu_s_ += static_cast<double>(busy_) * to_s(t - last_t_);
    queued_time_ += to_s(t - last_t_);
  }
  // Fragmentation matters while jobs wait for room.
  auto f = core_.cluster().fragmentation();
  if (core_.queued() > 0 && f.free_gpus > 0) {
    frag_weighted_ += f.ratio() * to_s(t - last_t_);
    frag_time_ += to_s(t - last_t_);
  }
  last_t_ = t;
}

void Simulation::end_run(size_t i, fb::RunOutcome outcome, int64_t t) {
  JobId id = ids_[i];
  const Job* j = core_.job(id);
  if (!j || leases_[i].empty()) return;
  busy_ -= owned_gpus_[i];
  owned_gpus_[i] = 0;
  // Every node's run ends (a gang's nodes together): a gang ends with the
  // last of them, or with the first that did not succeed.
  uint32_t attempt = j->attempt;
  for (uint64_t l : leases_[i]) core_.run_finished(RunEnd{id, attempt, l, outcome, 0, 0, ""}, t);
  for (uint64_t l : leases_[i]) {
    core_.lease_released(l, id, t);
    if (cloud_) cloud_->run_ended(l, t);
    lease_node_.erase(l);
  }
  leases_[i].clear();
  last_end_ = std::max(last_end_, t);
}

void Simulation::grant(const AllocateRequest& a, int64_t t) {
  size_t i = index_of_.at(a.job);
  std::vector<uint64_t> ls;
  for (size_t r = 0; r < a.nodes.size(); ++r) ls.push_back(next_lease_++);
  core_.allocated(a.job, a.attempt, ls, t);
  for (size_t r = 0; r < a.nodes.size(); ++r) {
    core_.lease_granted(Grant{ls[r], a.job, a.attempt, a.nodes[r].node, a.nodes[r].gpus, a.nodes[r].cpus,
                              a.nodes[r].memory_mb, static_cast<uint32_t>(r)},
                        t);
  }
  core_.run_started(a.job, a.attempt, ls[0], t, t);
  leases_[i] = ls;
  const Job* j = core_.job(a.job);
  res_.outcomes[i].cloud = false;
  for (size_t r = 0; r < a.nodes.size(); ++r) {
    lease_node_[ls[r]] = {i, a.nodes[r].node};
    // The broker sees every run, owned or rented (estimate_owned_start reads the owned ones).
    int64_t limit_s = static_cast<int64_t>(j->spec->time_limit_s);
    if (cloud_) cloud_->run_started(ls[r], a.nodes[r].node, a.nodes[r].gpus, limit_s, t);
    if (cloud_ && cloud_->is_cloud(a.nodes[r].node)) {
      res_.outcomes[i].cloud = true;
    } else {
      owned_gpus_[i] += static_cast<uint32_t>(a.nodes[r].gpus.size());
    }
  }
  busy_ += owned_gpus_[i];
  if (!started_[i]) {
    started_[i] = true;
    res_.outcomes[i].start_s = to_s(t);
  }
  run_start_[i] = t;
  // A preempted job starts over (no checkpoint), one moved to owned nodes
  // goes on from where it was (left_ns_); a run longer than its limit is
  // stopped at the limit.
  moving_[i] = false;
  int64_t dur = left_ns_[i];
  int64_t limit = static_cast<int64_t>(j->spec->time_limit_s) * kSecond;
  events_.push(Event{t + std::min(dur, limit), seq_++, Kind::kRunEnd, i, a.attempt});
}

void Simulation::apply(int64_t t) {
  Output out = core_.take_output();
  for (auto& a : out.allocations) grant(a, t);
  for (auto& r : out.releases) {
    auto it = index_of_.find(r.job);
    if (it == index_of_.end()) continue;
    size_t i = it->second;
    const Job* j = core_.job(r.job);
    if (!j || leases_[i].empty() || leases_[i][0] != r.lease_id) continue;
    // SIGTERM now, the run is gone after its grace (or its natural end).
    int64_t stop = t + static_cast<int64_t>(r.grace_s) * kSecond;
    events_.push(Event{stop, seq_++, Kind::kRunEnd, i, j->attempt + 1000000});
  }
  (void)core_.take_output();
}

Status Simulation::arrive(size_t i, int64_t t) {
  const TraceJob& tj = trace_[i];
  fb::JobSpecT spec;
  spec.name = tj.id;
  spec.user = tj.user;
  spec.account = tj.user;
  spec.sim_duration_s = tj.duration_s;
  uint32_t nodes = tj.gpus > widest_ && widest_ > 0 ? (tj.gpus + widest_ - 1) / widest_ : 1;
  spec.nodes = nodes;
  spec.gpus_per_node = (tj.gpus + nodes - 1) / nodes;
  spec.gpu_type = tj.gpu_type;
  spec.cpus = 1;
  double factor = options_.limit_random ? spread_(rng_) : options_.limit_factor;
  spec.time_limit_s = static_cast<uint64_t>(std::max(1.0, std::ceil(tj.duration_s * factor - 1e-9)));
  spec.grace_s = 30;
  auto r = core_.submit(spec, t);
  if (!r) return Status::invalid("job " + tj.id + ": " + r.status().message());
  ++arrived_;
  ids_[i] = r->job_ids.at(0);
  index_of_[ids_[i]] = i;
  auto& o = res_.outcomes[i];
  o.id = tj.id;
  o.user = tj.user;
  o.gpus = spec.gpus_per_node * spec.nodes;
  o.submit_s = to_s(t);
  o.duration_s = tj.duration_s;
  return Status::success();
}

void Simulation::run_ended(const Event& ev, int64_t t) {
  size_t i = ev.index;
  const Job* j = core_.job(ids_[i]);
  if (!j || j->terminal()) return;
  bool preempt_stop = ev.attempt >= 1000000;
  uint32_t attempt = preempt_stop ? ev.attempt - 1000000 : ev.attempt;
  if (attempt != j->attempt || leases_[i].empty()) return;
  if (preempt_stop) {
    if (moving_[i]) {
      int64_t done = t - run_start_[i];
      left_ns_[i] = std::max<int64_t>(0, left_ns_[i] - done) + options_.burst.move_loss_s * kSecond;
    }
    end_run(i, fb::RunOutcome::Preempted, t);
  } else {
    bool timed_out = left_ns_[i] > static_cast<int64_t>(j->spec->time_limit_s) * kSecond;
    end_run(i, timed_out ? fb::RunOutcome::TimedOut : fb::RunOutcome::Succeeded, t);
  }
}

void Simulation::cycles(int64_t t) {
  for (int guard = 0; core_.wants_cycle() && guard < 16; ++guard) {
    core_.cycle(t);
    apply(t);
  }
}

Status Simulation::run() {
  res_.outcomes.resize(trace_.size());
  ids_.assign(trace_.size(), 0);
  run_start_.assign(trace_.size(), 0);
  leases_.resize(trace_.size());
  started_.assign(trace_.size(), false);
  owned_gpus_.assign(trace_.size(), 0);
  moving_.assign(trace_.size(), false);
  left_ns_.resize(trace_.size());
  for (size_t i = 0; i < trace_.size(); ++i) left_ns_[i] = to_ns(trace_[i].duration_s);
  for (size_t i = 0; i < trace_.size(); ++i) events_.push(Event{to_ns(trace_[i].submit_s), seq_++, Kind::kArrival, i, 0});
  first_submit_ = trace_.empty() ? 0 : to_ns(trace_.front().submit_s);
  last_t_ = last_end_ = first_submit_;
  bucket_ns_ = std::max<int64_t>(1, to_ns(options_.sample_s));
  while (!events_.empty()) {
    int64_t t = events_.top().time;
    account_time(t);
    while (!events_.empty() && events_.top().time == t) {
      Event ev = events_.top();
      events_.pop();
      if (ev.kind == Kind::kArrival) {
        if (auto s = arrive(ev.index, t); !s) return s;
      } else if (ev.kind == Kind::kRunEnd) {
        run_ended(ev, t);
      } else if (ev.kind == Kind::kCloudReady) {
        cloud_ready(ev.index, t);
      } else if (ev.kind == Kind::kCloudReclaim) {
        cloud_reclaim(ev.index, t);
      }
      (void)core_.take_output();
    }
    core_.tick(t);
    cycles(t);
    // A rented node opened to waiting jobs: place them, then decide again.
    for (int round = 0; cloud_ && round < 3 && cloud_plan(t); ++round) cycles(t);
  }
  return Status::success();
}

}  // namespace detail

namespace {

// Pool names are node-name prefixes: they must not clash with owned nodes or each other.
Status check_pools(const SimOptions& options) {
  std::set<std::string> names;
  for (auto& g : options.nodes) {
    std::string base = g.type.empty() ? "node" : g.type;
    std::transform(base.begin(), base.end(), base.begin(), [](unsigned char c) { return std::tolower(c); });
    names.insert(base);
  }
  for (auto& p : options.pools) {
    if (!names.insert(p.name).second) {
      return Status::invalid("--pool " + p.name + ": the name is taken by another pool or by owned nodes (" + p.name +
                             "-N); choose another");
    }
  }
  if (options.burst.after_s < 0 && options.burst.after_s != kBurstNever && options.burst.after_s != kBurstAlways) {
    return Status::invalid("--burst-after: must be 0 or more seconds, or never");
  }
  if (!(options.burst.per_gpu_hour_s >= 0 && options.burst.per_gpu_hour_s <= 86400)) {
    return Status::invalid("--burst-per-gpu-hour: must be between 0 and 86400 seconds of wait per GPU-hour");
  }
  if (!(options.burst.large_gpu_hours >= 0 && options.burst.large_gpu_hours <= 1e9)) {
    return Status::invalid("--burst-large: must be 0 (off) or more GPU-hours");
  }
  return Status::success();
}

}  // namespace

Result<SimResult> simulate(const std::vector<TraceJob>& trace, const SimOptions& options) {
  SchedulerConfig config = options.config;
  if (!options.keep_backfill) config.backfill = backfill_for(options.policy);
  auto policy = make_policy(options.policy, config.fairshare);
  if (!policy) {
    return Status::invalid("--policy: unknown policy '" + options.policy +
                           "' (known: fifo, priority, fairshare, fairshare+backfill)");
  }
  if (options.limit_factor < 1) return Status::invalid("--limit-factor: must be at least 1 (limits are never short)");
  if (auto s = check_pools(options); !s) return s;
  for (auto& p : options.pools) {
    // A job may ask a GPU type only a pool has (validation accepts scheduler.gpu_types).
    if (std::find(config.gpu_types.begin(), config.gpu_types.end(), p.gpu_type) == config.gpu_types.end()) {
      config.gpu_types.push_back(p.gpu_type);
    }
  }
  detail::Simulation sim(trace, options, config, std::move(policy));
  if (sim.add_nodes() == 0) return Status::invalid("--nodes: the cluster has no GPUs");
  if (auto s = sim.run(); !s) return s;
  return sim.result();
}

}  // namespace trainyard::scheduler::sim

// The figures a run reports: completion time and queueing delay
// percentiles (by job size), makespan, utilisation, fragmentation,
// preemptions, fairness and the cloud's bill.
#include <algorithm>
#include <cmath>

#include "sim/simulation.h"

namespace trainyard::scheduler::sim {

Percentiles percentiles(std::vector<double> v) {
  Percentiles p;
  p.count = v.size();
  if (v.empty()) return p;
  std::sort(v.begin(), v.end());
  double sum = 0;
  for (double x : v) sum += x;
  p.avg = sum / static_cast<double>(v.size());
  auto rank = [&](double q) {
    size_t i = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
    return v[std::min(v.size() - 1, i == 0 ? 0 : i - 1)];
  };
  p.p50 = rank(0.5);
  p.p95 = rank(0.95);
  p.p99 = rank(0.99);
  p.max = v.back();
  return p;
}

double jain_index(const std::vector<double>& x) {
  double sum = 0, sq = 0;
  for (double v : x) {
    sum += v;
    sq += v * v;
  }
  if (x.empty() || sq == 0) return 1;
  return sum * sum / (static_cast<double>(x.size()) * sq);
}

namespace detail {
namespace {

std::string size_bucket(uint32_t gpus) {
  if (gpus <= 1) return "1";
  if (gpus <= 4) return "2-4";
  if (gpus <= 8) return "5-8";
  return "9+";
}

}  // namespace

SimResult Simulation::result() {
  SimResult& res = res_;
  res.policy = options_.policy;
  res.jobs = trace_.size();
  res.gpus = total_gpus_;
  std::vector<double> jct, wait;
  std::map<std::string, std::vector<double>> wait_by, slow_by_user;
  for (size_t i = 0; i < trace_.size(); ++i) {
    auto& o = res.outcomes[i];
    const Job* j = core_.job(ids_[i]);
    if (!j) continue;
    o.state = fb::EnumNameJobState(j->state);
    o.preemptions = j->preemptions;
    if (!j->terminal()) continue;
    ++res.finished;
    o.end_s = to_s(j->end_time_ns);
    double c = o.end_s - o.submit_s;
    jct.push_back(c);
    wait.push_back(o.start_s - o.submit_s);
    wait_by[size_bucket(o.gpus)].push_back(o.start_s - o.submit_s);
    slow_by_user[o.user].push_back(c / std::max(1e-9, o.duration_s));
    if (o.preemptions) res.preemptions_by_user[o.user] += o.preemptions;
  }
  res.jct = percentiles(jct);
  res.wait = percentiles(wait);
  for (auto& [b, v] : wait_by) res.wait_by_size[b] = percentiles(v);
  double gpus = static_cast<double>(total_gpus_);
  res.makespan_s = to_s(last_end_ - first_submit_);
  res.utilisation = res.makespan_s > 0 ? busy_gpu_s_ / (gpus * res.makespan_s) : 0;
  res.utilisation_queued = queued_time_ > 0 ? queued_busy_gpu_s_ / (gpus * queued_time_) : 0;
  for (size_t b = 0; b < bucket_busy_.size(); ++b) {
    double start = to_s(static_cast<int64_t>(b) * bucket_ns_);
    double len = std::min(to_s(bucket_ns_), res.makespan_s - start);
    if (len <= 0) break;
    res.utilisation_series.emplace_back(start, bucket_busy_[b] / (gpus * len));
  }
  res.fragmentation = frag_time_ > 0 ? frag_weighted_ / frag_time_ : 0;
  res.preemptions = core_.stats().preemptions;
  std::vector<double> per_user;
  for (auto& [u, v] : slow_by_user) per_user.push_back(percentiles(v).avg);
  res.jain_fairness = jain_index(per_user);
  res.backfilled = core_.stats().backfilled;
  res.cycles = core_.stats().cycles;
  if (cloud_) {
    res.cloud = true;
    res.burst = options_.burst;
    res.cloud_stats = cloud_->stats(std::max(last_t_, last_end_));
  }
  return std::move(res_);
}

}  // namespace detail
}  // namespace trainyard::scheduler::sim

// Retention of ended jobs and the per-user limit on unfinished jobs: the
// parts of the core that keep its state bounded (issue 13).
#include <algorithm>
#include <cmath>

#include "core/scheduler.h"

namespace trainyard::scheduler {

bool Scheduler::was_purged(JobId id) const {
  return id != 0 && id < next_id_ && !jobs_.count(id) && !arrays_.count(id);
}

uint32_t Scheduler::unfinished_jobs_of(const std::string& user) const {
  auto it = unfinished_by_user_.find(user);
  return it == unfinished_by_user_.end() ? 0 : it->second;
}

namespace {
// The key of a user's count in one QOS (names hold no NUL).
std::string qos_key(const fb::JobSpecT& s) { return s.user + '\0' + s.qos; }
}  // namespace

Status Scheduler::check_user_limit(const fb::JobSpecT& spec, size_t new_jobs) const {
  uint64_t limit = config_.max_submit_jobs_per_user;
  uint64_t has = unfinished_jobs_of(spec.user);
  if (limit && has + new_jobs > limit) {
    return Status::exhausted("user '" + spec.user + "' has " + std::to_string(has) + " unfinished jobs and asks for " +
                             std::to_string(new_jobs) + " more; the limit is " + std::to_string(limit) +
                             " (scheduler.max_submit_jobs_per_user); wait for some to end or cancel some");
  }
  auto q = spec.qos.empty() ? config_.qos.end() : config_.qos.find(spec.qos);
  if (q == config_.qos.end() || q->second.max_jobs_per_user == 0) return Status::success();
  limit = q->second.max_jobs_per_user;
  has = unfinished_jobs_of(qos_key(spec));
  if (has + new_jobs <= limit) return Status::success();
  return Status::exhausted("user '" + spec.user + "' has " + std::to_string(has) + " unfinished jobs in QOS '" +
                           spec.qos + "' and asks for " + std::to_string(new_jobs) + " more; the limit is " +
                           std::to_string(limit) + " (scheduler.qos." + spec.qos +
                           ".max_jobs_per_user); wait for some to end, or use another QOS");
}

void Scheduler::count_unfinished(const fb::JobSpecT& spec, int64_t delta) {
  auto bump = [&](const std::string& key) {
    auto it = unfinished_by_user_.try_emplace(key, 0).first;
    int64_t n = std::max<int64_t>(0, int64_t{it->second} + delta);
    if (n == 0) {
      unfinished_by_user_.erase(it);
    } else {
      it->second = static_cast<uint32_t>(n);
    }
  };
  bump(spec.user);
  if (!spec.qos.empty()) bump(qos_key(spec));
}

void Scheduler::job_ended(const Job& j) {
  ended_.emplace(j.end_time_ns, j.id);
  count_unfinished(*j.spec, -1);
}

void Scheduler::forget(Job& j, std::unordered_map<JobId, std::vector<JobId>>& gone_from_arrays) {
  if (j.array_job_id) gone_from_arrays[j.array_job_id].push_back(j.id);
  if (!j.spec->client_token.empty()) {
    auto t = tokens_.find(token_key(j.spec->user, j.spec->client_token));
    if (t != tokens_.end()) {
      auto& ids = t->second.job_ids;
      ids.erase(std::remove(ids.begin(), ids.end(), j.id), ids.end());
      if (ids.empty()) tokens_.erase(t);
    }
  }
  dependents_.erase(j.id);
  plans_.erase(j.id);
  draining_for_.erase(j.id);
  out_.purged.push_back(j.id);
  jobs_.erase(j.id);
}

void Scheduler::carry_usage(const Job& j, int64_t now_ns) {
  // Each run counted as replay_fair_share counts it after a restart (the
  // job's GPUs on all its nodes, of its shape's type, from Running to the
  // next transition), decayed to now as the policy decays usage: a run of
  // g GPUs over [s, e] adds g (e^-λ(now-e) - e^-λ(now-s)) / λ, or g (e - s)
  // without decay.
  double lambda = config_.fairshare.half_life_s > 0 ? std::log(2.0) / config_.fairshare.half_life_s : 0;
  double gpus = static_cast<double>(j.shape.gpus) * j.shape.nodes;
  auto ago_s = [&](int64_t t) { return static_cast<double>(std::max<int64_t>(0, now_ns - t)) / 1e9; };
  double add = 0;
  for (size_t h = 0; h + 1 < j.history.size(); ++h) {
    if (j.history[h].to != JobState::Running) continue;
    double from = ago_s(j.history[h].time_ns), to = ago_s(j.history[h + 1].time_ns);
    add += lambda > 0 ? gpus * (std::exp(-lambda * to) - std::exp(-lambda * from)) / lambda : gpus * (from - to);
  }
  if (!(add > 0)) return;
  auto& c = carried_usage_[{usage_.names()[j.account], cluster_.gpu_type_name(j.shape.gpu_type)}];
  if (lambda > 0 && now_ns > c.as_of_ns) c.gpu_s *= std::exp(-lambda * static_cast<double>(now_ns - c.as_of_ns) / 1e9);
  c.gpu_s += add;
  c.as_of_ns = std::max(c.as_of_ns, now_ns);
  out_.carried_usage_changed = true;
}

size_t Scheduler::purge_ended(int64_t now_ns) {
  if (config_.job_retention_s == 0 || ended_.empty()) return 0;
  constexpr int64_t kMaxS = INT64_MAX / 1'000'000'000;
  int64_t keep_ns = static_cast<int64_t>(std::min<uint64_t>(config_.job_retention_s, kMaxS)) * 1'000'000'000;
  std::unordered_map<JobId, std::vector<JobId>> gone_from_arrays;
  size_t purged = 0;
  while (!ended_.empty() && purged < config_.max_purge_per_tick) {
    auto [end_ns, id] = *ended_.begin();
    if (end_ns > now_ns - keep_ns) break;
    ended_.erase(ended_.begin());
    Job* j = find(id);
    if (!j || !j->terminal()) continue;
    carry_usage(*j, now_ns);
    forget(*j, gone_from_arrays);
    ++purged;
  }
  for (auto& entry : gone_from_arrays) {
    const auto array = entry.first;
    auto& gone = entry.second;  // (not a structured binding: the lambda below captures it)
    auto a = arrays_.find(array);
    if (a == arrays_.end()) continue;
    std::sort(gone.begin(), gone.end());
    auto& tasks = a->second.tasks;
    tasks.erase(std::remove_if(tasks.begin(), tasks.end(),
                               [&](JobId t) { return std::binary_search(gone.begin(), gone.end(), t); }),
                tasks.end());
    if (tasks.empty()) {
      dependents_.erase(array);
      arrays_.erase(a);
      out_.purged_arrays.push_back(array);
    }
  }
  return purged;
}

}  // namespace trainyard::scheduler

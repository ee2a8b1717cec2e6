#include "core/preemption.h"

#include <algorithm>
#include <bit>
#include <climits>

namespace trainyard::scheduler {

bool PreemptionPlanner::reclaims(const QueueEntry& e) const {
  if (!config_.reclaim) return false;
  return usage_.within_guarantee(e.account, uint64_t{e.shape.gpus} * e.shape.nodes, e.shape.gpu_type);
}

bool PreemptionPlanner::may_preempt(const QueueEntry& e, const Job& v, bool reclaim, uint16_t reclaim_type,
                                    int64_t now_ns) const {
  // Cheapest tests first: the planner sees every active job.
  if (v.allocating || v.preempt_requested || v.cancel_requested || v.requeue_requested || v.id == e.id) return false;
  if (v.state != JobState::Scheduled && v.state != JobState::Running) return false;
  bool by_tier = config_.tiers && v.tier < e.tier;
  bool by_reclaim = !by_tier && reclaim && v.account != e.account && usage_.borrowing(v.account, reclaim_type);
  if (!by_tier && !by_reclaim) return false;
  if (!v.spec->preemptible) return false;
  int64_t young = now_ns - static_cast<int64_t>(config_.min_runtime_s) * 1'000'000'000;
  return !(config_.min_runtime_s && v.state == JobState::Running && v.start_time_ns > young);
}

std::vector<PreemptionPlanner::Candidate> PreemptionPlanner::candidates(const QueueEntry& e,
                                                                        std::span<Job* const> active,
                                                                        int64_t now_ns) const {
  bool reclaim = reclaims(e);
  uint16_t p = e.shape.partition, t = e.shape.gpu_type;
  uint16_t reclaim_type = 0;
  if (reclaim && t != 0 && usage_.limits(e.account).guaranteed[t] > 0) reclaim_type = t;
  std::vector<Candidate> cands;
  for (Job* v : active) {
    if (!may_preempt(e, *v, reclaim, reclaim_type, now_ns)) continue;
    for (size_t rank = 0; rank < v->nodes.size(); ++rank) {
      auto n = cluster_.find_node(v->nodes[rank]);
      if (!n || !cluster_.schedulable(*n) || !cluster_.in_partition(*n, p)) continue;
      uint64_t mask = 0;
      for (uint32_t i = 0; i < v->shape.gpus; ++i) {
        size_t at = rank * v->shape.gpus + i;
        if (at < v->gpu_indices.size() && v->gpu_indices[at] < 64) mask |= uint64_t{1} << v->gpu_indices[at];
      }
      mask &= cluster_.type_mask(*n, t);
      if (mask) {
        cands.push_back(Candidate{*n, static_cast<uint32_t>(std::popcount(mask)), v->tier, v->start_time_ns, v->id});
      }
    }
  }
  std::sort(cands.begin(), cands.end(), [](const Candidate& a, const Candidate& b) {
    if (a.node != b.node) return a.node < b.node;
    if (a.tier != b.tier) return a.tier < b.tier;
    if (a.start != b.start) return a.start > b.start;
    return a.id > b.id;
  });
  return cands;
}

std::vector<PreemptionPlanner::Choice> PreemptionPlanner::choices(const QueueEntry& e,
                                                                  const std::vector<Candidate>& cands) const {
  uint16_t t = e.shape.gpu_type;
  uint32_t g = e.shape.gpus;
  std::vector<Choice> out;
  for (size_t i = 0; i < cands.size();) {
    size_t j = i;
    while (j < cands.size() && cands[j].node == cands[i].node) ++j;
    NodeIdx n = cands[i].node;
    uint32_t f = static_cast<uint32_t>(std::popcount(cluster_.free_mask(n) & cluster_.type_mask(n, t)));
    uint32_t taken = 0;
    int64_t top = INT64_MIN;
    size_t c = i;
    while (f < g && c < j) {
      f += cands[c].gpus;
      taken += cands[c].gpus;
      top = std::max(top, cands[c].tier);
      ++c;
    }
    if (f >= g) out.push_back(Choice{taken, top, n, i, c - i});
    i = j;
  }
  if (e.shape.nodes > 1) {
    for (NodeIdx n : cluster_.pool_nodes(e.shape.partition, t)) {
      if (std::popcount(cluster_.free_mask(n) & cluster_.type_mask(n, t)) >= static_cast<int>(g) &&
          cluster_.fits_cpu_memory(n, e.shape)) {
        out.push_back(Choice{0, INT64_MIN, n, 0, 0});
      }
    }
  }
  return out;
}

std::optional<PreemptionPlan> PreemptionPlanner::plan(const QueueEntry& e, std::span<Job* const> active,
                                                      int64_t now_ns) const {
  std::vector<Candidate> cands = candidates(e, active, now_ns);
  std::vector<Choice> picks = choices(e, cands);
  uint32_t k = e.shape.nodes;
  if (picks.size() < k) return std::nullopt;
  std::sort(picks.begin(), picks.end(), [](const Choice& a, const Choice& b) {
    if (a.victim_gpus != b.victim_gpus) return a.victim_gpus < b.victim_gpus;
    if (a.top_tier != b.top_tier) return a.top_tier < b.top_tier;
    return a.node < b.node;
  });
  PreemptionPlan plan;
  plan.type = e.shape.gpu_type;
  for (uint32_t c = 0; c < k; ++c) {
    plan.nodes.push_back(picks[c].node);
    for (size_t v = picks[c].first; v < picks[c].first + picks[c].count; ++v) {
      if (std::find(plan.victims.begin(), plan.victims.end(), cands[v].id) == plan.victims.end()) {
        plan.victims.push_back(cands[v].id);
      }
    }
  }
  return plan;
}

}  // namespace trainyard::scheduler

#include "core/cluster.h"

#include <algorithm>

#include "core/codec.h"

namespace trainyard::gateway {

NodeStats node_stats(const fb::NodeList& list) {
  const fb::NodeList* one[] = {&list};
  return node_stats(one);
}

NodeStats node_stats(std::span<const fb::NodeList* const> pages) {
  NodeStats s;
  for (const auto* list : pages) {
    if (list->nodes()) add_node_stats(*list, s);
  }
  return s;
}

void add_node_stats(const fb::NodeList& list, NodeStats& s) {
  for (const auto* n : *list.nodes()) {
    bool usable = n->up() && !n->drained();
    if (!n->up()) {
      ++s.down;
    } else if (n->drained()) {
      ++s.drained;
    } else {
      ++s.up;
    }
    const auto* info = n->node();
    if (!info || !info->gpus()) continue;
    for (const auto* g : *info->gpus()) {
      std::string type = g->type() && g->type()->size() > 0 ? g->type()->str() : "unknown";
      auto& c = s.gpus[type];
      ++c.total;
      bool busy = n->allocated_gpus() &&
                  std::find(n->allocated_gpus()->begin(), n->allocated_gpus()->end(), g->index()) !=
                      n->allocated_gpus()->end();
      if (busy) {
        ++c.allocated;
      } else if (usable) {
        ++c.idle;
      } else {
        ++c.unavailable;
      }
    }
  }
}

JobStats job_stats(const fb::JobList& list) {
  JobStats s;
  for (auto st : fb::EnumValuesJobState()) s.by_state[state_name(st)] = 0;
  if (!list.jobs()) return s;
  for (const auto* j : *list.jobs()) {
    std::string state = state_name(j->state());
    std::string partition = j->spec() && j->spec()->partition() ? j->spec()->partition()->str() : "";
    if (partition.empty()) partition = "default";
    ++s.by_state_partition[{state, partition}];
    ++s.by_state[state];
    ++s.total;
    if (j->start_time_ns() > 0 && j->submit_time_ns() > 0 && j->start_time_ns() >= j->submit_time_ns()) {
      s.queue_waits_s.push_back(static_cast<double>(j->start_time_ns() - j->submit_time_ns()) / 1e9);
    }
  }
  return s;
}

nlohmann::json cluster_summary(const NodeStats& nodes, const JobStats& jobs) {
  using Json = nlohmann::json;
  Json by_type = Json::object();
  GpuCounts all;
  for (const auto& [type, c] : nodes.gpus) {
    by_type[type] = {{"total", c.total}, {"allocated", c.allocated}, {"idle", c.idle}, {"unavailable", c.unavailable}};
    all.total += c.total;
    all.allocated += c.allocated;
    all.idle += c.idle;
    all.unavailable += c.unavailable;
  }
  Json states = Json::object();
  for (const auto& [state, n] : jobs.by_state) states[state] = n;
  auto count = [&](fb::JobState st) {
    auto it = jobs.by_state.find(state_name(st));
    return it == jobs.by_state.end() ? uint64_t{0} : it->second;
  };
  return Json{{"nodes", {{"up", nodes.up}, {"down", nodes.down}, {"drained", nodes.drained},
                         {"total", nodes.up + nodes.down + nodes.drained}}},
              {"gpus", {{"total", all.total}, {"allocated", all.allocated}, {"idle", all.idle},
                        {"unavailable", all.unavailable}, {"by_type", by_type}}},
              {"jobs", {{"by_state", states}, {"total", jobs.total}}},
              {"queue_length", count(fb::JobState::Pending) + count(fb::JobState::Held)},
              {"running", count(fb::JobState::Running) + count(fb::JobState::Scheduled)}};
}

}  // namespace trainyard::gateway

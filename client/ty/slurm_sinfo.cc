// sinfo: the nodes by partition and state (or one a line with -N).
#include <functional>
#include <iostream>
#include <map>
#include <set>

#include "slurm_shim.h"

namespace trainyard::ty::slurm {

namespace {

std::string node_state(const fb::NodeStatusT& n) {
  size_t gpus = n.node ? n.node->gpus.size() : 0;
  if (!n.up) return "down";
  if (n.drained) return n.leases.empty() ? "drain" : "drng";
  if (n.leases.empty()) return "idle";
  if (gpus > 0 && n.allocated_gpus.size() < gpus) return "mix";
  return "alloc";
}

std::string gres_of(const fb::NodeStatusT& n) {
  if (!n.node || n.node->gpus.empty()) return "(null)";
  std::map<std::string, int> types;
  for (auto& g : n.node->gpus) types[g->type.empty() ? "gpu" : g->type]++;
  std::string out;
  for (auto& [t, count] : types) out += (out.empty() ? "" : ",") + std::string("gpu:") + t + ":" + std::to_string(count);
  return out;
}

std::string sinfo_field(char f, const std::string& partition, const std::string& state,
                        const std::vector<const fb::NodeStatusT*>& nodes) {
  std::vector<std::string> names;
  for (auto* n : nodes) names.push_back(n->node ? n->node->name : "");
  switch (f) {
    case 'P':
    case 'R': return partition;
    case 'a': return "up";
    case 'l': return "infinite";
    case 'D': return std::to_string(nodes.size());
    case 't':
    case 'T': return state;
    case 'N':
    case 'n': return join(names, ",");
    case 'G': return nodes.empty() ? "" : gres_of(*nodes.front());
    case 'c': return nodes.empty() || !nodes.front()->node ? "0" : std::to_string(nodes.front()->node->cpus);
    case 'm': return nodes.empty() || !nodes.front()->node ? "0" : std::to_string(nodes.front()->node->memory_mb);
    case '%': return "%";
  }
  return std::string("%") + f;
}

// A row of sinfo's output: a (partition, state) group of nodes, or one node with -N.
using SinfoRow = std::pair<std::pair<std::string, std::string>, std::vector<const fb::NodeStatusT*>>;

std::vector<SinfoRow> sinfo_rows(const std::vector<fb::NodeStatusT>& nodes, const std::set<std::string>& parts,
                                 bool per_node) {
  std::map<std::pair<std::string, std::string>, std::vector<const fb::NodeStatusT*>> groups;
  std::vector<SinfoRow> rows;
  for (auto& n : nodes) {
    std::string part = n.node && !n.node->partition.empty() ? n.node->partition : "default";
    if (!parts.empty() && !parts.count(part)) continue;
    if (per_node) {
      rows.push_back({{part, node_state(n)}, {&n}});
    } else {
      groups[{part, node_state(n)}].push_back(&n);
    }
  }
  for (auto& g : groups) rows.push_back(g);
  return rows;
}

}  // namespace

int sinfo(Context& ctx, const std::vector<std::string>& args) {
  auto p = parse_options(args, {{"noheader", 'h', false}, {"format", 'o', true}, {"Node", 'N', false},
                                {"partition", 'p', true}, {"long", 'l', false},  {"help", 0, false},
                                {"summarize", 's', false}, {"all", 'a', false}});
  if (!p) return usage_error("sinfo", p.status());
  if (p->has("help")) {
    std::cout << "Usage: sinfo [-h] [-N] [-p PART] [-o FORMAT]   (Trainyard's sinfo; docs/slurm.md)\n";
    return kExitOk;
  }
  auto* c = ctx.client();
  if (!c) return kExitUsage;
  auto nodes = c->nodes();
  if (!nodes) return service_error("sinfo", nodes.status());
  std::set<std::string> parts;
  for (auto& v : all_values(*p, "partition")) parts.insert(v);
  bool per_node = p->has("Node");
  std::string fmt = p->has("format") ? p->last("format")
                    : per_node       ? "%N %.6D %P %.6t %G"
                                     : "%P %.5a %.10l %.6D %.6t %N %G";
  static const std::map<char, std::string> kNames = {{'P', "PARTITION"}, {'R', "PARTITION"}, {'a', "AVAIL"},
                                                     {'l', "TIMELIMIT"}, {'D', "NODES"},     {'t', "STATE"},
                                                     {'T', "STATE"},     {'N', "NODELIST"},  {'n', "HOSTNAMES"},
                                                     {'G', "GRES"},      {'c', "CPUS"},      {'m', "MEMORY"}};
  if (!p->has("noheader")) {
    std::cout << render_format(fmt, [](char f) {
      auto it = kNames.find(f);
      return it == kNames.end() ? std::string(1, f) : it->second;
    }, false) << "\n";
  }
  for (auto& row : sinfo_rows(*nodes, parts, per_node)) {
    const auto& key = row.first;
    const auto& members = row.second;
    std::cout << render_format(fmt, [&key, &members](char f) { return sinfo_field(f, key.first, key.second, members); },
                               false)
              << "\n";
  }
  return kExitOk;
}

}  // namespace trainyard::ty::slurm

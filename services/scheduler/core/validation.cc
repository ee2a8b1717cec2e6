#include "core/validation.h"

#include <algorithm>

#include "core/notify.h"
#include "core/spec_limits.h"
#include "text/gpu_type.h"

namespace trainyard::scheduler {
namespace {

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (auto& s : v) {
    if (!out.empty()) out += ", ";
    out += s;
  }
  return out.empty() ? "none" : out;
}

std::string quoted(const std::string& s) { return "'" + s + "'"; }

// Who submits it, what it runs, and for which account.
Status check_identity(const fb::JobSpecT& spec, const SchedulerConfig& config) {
  if (spec.user.empty()) return Status::invalid("user: missing; a job needs the name of the user who submits it");
  if (spec.command.empty() && spec.sim_duration_s <= 0) {
    return Status::invalid("command: empty; give the program to run and its arguments");
  }
  if (config.accounts.empty()) return Status::success();
  if (spec.account.empty()) {
    return Status::invalid("account: missing; choose one of: " + join(config.accounts));
  }
  if (std::find(config.accounts.begin(), config.accounts.end(), spec.account) == config.accounts.end()) {
    return Status::invalid("account: unknown account " + quoted(spec.account) + "; known accounts: " +
                           join(config.accounts));
  }
  return Status::success();
}

// The partitions it names ("a,b": it starts wherever it can first), or the
// default one (written into the spec).
Result<std::vector<uint16_t>> resolve_partitions(fb::JobSpecT& spec, const SchedulerConfig& config,
                                                 const Cluster& cluster) {
  if (spec.partition.empty()) {
    spec.partition = config.default_partition.empty() ? cluster.partition(0).name : config.default_partition;
  }
  std::vector<uint16_t> out;
  for (const std::string& name : partition_names(spec.partition)) {
    auto p = cluster.partition_index(name);
    if (!p) {
      std::vector<std::string> names;
      for (size_t i = 0; i < cluster.partition_count(); ++i) {
        names.push_back(cluster.partition(static_cast<uint16_t>(i)).name);
      }
      return Status::invalid("partition: unknown partition " + quoted(name) + "; partitions: " + join(names));
    }
    if (std::find(out.begin(), out.end(), *p) == out.end()) out.push_back(*p);
  }
  if (out.empty()) return Status::invalid("partition: " + quoted(spec.partition) + " names no partition");
  return out;
}

// Nodes, and GPUs per node and their type, against the partition's largest node.
Status check_nodes_and_gpus(const fb::JobSpecT& spec, const SchedulerConfig& config, const Cluster& cluster,
                            uint16_t p) {
  const auto& part = cluster.partition(p);
  const auto& lim = cluster.limits(p);
  bool known_nodes = lim.nodes > 0;
  if (spec.nodes == 0) return Status::invalid("nodes: must be at least 1");
  if (spec.nodes > config.max_nodes_per_job) {
    return Status::invalid("nodes: " + std::to_string(spec.nodes) + " is not a valid node count (at most " +
                           std::to_string(config.max_nodes_per_job) + ")");
  }
  // A GPU type of scheduler.gpu_types may come from a cloud pool that rents
  // as many nodes as the gang needs: the nodes here now are no limit.
  bool rentable = !spec.gpu_type.empty() &&
                  std::any_of(config.gpu_types.begin(), config.gpu_types.end(),
                              [&spec](const std::string& t) { return text::same_gpu_type(t, spec.gpu_type); });
  if (known_nodes && spec.nodes > lim.nodes && !rentable) {
    return Status::invalid("nodes: " + std::to_string(spec.nodes) + " nodes asked but partition " +
                           quoted(part.name) + " has " + std::to_string(lim.nodes));
  }
  if (spec.gpus_per_node > config.max_gpus_per_node) {
    return Status::invalid("gpus_per_node: " + std::to_string(spec.gpus_per_node) +
                           " is not a valid GPU count (0 to " + std::to_string(config.max_gpus_per_node) + ")");
  }
  uint16_t type = 0;
  if (!spec.gpu_type.empty()) {
    if (spec.gpus_per_node == 0) {
      return Status::invalid("gpus_per_node: 0 GPUs asked with gpu_type " + quoted(spec.gpu_type) +
                             "; ask for at least 1 GPU or leave gpu_type empty");
    }
    auto t = cluster.gpu_type_index(spec.gpu_type);
    if (!t) {
      return Status::invalid("gpu_type: unknown GPU type " + quoted(spec.gpu_type) + "; known types: " +
                             join(cluster.gpu_types_in(p)));
    }
    type = *t;
    if (known_nodes && (lim.max_gpus.size() <= type || lim.max_gpus[type] == 0) &&
        std::none_of(config.gpu_types.begin(), config.gpu_types.end(),
                     [&spec](const std::string& t) { return text::same_gpu_type(t, spec.gpu_type); })) {
      return Status::invalid("gpu_type: partition " + quoted(part.name) + " has no " + quoted(spec.gpu_type) +
                             " GPUs; it has: " + join(cluster.gpu_types_in(p)));
    }
  }
  if (!known_nodes || spec.gpus_per_node == 0) return Status::success();
  uint32_t most = type < lim.max_gpus.size() ? lim.max_gpus[type] : 0;
  bool declared_only = type != 0 && most == 0;  // a configured type no node has yet
  if (!declared_only && spec.gpus_per_node > most) {
    return Status::invalid("gpus_per_node: " + std::to_string(spec.gpus_per_node) +
                           " GPUs per node asked but the largest node in partition " + quoted(part.name) + " has " +
                           std::to_string(most) +
                           (spec.gpu_type.empty() ? std::string() : " of type " + quoted(spec.gpu_type)) +
                           "; use more nodes with fewer GPUs each");
  }
  return Status::success();
}

// CPUs (at least 1, written into the spec) and memory per node.
Status check_cpus_and_memory(fb::JobSpecT& spec, const SchedulerConfig& config, const Cluster& cluster, uint16_t p) {
  const auto& part = cluster.partition(p);
  const auto& lim = cluster.limits(p);
  bool known_nodes = lim.nodes > 0;
  if (spec.cpus == 0) spec.cpus = 1;
  if (spec.cpus > config.max_cpus) {
    return Status::invalid("cpus: " + std::to_string(spec.cpus) + " is not a valid CPU count");
  }
  if (known_nodes && spec.cpus > lim.max_cpus) {
    return Status::invalid("cpus: " + std::to_string(spec.cpus) + " CPUs per node asked but the largest node in partition " +
                           quoted(part.name) + " has " + std::to_string(lim.max_cpus));
  }
  if (known_nodes && spec.memory_mb > lim.max_memory_mb) {
    return Status::invalid("memory_mb: " + std::to_string(spec.memory_mb) +
                           " MB per node asked but the largest node in partition " + quoted(part.name) + " has " +
                           std::to_string(lim.max_memory_mb) + " MB");
  }
  return Status::success();
}

// --qos: a configured QOS (or the default one) adds its priority and may cap
// the time limit. With no QOS configured, a QOS means nothing (Slurm scripts
// often name `normal`).
Status resolve_qos(fb::JobSpecT& spec, const SchedulerConfig& config, const PartitionConfig& part) {
  if (config.qos.empty()) return Status::success();
  if (spec.qos.empty()) spec.qos = config.default_qos;
  if (spec.qos.empty()) return Status::success();
  auto it = config.qos.find(spec.qos);
  if (it == config.qos.end()) {
    std::vector<std::string> names;
    for (auto& [name, q] : config.qos) names.push_back(name);
    return Status::invalid("qos: unknown QOS " + quoted(spec.qos) + "; QOSes: " + join(names));
  }
  const QosConfig& q = it->second;
  if (q.max_time_limit_s) {
    if (spec.time_limit_s > q.max_time_limit_s) {
      return Status::invalid("time_limit_s: " + std::to_string(spec.time_limit_s) + " s is over the maximum of QOS " +
                             quoted(spec.qos) + " (" + std::to_string(q.max_time_limit_s) + " s)");
    }
    uint64_t fallback = part.default_time_limit_s ? part.default_time_limit_s : config.default_time_limit_s;
    if (spec.time_limit_s == 0 && (fallback == 0 || fallback > q.max_time_limit_s)) {
      spec.time_limit_s = q.max_time_limit_s;
    }
  }
  spec.priority = static_cast<int32_t>(
      std::clamp<int64_t>(int64_t{spec.priority} + q.priority, -(int64_t{1} << 30), int64_t{1} << 30));
  return Status::success();
}

// The time limit (the partition's or the scheduler's default when none is
// given, written into the spec) and grace period.
Status check_time(fb::JobSpecT& spec, const SchedulerConfig& config, const PartitionConfig& part) {
  if (spec.time_limit_s == 0) {
    spec.time_limit_s = part.default_time_limit_s ? part.default_time_limit_s : config.default_time_limit_s;
  }
  if (spec.time_limit_s == 0) {
    return Status::invalid("time_limit_s: missing; give the job a time limit (e.g. --time 1:00:00): partition " +
                           quoted(part.name) + " has no default");
  }
  if (part.max_time_limit_s && spec.time_limit_s > part.max_time_limit_s) {
    return Status::invalid("time_limit_s: " + std::to_string(spec.time_limit_s) + " s is over the maximum of partition " +
                           quoted(part.name) + " (" + std::to_string(part.max_time_limit_s) + " s)");
  }
  if (spec.time_limit_s > config.spec_limits.max_time_limit_s) {
    return Status::invalid("time_limit_s: " + std::to_string(spec.time_limit_s) + " s is over the limit of " +
                           std::to_string(config.spec_limits.max_time_limit_s) + " s (scheduler.max_time_limit_s)");
  }
  if (spec.grace_s > part.max_grace_s) {
    return Status::invalid("grace_s: " + std::to_string(spec.grace_s) + " s is over the maximum of partition " +
                           quoted(part.name) + " (" + std::to_string(part.max_grace_s) + " s, max_grace_s)");
  }
  return Status::success();
}

// --nodelist, --exclude, --constraint: names of nodes this partition has,
// as many as the job's nodes, and labels it can read.
Status check_placement(const fb::JobSpecT& spec, const Cluster& cluster, uint16_t p) {
  if (!spec.nodelist.empty()) {
    if (spec.nodelist.size() != spec.nodes) {
      return Status::invalid("nodelist: names " + std::to_string(spec.nodelist.size()) + " nodes for a job of " +
                             std::to_string(spec.nodes) + " nodes; a job runs on exactly the nodes it names (set "
                             "--nodes to their number)");
    }
    for (auto& name : spec.nodelist) {
      auto n = cluster.find_node(name);
      if (!n || !cluster.in_partition(*n, p)) {
        return Status::invalid("nodelist: " + quoted(name) + " is not a node of partition " +
                               quoted(cluster.partition(p).name));
      }
      if (std::count(spec.nodelist.begin(), spec.nodelist.end(), name) > 1) {
        return Status::invalid("nodelist: " + quoted(name) + " is named twice");
      }
      if (std::find(spec.exclude.begin(), spec.exclude.end(), name) != spec.exclude.end()) {
        return Status::invalid("nodelist: " + quoted(name) + " is also excluded");
      }
    }
  }
  if (auto c = parse_constraint(spec.constraint); !c) return c.status();
  return Status::success();
}

// Everything partition p must accept of the job (filling in its defaults).
Status check_in_partition(fb::JobSpecT& spec, const SchedulerConfig& config, const Cluster& cluster, uint16_t p) {
  if (auto s = check_nodes_and_gpus(spec, config, cluster, p); !s) return s;
  if (auto s = check_cpus_and_memory(spec, config, cluster, p); !s) return s;
  if (auto s = check_time(spec, config, cluster.partition(p)); !s) return s;
  return check_placement(spec, cluster, p);
}

}  // namespace

std::vector<std::string> partition_names(const std::string& list) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= list.size()) {
    auto comma = list.find(',', start);
    std::string name = list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!name.empty()) out.push_back(std::move(name));
    start = comma == std::string::npos ? list.size() + 1 : comma + 1;
  }
  return out;
}

Status normalize_spec(fb::JobSpecT& spec, const SchedulerConfig& config, const Cluster& cluster) {
  if (auto s = check_spec_limits(spec, config.spec_limits); !s) return s;
  if (auto s = check_identity(spec, config); !s) return s;
  auto parts = resolve_partitions(spec, config, cluster);
  if (!parts) return parts.status();
  if (auto s = resolve_qos(spec, config, cluster.partition(parts->front())); !s) return s;
  // The first partition that takes the job settles its defaults (the time
  // limit); the others of a list must take it as it is, or are dropped.
  const uint64_t asked_time = spec.time_limit_s;
  std::vector<uint16_t> taken;
  Status first_refusal = Status::success();
  for (uint16_t p : *parts) {
    if (taken.empty()) spec.time_limit_s = asked_time;
    if (auto s = check_in_partition(spec, config, cluster, p); !s) {
      if (first_refusal.ok()) first_refusal = s;
      continue;
    }
    taken.push_back(p);
  }
  if (taken.empty()) return first_refusal;
  if (parts->size() > 1) {
    spec.partition.clear();
    for (uint16_t p : taken) spec.partition += (spec.partition.empty() ? "" : ",") + cluster.partition(p).name;
  }
  if (auto s = check_notify(spec.notify, config.notify_webhook_hosts); !s) return s;
  if (spec.max_retries > config.max_retries) {
    return Status::invalid("max_retries: " + std::to_string(spec.max_retries) + " is over the limit of " +
                           std::to_string(config.max_retries));
  }
  if (spec.sim_duration_s < 0) return Status::invalid("sim_duration_s: must not be negative");
  for (size_t i = 0; i < spec.env.size(); ++i) {
    if (!spec.env[i] || spec.env[i]->key.empty() || spec.env[i]->key.find('=') != std::string::npos) {
      return Status::invalid("env[" + std::to_string(i) + "]: a variable needs a name without '='");
    }
  }
  return Status::success();
}

Shape shape_of(const fb::JobSpecT& spec, Cluster& cluster) {
  Shape s;
  auto names = partition_names(spec.partition);
  auto p = cluster.partition_index(names.empty() ? spec.partition : names.front());
  s.partition = p ? *p : uint16_t{0xffff};
  s.gpu_type = cluster.intern_gpu_type(spec.gpu_type);
  s.gpus = spec.gpus_per_node;
  s.nodes = std::max<uint32_t>(1, spec.nodes);
  s.cpus = std::max<uint32_t>(1, spec.cpus);
  s.memory_mb = spec.memory_mb;
  Placement where;
  where.nodelist = spec.nodelist;
  where.exclude = spec.exclude;
  if (auto c = parse_constraint(spec.constraint)) where.all_of = std::move(*c);
  where.exclusive = spec.exclusive;
  s.where = cluster.intern_placement(std::move(where));
  return s;
}

std::vector<uint16_t> other_partitions(const fb::JobSpecT& spec, const Cluster& cluster) {
  std::vector<uint16_t> out;
  if (spec.partition.find(',') == std::string::npos) return out;
  auto names = partition_names(spec.partition);
  for (size_t i = 0; i < names.size(); ++i) {
    if (auto p = cluster.partition_index(names[i])) out.push_back(*p);
  }
  return out;
}

}  // namespace trainyard::scheduler

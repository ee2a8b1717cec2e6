#include "config_keys.h"

#include <algorithm>

#include "core/policy.h"

namespace trainyard::scheduler {
namespace {

// A GPU count by type: an integer (every type together) or a table
// {A100 = 8, ...}.
Status read_counts(const Config& c, const std::string& key, std::map<std::string, uint32_t>* out) {
  auto node = c.table().at_path(key);
  if (!node) return Status::success();
  if (auto v = node.value<int64_t>()) {
    if (*v < 0) return Status::invalid(key + ": must not be negative");
    (*out)[""] = static_cast<uint32_t>(*v);
    return Status::success();
  }
  auto* t = node.as_table();
  if (!t) return Status::invalid(key + ": must be a GPU count or a table of GPU type = count");
  for (auto& [type, n] : *t) {
    auto v = n.value<int64_t>();
    if (!v || *v < 0) return Status::invalid(key + "." + std::string(type.str()) + ": must be a GPU count (0 or more)");
    (*out)[std::string(type.str())] = static_cast<uint32_t>(*v);
  }
  return Status::success();
}

// An integer key that must lie in [lo, hi]; `*out` keeps its default when
// the key is absent.
template <typename T>
Status read_int(const Config& c, const std::string& key, int64_t lo, int64_t hi, T* out) {
  if (!c.has(key)) return Status::success();
  int64_t v = c.get_int(key, 0);
  if (v < lo || v > hi) {
    return Status::invalid(key + ": " + std::to_string(v) + " is out of range (" + std::to_string(lo) + " to " +
                           std::to_string(hi) + ")");
  }
  *out = static_cast<T>(v);
  return Status::success();
}

constexpr int64_t kGiB = int64_t{1} << 30;
constexpr int64_t kTenYears = int64_t{10} * 366 * 24 * 3600;

// The size limits of a spec, the per-user limit and retention (issue 13).
Status read_limits(const Config& c, SchedulerConfig& k) {
  auto& l = k.spec_limits;
  const std::string s = "scheduler.";
  for (auto st : {read_int(c, s + "max_spec_bytes", 1024, kGiB, &l.max_spec_bytes),
                  read_int(c, s + "max_argv", 1, 1'000'000, &l.max_argv),
                  read_int(c, s + "max_argv_bytes", 1, kGiB, &l.max_argv_bytes),
                  read_int(c, s + "max_env", 0, 1'000'000, &l.max_env),
                  read_int(c, s + "max_env_bytes", 0, kGiB, &l.max_env_bytes),
                  read_int(c, s + "max_labels", 0, 1'000'000, &l.max_labels),
                  read_int(c, s + "max_label_bytes", 0, kGiB, &l.max_label_bytes),
                  read_int(c, s + "max_dependencies", 0, 1'000'000, &l.max_dependencies),
                  read_int(c, s + "max_string_bytes", 16, 1 << 20, &l.max_string_bytes),
                  read_int(c, s + "max_path_bytes", 16, 1 << 20, &l.max_path_bytes),
                  read_int(c, s + "max_time_limit_s", 1, kTenYears, &l.max_time_limit_s),
                  read_int(c, s + "max_submit_jobs_per_user", 0, 100'000'000, &k.max_submit_jobs_per_user),
                  read_int(c, s + "job_retention_s", 0, kTenYears, &k.job_retention_s),
                  read_int(c, s + "max_purge_per_tick", 1, 10'000'000, &k.max_purge_per_tick),
                  read_int(c, s + "max_array_size", 1, INT32_MAX, &k.max_array_size),
                  read_int(c, s + "max_retries", 0, 1'000'000, &k.max_retries),
                  read_int(c, s + "max_reservations", 0, 1'000'000, &k.max_reservations),
                  read_int(c, s + "max_preemptors_per_cycle", 0, 1'000'000, &k.max_preemptors_per_cycle),
                  read_int(c, s + "default_time_limit_s", 0, kTenYears, &k.default_time_limit_s)}) {
    if (!st) return st;
  }
  return Status::success();
}

// One [scheduler.partitions.NAME] table.
Status read_partition(const Config& c, const std::string& pname, const toml::table& t, PartitionConfig* pc) {
  pc->name = pname;
  auto key = [&](const char* leaf) { return "scheduler.partitions." + pname + "." + leaf; };
  for (auto st : {read_int(c, key("default_time_limit_s"), 0, kTenYears, &pc->default_time_limit_s),
                  read_int(c, key("max_time_limit_s"), 0, kTenYears, &pc->max_time_limit_s),
                  read_int(c, key("max_grace_s"), 0, 24 * 3600, &pc->max_grace_s),
                  read_int(c, key("priority_tier"), -(int64_t{1} << 28), int64_t{1} << 28, &pc->priority_tier)}) {
    if (!st) return st;
  }
  if (auto* labels = t["labels"].as_table()) {
    for (auto& [lk, lv] : *labels) {
      auto v = lv.value<std::string>();
      if (!v) return Status::invalid(key("labels") + "." + std::string(lk.str()) + ": must be a string");
      pc->labels[std::string(lk.str())] = *v;
    }
  }
  return Status::success();
}

// scheduler.accounts: a list of names, or a table of name = share.
Status read_accounts(const Config& c, SchedulerConfig& k) {
  if (auto* accounts = c.table().at_path("scheduler.accounts").as_table()) {
    for (auto& [name, v] : *accounts) {
      auto share = v.value<double>();
      if (!share || *share < 0) {
        return Status::invalid("scheduler.accounts." + std::string(name.str()) + ": must be a share weight (0 or more)");
      }
      k.accounts.emplace_back(name.str());
      k.fairshare.shares[std::string(name.str())] = *share;
    }
  } else {
    k.accounts = c.get_strings("scheduler.accounts");
  }
  return Status::success();
}

// scheduler.partitions.<name> and scheduler.default_partition.
Status read_partitions(const Config& c, SchedulerConfig& k) {
  if (auto* parts = c.table().at_path("scheduler.partitions").as_table()) {
    for (auto& [name, node] : *parts) {
      auto* t = node.as_table();
      std::string pname(name.str());
      if (!t) return Status::invalid("scheduler.partitions." + pname + ": must be a table");
      PartitionConfig pc;
      if (auto st = read_partition(c, pname, *t, &pc); !st) return st;
      if (c.get_bool("scheduler.partitions." + pname + ".default", false) && k.default_partition.empty()) k.default_partition = pname;
      k.partitions.push_back(std::move(pc));
    }
  }
  if (!k.default_partition.empty() && !k.partitions.empty() &&
      std::none_of(k.partitions.begin(), k.partitions.end(), [&](auto& p) { return p.name == k.default_partition; })) {
    return Status::invalid("scheduler.default_partition: '" + k.default_partition + "' is not a partition");
  }
  return Status::success();
}

Status read_fairshare(const Config& c, FairShareConfig& fs) {
  fs.half_life_s = c.get_double("scheduler.fairshare.half_life_s", fs.half_life_s);
  fs.weight_fairshare = c.get_double("scheduler.fairshare.weight_fairshare", fs.weight_fairshare);
  fs.weight_age = c.get_double("scheduler.fairshare.weight_age", fs.weight_age);
  fs.max_age_s = c.get_double("scheduler.fairshare.max_age_s", fs.max_age_s);
  if (fs.half_life_s < 0) return Status::invalid("scheduler.fairshare.half_life_s: must not be negative (0: no decay)");
  if (fs.weight_fairshare < 0 || fs.weight_age < 0) {
    return Status::invalid("scheduler.fairshare.weight_*: weights must not be negative");
  }
  if (auto* shares = c.table().at_path("scheduler.fairshare.shares").as_table()) {
    for (auto& [name, v] : *shares) {
      auto share = v.value<double>();
      if (!share || *share < 0) {
        return Status::invalid("scheduler.fairshare.shares." + std::string(name.str()) +
                               ": must be a share weight (0 or more)");
      }
      fs.shares[std::string(name.str())] = *share;
    }
  }
  return Status::success();
}

// scheduler.quotas.<account>: max_gpus / guaranteed_gpus (a count, or by GPU type).
Status read_quotas(const Config& c, SchedulerConfig& k) {
  if (auto* quotas = c.table().at_path("scheduler.quotas").as_table()) {
    for (auto& [name, node] : *quotas) {
      std::string account(name.str());
      if (!node.as_table()) return Status::invalid("scheduler.quotas." + account + ": must be a table");
      AccountQuota q;
      std::string base = "scheduler.quotas." + account + ".";
      for (auto [leaf, dest] : {std::pair{"max_gpus", &q.max_gpus}, std::pair{"max_gpus_by_type", &q.max_gpus},
                                std::pair{"guaranteed_gpus", &q.guaranteed_gpus},
                                std::pair{"guaranteed_gpus_by_type", &q.guaranteed_gpus}}) {
        if (auto s = read_counts(c, base + leaf, dest); !s) return s;
      }
      k.quotas[account] = std::move(q);
    }
  }
  return Status::success();
}

// scheduler.qos.<name> and scheduler.default_qos.
Status read_qos(const Config& c, SchedulerConfig& k) {
  if (auto* all = c.table().at_path("scheduler.qos").as_table()) {
    for (auto& [name, node] : *all) {
      std::string q(name.str());
      if (!node.as_table()) return Status::invalid("scheduler.qos." + q + ": must be a table");
      std::string base = "scheduler.qos." + q + ".";
      QosConfig qc;
      qc.priority = static_cast<int32_t>(c.get_int(base + "priority", 0, -1'000'000, 1'000'000));
      qc.max_time_limit_s = static_cast<uint64_t>(c.get_int(base + "max_time_limit_s", 0, 0, 31'622'400));
      qc.max_jobs_per_user = static_cast<uint32_t>(c.get_int(base + "max_jobs_per_user", 0, 0, 10'000'000));
      k.qos[q] = qc;
    }
  }
  k.default_qos = c.get_string("scheduler.default_qos", "");
  if (!k.default_qos.empty() && !k.qos.count(k.default_qos)) {
    return Status::invalid("scheduler.default_qos: '" + k.default_qos + "' is not a [scheduler.qos.<name>]");
  }
  return Status::success();
}

}  // namespace

Result<Backfill> parse_backfill(const std::string& name) {
  if (name == "greedy") return Backfill::kGreedy;
  if (name == "easy") return Backfill::kEasy;
  if (name == "off") return Backfill::kOff;
  return Status::invalid("scheduler.backfill: '" + name + "' is not \"greedy\", \"easy\" or \"off\"");
}

Result<PolicyChoice> scheduler_config_from(const Config& c) {
  PolicyChoice out;
  auto& k = out.core;
  try {
    out.policy = c.get_string("scheduler.policy", out.policy);
    if (!make_policy(out.policy)) {
      return Status::invalid("scheduler.policy: unknown policy '" + out.policy +
                             "' (known: fifo, priority, fairshare, fairshare+backfill)");
    }
    k.backfill = backfill_for(out.policy);
    if (c.has("scheduler.backfill")) {
      auto b = parse_backfill(c.get_string("scheduler.backfill"));
      if (!b) return b.status();
      k.backfill = *b;
    }
    if (auto st = read_accounts(c, k); !st) return st;
    k.gpu_types = c.get_strings("scheduler.gpu_types");
    if (auto st = read_limits(c, k); !st) return st;
    k.default_partition = c.get_string("scheduler.default_partition", "");
    if (auto st = read_partitions(c, k); !st) return st;
    if (auto st = read_fairshare(c, k.fairshare); !st) return st;
    if (auto st = read_quotas(c, k); !st) return st;
    if (auto st = read_qos(c, k); !st) return st;
    k.preemption.tiers = c.get_bool("scheduler.preemption.tiers", k.preemption.tiers);
    k.preemption.reclaim = c.get_bool("scheduler.preemption.reclaim", k.preemption.reclaim);
    k.preemption.min_runtime_s =
        static_cast<uint64_t>(std::max<int64_t>(0, c.get_int("scheduler.preemption.min_runtime_s", 0)));
  } catch (const std::exception& e) {
    return Status::invalid(e.what());
  }
  return out;
}

}  // namespace trainyard::scheduler

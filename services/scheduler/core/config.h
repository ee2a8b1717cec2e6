// The scheduler core's configuration as plain values: partitions, accounts
// and limits. The shell reads them from the [scheduler] config section; the
// core and the trace simulator take them as they are.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace trainyard::scheduler {

struct PartitionConfig {
  std::string name;
  // A node belongs to the partition when every label matches (no labels:
  // every node), or when the node itself names the partition.
  std::map<std::string, std::string> labels;
  uint64_t default_time_limit_s = 0;  // 0: the scheduler's default applies
  uint64_t max_time_limit_s = 0;      // 0: no maximum
  // Jobs of a higher tier are tried first (and, with preemption on, may
  // preempt jobs of lower tiers); the job's own priority ranks within it.
  int32_t priority_tier = 0;
};

// Multifactor priority (as Slurm's priority/multifactor): within a tier,
// priority = weight_fairshare * F + weight_age * A, with
//   F = 2^(-U/S): U the account's dominant share of decayed GPU usage (per
//       GPU type, over that type's capacity) normalised over all accounts,
//       S its share weight normalised over the accounts with work;
//   A = min(wait, max_age_s) / max_age_s.
struct FairShareConfig {
  double half_life_s = 7 * 24 * 3600.0;  // usage decays by half in this time
  double weight_fairshare = 10'000;
  double weight_age = 1'000;
  double max_age_s = 7 * 24 * 3600.0;
  std::map<std::string, double> shares;  // account -> share weight (default 1)
};

// Per-account GPU quotas (key "" = every type together).
struct AccountQuota {
  std::map<std::string, uint32_t> max_gpus;         // most GPUs in use at once
  std::map<std::string, uint32_t> guaranteed_gpus;  // lent while idle, reclaimed by preemption
};

// How the cycle treats a job that cannot start now.
enum class Backfill : uint8_t {
  kGreedy,  // pass over it: later jobs that fit start (no reservation)
  kEasy,    // reserve its earliest start; later jobs start only if they do not delay it
  kOff,     // strict order: nothing behind it in its partition starts
};

struct PreemptionConfig {
  bool tiers = false;      // a higher tier preempts lower-tier jobs it needs
  bool reclaim = true;     // an account under its guarantee preempts borrowers
  uint64_t min_runtime_s = 0;  // a run younger than this is not chosen
};

struct SchedulerConfig {
  // Empty: one partition "default" holding every node.
  std::vector<PartitionConfig> partitions;
  // The partition of a spec that names none (empty: the first one).
  std::string default_partition;
  // Accounts allowed to submit (empty: any account, also none).
  std::vector<std::string> accounts;
  // GPU types accepted at submit even before a node of that type registers
  // (cloud pools that start on demand).
  std::vector<std::string> gpu_types;
  uint64_t default_time_limit_s = 0;  // 0: a job must give one (or its partition a default)
  uint32_t max_array_size = 10'000;
  uint32_t max_gpus_per_node = 64;    // above this a count is refused as absurd
  uint32_t max_nodes_per_job = 4096;
  uint32_t max_retries = 100;
  uint32_t max_cpus = 1'000'000;

  // --- scheduling policy (issue 7) ---
  Backfill backfill = Backfill::kGreedy;
  FairShareConfig fairshare;
  std::map<std::string, AccountQuota> quotas;  // by account
  PreemptionConfig preemption;
  // Reservations (EASY backfill) computed per cycle, at most one per pool.
  uint32_t max_reservations = 16;
  // Jobs per cycle that may look for victims to preempt.
  uint32_t max_preemptors_per_cycle = 8;
};

}  // namespace trainyard::scheduler

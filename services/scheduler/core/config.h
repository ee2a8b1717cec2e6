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
  uint64_t max_time_limit_s = 0;      // 0: no maximum but SpecLimits::max_time_limit_s
  // Jobs of a higher tier are tried first (and, with preemption on, may
  // preempt jobs of lower tiers); the job's own priority ranks within it.
  int32_t priority_tier = 0;
  // A job's SIGTERM-to-SIGKILL grace may be at most this (a larger one is
  // refused at submit, as Slurm refuses a time over MaxTime).
  uint32_t max_grace_s = 300;
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

// Size limits of a submitted spec (issue 13): a spec over any of them is
// refused at submit with an error naming the field and the limit.
struct SpecLimits {
  uint64_t max_spec_bytes = 64 * 1024;     // every string and list together
  uint32_t max_argv = 4096;                // command: arguments
  uint64_t max_argv_bytes = 64 * 1024;     // command: bytes of all arguments
  uint32_t max_env = 1024;                 // env: variables
  uint64_t max_env_bytes = 64 * 1024;      // env: bytes of names and values
  uint32_t max_labels = 64;                // labels: entries
  uint64_t max_label_bytes = 8 * 1024;     // labels: bytes of keys and values
  uint32_t max_dependencies = 128;         // dependencies: entries
  uint64_t max_string_bytes = 1024;        // name, user, account, partition, experiment...
  uint64_t max_path_bytes = 4096;          // workdir, stdout_path, stderr_path
  uint64_t max_time_limit_s = 366ull * 24 * 3600;  // time_limit_s where the partition sets no maximum
};

// A quality of service (sbatch --qos): [scheduler.qos.<name>].
struct QosConfig {
  int32_t priority = 0;            // added to the priority of its jobs (within their partition's tier)
  uint64_t max_time_limit_s = 0;   // the longest time limit it accepts (0: none of its own)
  uint32_t max_jobs_per_user = 0;  // unfinished jobs of one user in it, as Slurm's MaxSubmitJobsPU (0: no limit)
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
  SpecLimits spec_limits;
  // Jobs of one user not yet ended (pending, held, scheduled, running), as
  // Slurm's MaxSubmitJobs; an array counts its tasks. 0: unlimited.
  uint32_t max_submit_jobs_per_user = 10'000;
  // Hosts a job's webhook notifications may post to (notify.webhook_hosts).
  std::vector<std::string> notify_webhook_hosts;
  // QOSes by name (empty: --qos is accepted and means nothing), and the
  // QOS of jobs that name none ("": none).
  std::map<std::string, QosConfig> qos;
  std::string default_qos;
  // Ended jobs are purged this long after they end (0: never).
  uint64_t job_retention_s = 30ull * 24 * 3600;
  // Jobs purged in one periodic tick (bounds one write batch).
  uint32_t max_purge_per_tick = 10'000;

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

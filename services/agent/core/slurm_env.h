// What a job written for Slurm reads about itself: the SLURM_* variables
// (and their TY_* twins), Slurm's compressed host lists, the summary of a
// job array, and sbatch's output file name patterns. Pure.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace trainyard::agent {

// Slurm's compressed host list: hosts sharing a prefix and a numeric suffix
// of the same width fold into ranges, "node01,node02,node03,gpu" ->
// "gpu,node[01-03]". Hosts with no numeric suffix stay as they are.
std::string compress_hostlist(const std::vector<std::string>& hosts);

// The tasks of a job array as Slurm describes them to each task.
struct ArraySummary {
  uint64_t count = 0;
  int64_t min = 0;
  int64_t max = 0;
  int64_t step = 1;  // the common gap between indices; 1 when they are irregular
};
// From a spec's array expression ("0-99%8", "1,3,5", "0-15:4"); nullopt when
// it does not parse or is empty.
std::optional<ArraySummary> summarize_array(std::string_view expression);

// Everything the SLURM_* variables are made of, beyond what the generic
// job environment has.
struct SlurmFacts {
  uint64_t job_id = 0;
  std::string job_name;
  uint64_t array_job_id = 0;         // 0: not an array task
  int32_t array_index = -1;
  std::string array_expression;      // the spec's --array
  std::vector<std::string> nodes;    // every node of the job, rank order
  std::string node;                  // this node
  uint32_t node_rank = 0;
  uint32_t ntasks = 0;               // as asked; 0: one per node
  uint32_t ntasks_per_node = 0;      // as asked; 0: not asked
  uint32_t cpus_per_task = 0;        // as asked; 0: not asked
  uint32_t cpus_on_node = 0;         // granted here
  uint32_t gpus_on_node = 0;         // granted here
  std::string gpu_list;              // "0,1": the granted GPU indices
  uint64_t memory_mb = 0;            // per node; 0: not asked
  std::string submit_dir, submit_host;
  std::string partition, account, user;
  uint32_t attempt = 1;              // 1 for the first run
  std::string tmpdir;                // empty: no scratch directory
};

// The SLURM_* variables and their TY_* equivalents for these facts, as
// Slurm sets them for the batch script (the array ones only for array tasks).
std::map<std::string, std::string> slurm_variables(const SlurmFacts& f);

// The values sbatch's output file name patterns stand for.
struct LogPathFacts {
  uint64_t job_id = 0;
  uint64_t array_job_id = 0;   // 0: not an array task (%A is then the job id)
  int32_t array_index = -1;    // -1: not an array task (%a is then 4294967294, as Slurm)
  std::string job_name;        // %x
  std::string user;            // %u
  std::string node;            // %N
  uint32_t node_rank = 0;      // %n, and %t (the batch script is task 0 of its node)
};

// Expands %A %a %j %J %x %u %N %n %t %s %% in a stdout/stderr path pattern,
// with Slurm's zero padding for numbers ("%3a" -> "007"); a relative result
// is under `dir`. An unknown "%c" is kept as written.
std::string expand_log_path(std::string_view pattern, const LogPathFacts& f, std::string_view dir);

}  // namespace trainyard::agent

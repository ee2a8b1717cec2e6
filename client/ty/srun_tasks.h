// The pure part of srun inside a job: what the job's environment says about
// the allocation, where each task of a step goes (Slurm's block
// distribution over the job's nodes), each task's variables, and the exit
// code srun returns.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "util/status.h"

namespace trainyard::ty {

// The allocation as the agent described it in the job's environment.
struct StepEnv {
  uint64_t job_id = 0;
  uint32_t job_ntasks = 1;              // SLURM_NTASKS
  uint32_t num_nodes = 1;               // SLURM_JOB_NUM_NODES
  uint32_t node_id = 0;                 // SLURM_NODEID: this node's rank
  std::optional<uint32_t> tasks_per_node;  // SLURM_NTASKS_PER_NODE, when --ntasks-per-node was given
  std::string tmpdir;                   // SLURM_TMPDIR (the step counter lives there)
  uint32_t step_id = 0;
  uint32_t step_ntasks = 1;
};

// Reads the variables above; FailedPrecondition "not inside a Trainyard
// job" without TY_JOB_ID, InvalidArgument naming a variable that is not a
// number.
Result<StepEnv> read_step_env();

struct TaskPlacement {
  uint32_t procid = 0;   // SLURM_PROCID: the task's rank in the step
  uint32_t localid = 0;  // SLURM_LOCALID: its rank on its node
  uint32_t node_id = 0;  // the node (rank in the job) it runs on
};

// Slurm's default (block) distribution: with --ntasks-per-node that many
// per node, else as even as possible with the first nodes taking one more;
// consecutive ranks share a node. Fewer tasks than nodes: one on each of
// the first nodes.
std::vector<TaskPlacement> place_tasks(uint32_t ntasks, const StepEnv& env);

// The variables a task gets on top of srun's own environment.
std::vector<std::pair<std::string, std::string>> task_variables(const StepEnv& env, const TaskPlacement& p);

// The step's number in this job on this node: 0, 1, 2... for successive
// sruns (a counter file in SLURM_TMPDIR, taken under a lock).
uint32_t next_step_id(const StepEnv& env);

// srun's exit code: the first task that failed decides (its exit code, or
// 128+N when signal N killed it); 0 when every task succeeded.
class StepOutcome {
 public:
  void note(uint32_t procid, int exit_code, int signal);
  int exit_code() const { return code_; }

 private:
  int code_ = 0;
};

}  // namespace trainyard::ty

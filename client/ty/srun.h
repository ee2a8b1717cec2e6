// srun and salloc as names of the ty binary, and `ty run`. Inside a job
// (TY_JOB_ID set by the agent) srun starts the step's tasks (srun_step.cc);
// outside one it asks for an allocation that runs srun in it and follows it
// (srun.cc); with --pty, and salloc, the job gets a terminal (pty_session.cc).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "commands.h"

namespace trainyard::ty {

// What srun inside a job was asked to start.
struct StepRequest {
  uint32_t ntasks = 0;                // 0: the job's SLURM_NTASKS
  bool label = false;                 // prefix each output line with "TASK: "
  std::vector<std::string> command;
};

// Reads srun's options as given inside a job: -n/--ntasks, -l/--label,
// options that only shape an allocation (accepted, ignored within one);
// InvalidArgument names an unknown option or a bad value.
Result<StepRequest> parse_step_request(const std::vector<std::string>& args);

// Starts the step's tasks (this node's by fork; the other nodes' through
// their agents), relays their output, forwards SIGINT/SIGTERM, and returns
// srun's exit code: the first nonzero task exit code, 128+N for a task
// killed by signal N, 0 when all succeeded.
int run_step(const StepRequest& step);

// `srun ARGS` (inside or outside a job), `salloc ARGS`, `ty run ARGS`.
int run_srun(Context& ctx, const std::vector<std::string>& args, const char* self);
int run_salloc(Context& ctx, const std::vector<std::string>& args);

// Follows a job that holds a terminal (spec.pty): relays this terminal (in
// raw mode) to the job's pty through its node's agent until the job ends;
// returns the job's exit code (128+N when killed by signal N).
int run_terminal(Context& ctx, uint64_t job_id);

}  // namespace trainyard::ty

// sbatch, squeue, scancel, sacct and sinfo as names of the ty binary
// (argv[0]): Slurm's common options and output formats over the client
// library. docs/slurm.md lists what each accepts.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "commands.h"

namespace trainyard::ty {

// Whether `name` (argv[0]'s base name) is one of the Slurm commands.
bool is_slurm_command(std::string_view name);

// Runs Slurm command `name` with `args` (argv[1...]); returns the exit code.
int run_slurm_command(std::string_view name, Context& ctx, const std::vector<std::string>& args);

}  // namespace trainyard::ty

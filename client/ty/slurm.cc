// The commands Slurm users' fingers and scripts know, as names of the ty
// binary (sbatch, squeue, scancel, sacct, sinfo, scontrol): each a thin layer over the
// client library that reads Slurm's common options and prints Slurm's
// formats closely enough for the usual one-liners (`sbatch --parsable`,
// `squeue -h -o %i -u $USER | wc -l`, `sacct -P -n --format=...`).
#include "slurm.h"

#include <iostream>

#include "slurm_shim.h"

namespace trainyard::ty {

bool is_slurm_command(std::string_view name) {
  return name == "sbatch" || name == "squeue" || name == "scancel" || name == "sacct" || name == "sinfo" ||
         name == "scontrol";
}

int run_slurm_command(std::string_view name, Context& ctx, const std::vector<std::string>& args) {
  if (name == "sbatch") return slurm::sbatch(ctx, args);
  if (name == "squeue") return slurm::squeue(ctx, args);
  if (name == "scancel") return slurm::scancel(ctx, args);
  if (name == "sacct") return slurm::sacct(ctx, args);
  if (name == "sinfo") return slurm::sinfo(ctx, args);
  if (name == "scontrol") return slurm::scontrol(ctx, args);
  std::cerr << "ty: " << name << " is not a Slurm command Trainyard provides\n";
  return kExitUsage;
}

}  // namespace trainyard::ty

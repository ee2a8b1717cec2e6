// srun inside jobs: the agent keeps a directory holding `srun` and
// `scontrol`, links to the `ty` installed beside the agent, and puts it first
// on every job's PATH (a job needs no Slurm commands installed site-wide to
// call srun or `scontrol show hostnames`).
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace trainyard::agent {

// Makes `<data>/bin/srun` and `<data>/bin/scontrol` -> `<dir of agent_exe>/ty` (replacing a stale
// link); returns `<data>/bin`, or "" (logged once) when there is no ty
// beside the agent or the link cannot be made.
std::string prepare_srun_dir(const std::string& data, const std::string& agent_exe);

// `dir` in front of the PATH in `env` (PATH=/usr/bin:/bin when it has none).
void put_first_on_path(std::vector<std::pair<std::string, std::string>>& env, const std::string& dir);

}  // namespace trainyard::agent

// Whom a job runs as. An agent running as root runs each job as its
// submitting user (uid, gid, supplementary groups), as slurmd does, with
// agent.run_as = "submitter" (the default); a user with no account on the
// node is refused. An agent that is not root, or agent.run_as = "agent",
// runs jobs as the agent's own user.
#pragma once

#include <string>
#include <vector>

#include "supervisor.h"
#include "util/status.h"

namespace trainyard::agent {

// A batch script's copy in the run directory (JobSpec.script), named as
// slurmd names its spool copy.
inline constexpr const char* kBatchScriptName = "slurm_script";

struct JobUser {
  bool as_user = false;  // false: the agent's own ids
  std::string name, home, shell;
  uint32_t uid = 0, gid = 0;
  std::vector<uint32_t> groups;
};

// The user `name` of this node's passwd and group databases.
// FailedPrecondition names the user and the node when there is none.
Result<JobUser> find_job_user(const std::string& name, const std::string& node, bool run_as_submitter);

// Gives the run directory (and what the agent made in it for the job) to
// the user, mode 0700: other users cannot read a job's logs or scratch.
Status give_run_dir(const std::string& dir, const JobUser& user);

// The launch's ids and the environment a login would give (HOME, USER, LOGNAME).
void apply_job_user(const JobUser& user, LaunchSpec& spec);

}  // namespace trainyard::agent

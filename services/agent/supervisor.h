// The per-run supervisor (like containerd-shim or slurmstepd): a re-exec of
// trainyard-agent in a hidden mode, in its own session, that starts the job
// in its own process group (and cgroup), waits for it and writes its exit
// status into the run directory. It outlives agent restarts, so a restarted
// agent finds its runs again or learns how they ended.
//
// Files in a run directory:
//   launch.json      what to run (written by the agent before the supervisor starts)
//   supervisor.lock  flock'd by the live supervisor for its whole life
//   job.json         {pid, start_ns, supervisor_pid}: the job started
//   exit.json        {exit_code, signal, end_ns}: the job ended (atomic rename)
// Signals to the supervisor: SIGTERM -> SIGTERM to the job's process group;
// SIGUSR1 -> SIGKILL to the group (and its cgroup).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "util/status.h"

namespace trainyard::agent {

struct LaunchSpec {
  uint64_t lease_id = 0;
  std::vector<std::string> argv;
  std::vector<std::pair<std::string, std::string>> env;
  std::string workdir;
  std::string stdout_path;
  std::string stderr_path;
  std::string cgroup;  // empty: none
};

struct JobStarted {
  int pid = 0;
  int64_t start_ns = 0;
  int supervisor_pid = 0;
};

struct JobExit {
  int exit_code = 0;
  int signal = 0;
  int64_t end_ns = 0;
};

Status write_launch_spec(const std::string& run_dir, const LaunchSpec& spec);
std::optional<JobStarted> read_job_started(const std::string& run_dir);
std::optional<JobExit> read_job_exit(const std::string& run_dir);
// True while a supervisor holds the run directory's lock.
bool supervisor_alive(const std::string& run_dir);

// Forks and execs `self_exe --supervise RUN_DIR NOTIFY_FD` in a new session.
// `notify_fd` is the write end of the agent's notification pipe (lines
// "S <lease>" and "E <lease>"); -1 for none. Returns the supervisor's pid.
Result<int> start_supervisor(const std::string& self_exe, const std::string& run_dir, int notify_fd);

// The hidden mode's body: returns the supervisor's exit status.
int supervise_main(const std::string& run_dir, int notify_fd);

}  // namespace trainyard::agent

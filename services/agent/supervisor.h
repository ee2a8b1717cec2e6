// The per-run supervisor (like containerd-shim or slurmstepd): a re-exec of
// trainyard-agent in a hidden mode, in its own session, that starts the job
// in its own process group (and cgroup), waits for it, kills whatever the
// job left behind and records how it ended. It outlives agent restarts, so
// a restarted agent finds its runs again or learns how they ended.
//
// The run's STATE lives in a state directory of its own, under the agent's
// data directory (mode 0700), never in the run directory the job writes
// (logs, metrics file) and never named in the job's environment:
//   launch.json      what to run (written by the agent before the supervisor starts)
//   supervisor.lock  flock'd by the live supervisor until the job's whole tree is gone
//   supervisor.log   the supervisor's own messages
//   job.json         {pid, start_ns, supervisor_pid}: the job started
//   exit.json        {exit_code, signal, end_ns}: the job ended and nothing of it is left (atomic rename)
//   run_dir.id       "dev ino" of the run directory the agent created (so a restart can tell it is its own)
// The agent that started the supervisor learns both facts through its
// notify pipe ("S <lease> <pid> <start_ns>", "E <lease> <exit_code>
// <signal> <end_ns>"); the files are for an agent that restarted.
// The supervisor also sends sbatch's --signal itself, at its time after the
// start (launch.json's warn_signal), so it arrives when the agent is down.
// Signals to the supervisor: SIGTERM -> SIGTERM to every process of the job,
// and SIGKILL of them all after launch.json's max_grace_s unless it ends;
// SIGUSR1 -> SIGKILL to every process of the job (and its cgroup).
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
  std::string run_dir;      // logs fall back here when their path cannot be opened safely
  std::string stdout_path;
  std::string stderr_path;
  bool truncate_logs = false;  // empty stdout/stderr files first (sbatch's --open-mode=truncate)
  std::string cgroup;       // empty: none
  uint32_t max_grace_s = 300;  // SIGTERM is followed by SIGKILL after this, even without the agent
  // Run as this Unix user (as slurmd does), when the agent is root: the
  // logs are opened and the job runs with these ids; otherwise the agent's.
  bool as_user = false;
  uint32_t uid = 0, gid = 0;
  std::vector<uint32_t> groups;  // supplementary groups
  bool pty = false;         // the job's stdin/stdout/stderr and controlling terminal: the pty slave (fd 4)
  // sbatch's --signal: `warn_signal` this long after the job starts (its
  // time limit less the warning), to every process of the job, or with
  // warn_batch_only to the batch shell alone; 0: none.
  int warn_signal = 0;
  uint64_t warn_after_s = 0;
  bool warn_batch_only = false;
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

Status write_launch_spec(const std::string& state_dir, const LaunchSpec& spec);
std::optional<JobStarted> read_job_started(const std::string& state_dir);
std::optional<JobExit> read_job_exit(const std::string& state_dir);
// True while a supervisor holds the state directory's lock (until the job's
// whole process tree is gone).
bool supervisor_alive(const std::string& state_dir);

// A line of the notify pipe, parsed ("S ..." or "E ..."); nullopt when malformed.
struct Notice {
  char kind = 0;  // 'S' or 'E'
  uint64_t lease = 0;
  std::optional<JobStarted> started;
  std::optional<JobExit> exit;
};
std::optional<Notice> parse_notice(const std::string& line);

// Forks and execs `self_exe --supervise STATE_DIR NOTIFY_FD` in a new session.
// `notify_fd` is the write end of the agent's notification pipe; -1 for
// none. `tty_fd` (-1: none) is a pseudo-terminal's slave, handed to the
// supervisor as its fd 4 for a job whose launch spec says `pty`. Returns
// the supervisor's pid.
Result<int> start_supervisor(const std::string& self_exe, const std::string& state_dir, int notify_fd,
                             int tty_fd = -1);

// The hidden mode's body: returns the supervisor's exit status.
int supervise_main(const std::string& state_dir, int notify_fd);

}  // namespace trainyard::agent

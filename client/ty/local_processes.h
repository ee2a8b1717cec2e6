// The processes of `ty local`: reading /proc to tell whether a pid is still
// the service (or job) it was, starting a service detached from ty, and
// stopping a set of them (SIGTERM, a grace period, then SIGKILL).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "util/status.h"

namespace trainyard::ty {

// The whole file; "" when it cannot be read.
std::string read_text(const std::string& path);

// The last `lines` lines of a file, each indented by four spaces.
std::string tail_of(const std::string& path, size_t lines);

// True while `pid` runs (not a zombie) and its command line holds every
// one of `marks`: a recycled pid is not taken for ours.
bool alive(pid_t pid, const std::vector<std::string>& marks);

// Processes of process group `pgid` that are still running.
std::vector<pid_t> group_members(pid_t pgid);

// The pid written in a pid file; 0 when there is none.
pid_t read_pid(const std::string& path);

// Where a service's binary is: next to ty itself, else on PATH.
std::optional<std::string> find_binary(const std::string& name);
// deploy/drivers/local as the build and an install name it (next to ty).
inline constexpr const char* kLocalCloudDriver = "trainyard-cloud-local";

// Starts `argv` detached: its own session, stdin from /dev/null, stdout and
// stderr appended to `log`, no descriptor of ours. Returns its pid.
Result<pid_t> spawn_detached(const std::vector<std::string>& argv, const std::string& log);

// A process to stop, with the marks its command line must hold (alive()).
using MarkedPid = std::pair<pid_t, std::vector<std::string>>;

// Stops the given processes: SIGTERM, up to `grace`, then SIGKILL.
void stop_pids(const std::vector<MarkedPid>& procs, std::chrono::milliseconds grace);

}  // namespace trainyard::ty

// The job's whole process tree, as seen from its supervisor. The supervisor
// is a child subreaper (PR_SET_CHILD_SUBREAPER), so every descendant of the
// job, including one that called setsid() and double-forked, has a parent
// chain in /proc that leads back to it. That is how a run ends with nothing
// left behind when the host has no cgroups (and as a backstop when it has).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <unordered_set>
#include <vector>

namespace trainyard::agent {

// Live (not zombie) processes whose /proc PPid chain leads to `ancestor`,
// `ancestor` itself excluded.
std::vector<pid_t> descendants_of(pid_t ancestor);

// As descendants_of, but a process at or below a pid of `barriers` is left out.
std::vector<pid_t> descendants_of(pid_t ancestor, const std::unordered_set<pid_t>& barriers);

// Sends `sig` to every live descendant of the calling process; returns how
// many it signalled.
size_t signal_descendants(int sig);

// Called with each child reaped while killing: (pid, wait status).
using OnReaped = std::function<void(pid_t, int)>;

// SIGKILLs every descendant of the calling process, reaps what comes back
// to it, and repeats until it has no child left (then no descendant is
// left either) or `timeout` passes. True when none is left.
bool kill_descendants(std::chrono::milliseconds timeout, const OnReaped& on_reaped);

// One round for the agent (itself a child subreaper): SIGKILLs every live
// descendant that is not one of `keep` (its live supervisors) nor below one,
// i.e. what was left of a job whose supervisor died. Returns how many.
size_t kill_descendants_except(const std::unordered_set<pid_t>& keep);

}  // namespace trainyard::agent

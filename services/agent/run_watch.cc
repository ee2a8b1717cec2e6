// Watching a started run: the supervisor's notices, its records after a
// restart, the time limit and the kill deadline, and when a run counts as
// ended (the supervisor said so and released its lock: the tree is gone).
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <thread>
#include <unordered_set>

#include <spdlog/spdlog.h>

#include "process_tree.h"
#include "shell.h"
#include "supervisor.h"

namespace trainyard::agent {
namespace {

// True when `pid` runs `... --supervise STATE_DIR ...` (its /proc cmdline).
bool is_supervisor_of(int pid, const std::string& state_dir) {
  int fd = ::open(("/proc/" + std::to_string(pid) + "/cmdline").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  std::string cmd(8192, '\0');
  ssize_t n = ::read(fd, cmd.data(), cmd.size());
  ::close(fd);
  cmd.resize(n > 0 ? static_cast<size_t>(n) : 0);
  std::string want = std::string("--supervise") + '\0' + state_dir + '\0';
  return cmd.find(want) != std::string::npos;
}

}  // namespace

void AgentShell::on_notify() {
  char buf[4096];
  while (true) {
    ssize_t n = ::read(notify_read_, buf, sizeof buf);
    if (n <= 0) break;
    notify_buf_.append(buf, static_cast<size_t>(n));
  }
  int64_t now = clock_.now_ns();
  size_t start = 0;
  for (auto nl = notify_buf_.find('\n'); nl != std::string::npos; nl = notify_buf_.find('\n', start)) {
    auto notice = parse_notice(notify_buf_.substr(start, nl - start));
    start = nl + 1;
    if (!notice) continue;
    Run* run = find(notice->lease);
    if (!run || run->rec.finished() || run->rec.simulated) continue;
    if (notice->started && run->rec.start_ns == 0) {
      JobStarted js = *notice->started;
      js.supervisor_pid = run->rec.supervisor_pid;
      mark_started(*run, js);
    }
    if (notice->exit) run->notified_exit = notice->exit;
    check_real_run(*run, now);
  }
  notify_buf_.erase(0, start);
}

void AgentShell::reap_children() {
  reap_pass();
  if (orphans_seen_ && options_.simulate == 0) {
    orphans_seen_ = false;
    kill_orphans();
  }
}

void AgentShell::reap_pass() {
  int st = 0;
  for (pid_t pid; (pid = waitpid(-1, &st, WNOHANG)) > 0;) {
    bool supervisor = false;
    for (auto& [lease, run] : runs_) {
      if (run->our_child && run->rec.supervisor_pid == pid) {
        run->our_child = false;
        supervisor = true;
      }
    }
    orphans_seen_ |= !supervisor;
  }
}

void AgentShell::kill_orphans() {
  std::unordered_set<pid_t> keep;
  for (auto& [lease, run] : runs_) {
    if (run->our_child && run->rec.supervisor_pid > 1) keep.insert(run->rec.supervisor_pid);
  }
  // Bounded, so a fork bomb cannot hold the loop: the next check carries on.
  int64_t until = monotonic_ms() + 500;
  size_t killed = 0;
  for (size_t n; (n = kill_descendants_except(keep)) > 0 && monotonic_ms() < until;) {
    killed += n;
    reap_pass();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  orphans_seen_ = false;
  if (killed > 0) spdlog::warn("killed {} processes left by jobs whose supervisor died", killed);
}

// A run ends when its supervisor says so AND no longer holds the state
// lock (it releases it once the job's whole tree is gone). A run started by
// this process learns start and end through the notify pipe only; one
// adopted after a restart reads the supervisor's records.
void AgentShell::check_real_run(Run& run, int64_t now) {
  auto& r = run.rec;
  if (r.state == RunState::kPending || r.finished()) return;
  std::string state = state_dir_for(r);
  if (r.start_ns == 0 && !run.launched_here) {
    if (auto js = read_job_started(state)) mark_started(run, *js);
  }
  if (!supervisor_alive(state)) {
    std::optional<JobExit> ex = run.launched_here ? run.notified_exit : read_job_exit(state);
    if (ex) {
      finish_from_exit(run, *ex, now);
      return;
    }
    if (!run.our_child) {
      r.stop_reason = StopReason::kLost;
      if (!r.cgroup.empty()) Cgroups::remove(r.cgroup);  // what can still be reached of the job
      kill_orphans();
      finish(run, -1, 0, now, "the run's supervisor died without reporting how the job ended");
      return;
    }
  }
  if (r.state == RunState::kRunning && r.deadline_ns > 0 && now >= r.deadline_ns) {
    stop_run(run, StopReason::kTimeLimit, "time limit of " + std::to_string(r.time_limit_s) + " s reached",
             r.grace_s);
  }
  if (r.state == RunState::kStopping && now >= r.kill_at_ns && r.supervisor_pid > 1 &&
      monotonic_ms() - run.last_kill_ms >= 1000) {
    ::kill(r.supervisor_pid, SIGUSR1);
    run.last_kill_ms = monotonic_ms();
  }
}

// The end time is the supervisor's, bounded by what the agent saw itself:
// not before the start, not after now.
void AgentShell::finish_from_exit(Run& run, const JobExit& ex, int64_t now) {
  auto& r = run.rec;
  int64_t from = r.start_ns > 0 ? r.start_ns : r.granted_ns;
  int64_t end_ns = std::clamp(ex.end_ns, std::min(from, now), now);
  std::string reason = r.stop_reason != StopReason::kNone ? r.stop_message : exit_reason(ex.exit_code, ex.signal);
  finish(run, ex.exit_code, ex.signal, end_ns, reason);
}

void AgentShell::mark_started(Run& run, const JobStarted& js) {
  auto& r = run.rec;
  int64_t now = clock_.now_ns();
  r.job_pid = js.pid;
  // Not before the grant, not after now, whatever a record says.
  r.start_ns = js.start_ns > 0 ? std::clamp(js.start_ns, std::min(r.granted_ns, now), now) : now;
  // Signalled later, so never taken from a record on trust: only a process
  // that really is this run's supervisor (a forged pid 1 must not get SIGTERM).
  if (r.supervisor_pid <= 0 && js.supervisor_pid > 1 && is_supervisor_of(js.supervisor_pid, state_dir_for(r))) {
    r.supervisor_pid = js.supervisor_pid;
  }
  if (js.pid <= 1) r.job_pid = 0;
  r.usage_until_ns = r.start_ns;
  if (r.time_limit_s > 0) r.deadline_ns = add_ns(r.start_ns, seconds_to_ns(r.time_limit_s));
  publish_started(run);
  save(run);
  spdlog::info("job {} attempt {} started (lease {}, pid {})", r.job_id, r.attempt, r.lease_id, r.job_pid);
}

void AgentShell::check_runs() {
  on_notify();  // an end already in the pipe is seen before its reaped supervisor counts as died
  int64_t now = clock_.now_ns();
  for (auto& [lease, run] : runs_) {
    auto& r = run->rec;
    if (r.finished()) continue;
    if (!run->launch_error.empty()) {
      spdlog::error("job {} (lease {}) could not start: {}", r.job_id, r.lease_id, run->launch_error);
      if (r.run_dir.empty()) r.metrics_done = true;  // no metrics file to follow: prunable later
      finish(*run, 127, 0, now, "could not start: " + run->launch_error);
      continue;
    }
    if (!r.simulated) {
      check_real_run(*run, now);
      continue;
    }
    if (r.deadline_ns > 0 && r.deadline_ns < r.sim_end_ns && now >= r.deadline_ns) {
      r.stop_reason = StopReason::kTimeLimit;
      finish(*run, -1, SIGKILL, r.deadline_ns, "time limit of " + std::to_string(r.time_limit_s) + " s reached");
    } else if (now >= r.sim_end_ns) {
      finish(*run, r.sim_exit_code, 0, r.sim_end_ns, exit_reason(r.sim_exit_code, 0));
    }
  }
}

}  // namespace trainyard::agent

// srun inside a job: starts the step's tasks on this node as children, each
// with its SLURM_PROCID / SLURM_LOCALID, relays their stdout and stderr
// (whole lines, "N: " in front with --label), forwards SIGINT and SIGTERM to
// them, and exits as srun does.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "srun.h"
#include "srun_tasks.h"

namespace trainyard::ty {
namespace {

std::atomic<int> g_forward{0};  // a signal to pass on to the tasks

void on_signal(int sig) { g_forward = sig; }

// Sends `data` to `fd` whole (the output may be a pipe that is slow to drain).
void write_all(int fd, const char* data, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, data, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    data += w;
    n -= static_cast<size_t>(w);
  }
}

struct Stream {
  int fd = -1;        // the read end of the task's pipe; -1 once closed
  int out = 1;        // where it goes: 1 or 2
  std::string line;   // with --label: the part of a line not yet printed
};

struct LocalTask {
  uint32_t procid = 0;
  pid_t pid = -1;
  bool ended = false;
  Stream streams[2];
};

// Prints what a task wrote: as it comes, or by whole lines with a label.
void relay(Stream& s, uint32_t procid, bool label, const char* data, size_t n) {
  if (!label) {
    write_all(s.out, data, n);
    return;
  }
  s.line.append(data, n);
  size_t start = 0;
  for (auto nl = s.line.find('\n'); nl != std::string::npos; nl = s.line.find('\n', start)) {
    std::string out = std::to_string(procid) + ": " + s.line.substr(start, nl - start + 1);
    write_all(s.out, out.data(), out.size());
    start = nl + 1;
  }
  s.line.erase(0, start);
}

void flush_partial(Stream& s, uint32_t procid, bool label) {
  if (label && !s.line.empty()) {
    std::string out = std::to_string(procid) + ": " + s.line + "\n";
    write_all(s.out, out.data(), out.size());
    s.line.clear();
  }
}

// Forks one task with its pipes; the child gets the task's variables.
Status start_local(LocalTask& t, const TaskPlacement& p, const StepEnv& env, const std::vector<std::string>& cmd) {
  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return Status::internal(std::string("pipe: ") + std::strerror(errno));
  if (::pipe2(err, O_CLOEXEC) != 0) {
    ::close(out[0]);
    ::close(out[1]);
    return Status::internal(std::string("pipe: ") + std::strerror(errno));
  }
  auto vars = task_variables(env, p);
  std::vector<char*> argv;
  for (auto& a : cmd) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    for (auto& [k, v] : vars) ::setenv(k.c_str(), v.c_str(), 1);
    ::signal(SIGINT, SIG_DFL);
    ::signal(SIGTERM, SIG_DFL);
    ::execvp(argv[0], argv.data());
    std::string msg = "srun: error: task " + std::to_string(p.procid) + ": cannot run '" + cmd[0] +
                      "': " + std::strerror(errno) + "\n";
    write_all(2, msg.data(), msg.size());
    _exit(errno == ENOENT ? 127 : 126);
  }
  ::close(out[1]);
  ::close(err[1]);
  if (pid < 0) {
    ::close(out[0]);
    ::close(err[0]);
    return Status::internal(std::string("fork: ") + std::strerror(errno));
  }
  t.procid = p.procid;
  t.pid = pid;
  t.streams[0] = Stream{out[0], 1, {}};
  t.streams[1] = Stream{err[0], 2, {}};
  return Status::success();
}

// Reads what is ready (waiting at most `wait_ms`); closes ended pipes.
void pump(std::vector<LocalTask>& tasks, bool label, int wait_ms) {
  std::vector<pollfd> fds;
  std::vector<std::pair<LocalTask*, Stream*>> who;
  for (auto& t : tasks) {
    for (auto& s : t.streams) {
      if (s.fd < 0) continue;
      fds.push_back({s.fd, POLLIN, 0});
      who.emplace_back(&t, &s);
    }
  }
  if (fds.empty()) {
    // Only exits are awaited now: checked often, so a step of quick tasks ends quickly.
    if (wait_ms > 0) ::poll(nullptr, 0, std::min(wait_ms, 2));
    return;
  }
  if (::poll(fds.data(), fds.size(), wait_ms) <= 0) return;
  char buf[65536];
  for (size_t i = 0; i < fds.size(); ++i) {
    if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    auto [t, s] = who[i];
    ssize_t n = ::read(s->fd, buf, sizeof buf);
    if (n > 0) {
      relay(*s, t->procid, label, buf, static_cast<size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      flush_partial(*s, t->procid, label);
      ::close(s->fd);
      s->fd = -1;
    }
  }
}

// Output still in the pipes once the tasks ended; a descendant of a task
// that keeps a pipe open is not waited for beyond a second.
void drain(std::vector<LocalTask>& tasks, bool label) {
  auto open = [&] {
    for (auto& t : tasks) {
      for (auto& s : t.streams) {
        if (s.fd >= 0) return true;
      }
    }
    return false;
  };
  for (int i = 0; i < 20 && open(); ++i) pump(tasks, label, 50);
  for (auto& t : tasks) {
    for (auto& s : t.streams) {
      flush_partial(s, t.procid, label);
      if (s.fd >= 0) ::close(s.fd);
      s.fd = -1;
    }
  }
}

}  // namespace

int run_step(const StepRequest& step) {
  auto env = read_step_env();
  if (!env) {
    std::cerr << "srun: error: " << env.status().message() << "\n";
    return 1;
  }
  uint32_t ntasks = step.ntasks ? step.ntasks : env->job_ntasks;
  env->step_ntasks = ntasks;
  env->step_id = next_step_id(*env);
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);

  // Every node of the job runs the script, so each node's srun starts the
  // tasks placed on its node: together, each task once.
  StepOutcome outcome;
  std::vector<LocalTask> local;
  for (auto& p : place_tasks(ntasks, *env)) {
    if (p.node_id != env->node_id) continue;
    local.emplace_back();
    if (auto s = start_local(local.back(), p, *env, step.command); !s) {
      std::cerr << "srun: error: task " << p.procid << ": " << s.message() << "\n";
      local.pop_back();
      outcome.note(p.procid, 1, 0);
    }
  }
  size_t running = local.size();
  while (running > 0) {
    if (int sig = g_forward.exchange(0)) {
      for (auto& t : local) {
        if (!t.ended) ::kill(t.pid, sig);
      }
    }
    pump(local, step.label, 50);
    for (auto& t : local) {
      int st = 0;
      if (t.ended || ::waitpid(t.pid, &st, WNOHANG) != t.pid) continue;
      t.ended = true;
      --running;
      outcome.note(t.procid, WIFEXITED(st) ? WEXITSTATUS(st) : 0, WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    }
  }
  drain(local, step.label);
  return outcome.exit_code();
}

}  // namespace trainyard::ty

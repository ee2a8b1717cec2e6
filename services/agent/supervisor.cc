#include "supervisor.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "host.h"

namespace trainyard::agent {
namespace {

using nlohmann::json;

int64_t wall_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Written to a .tmp, fsync'd, then renamed: a reader sees all of it or nothing,
// even after a power cut.
bool write_atomic(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ok = ::fsync(fd) == 0 && ok;
  ::close(fd);
  return ok && ::rename(tmp.c_str(), path.c_str()) == 0;
}

std::optional<json> read_json_file(const std::string& path) {
  std::ifstream f(path);
  if (!f) return std::nullopt;
  std::stringstream ss;
  ss << f.rdbuf();
  json j = json::parse(ss.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  return j;
}

void say(int fd, const std::string& text) {
  if (fd >= 0) (void)!::write(fd, text.data(), text.size());
}

bool exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

}  // namespace

Status write_launch_spec(const std::string& run_dir, const LaunchSpec& spec) {
  json env = json::array();
  for (auto& [k, v] : spec.env) env.push_back(json::array({k, v}));
  json j{{"lease", spec.lease_id},      {"argv", spec.argv},     {"env", env},
         {"workdir", spec.workdir},     {"stdout", spec.stdout_path}, {"stderr", spec.stderr_path},
         {"cgroup", spec.cgroup}};
  if (!write_atomic(run_dir + "/launch.json", j.dump())) {
    return Status::internal("cannot write " + run_dir + "/launch.json: " + std::strerror(errno));
  }
  return Status::ok();
}

std::optional<JobStarted> read_job_started(const std::string& run_dir) {
  auto j = read_json_file(run_dir + "/job.json");
  if (!j) return std::nullopt;
  return JobStarted{j->value("pid", 0), j->value("start_ns", int64_t{0}), j->value("supervisor_pid", 0)};
}

std::optional<JobExit> read_job_exit(const std::string& run_dir) {
  auto j = read_json_file(run_dir + "/exit.json");
  if (!j) return std::nullopt;
  return JobExit{j->value("exit_code", 0), j->value("signal", 0), j->value("end_ns", int64_t{0})};
}

bool supervisor_alive(const std::string& run_dir) {
  int fd = ::open((run_dir + "/supervisor.lock").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool held = ::flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  ::close(fd);  // releases the lock if we took it
  return held;
}

Result<int> start_supervisor(const std::string& self_exe, const std::string& run_dir, int notify_fd) {
  // Everything the child needs is built before fork: the agent has threads,
  // so the child may only make async-signal-safe calls until exec.
  std::string fd_arg = notify_fd >= 0 ? "3" : "-1";
  std::string log = run_dir + "/supervisor.log";
  // The small supervisor beside the agent when installed (fast to start),
  // else the agent itself in its hidden supervise mode.
  std::string program = self_exe;
  auto slash = self_exe.rfind('/');
  if (slash != std::string::npos) {
    std::string small = self_exe.substr(0, slash + 1) + "trainyard-supervise";
    if (::access(small.c_str(), X_OK) == 0) program = small;
  }
  std::vector<std::string> args = {program, "--supervise", run_dir, fd_arg};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) return Status::internal(std::string("fork failed: ") + std::strerror(errno));
  if (pid == 0) {
    setsid();
    if (notify_fd == 3) {
      fcntl(3, F_SETFD, 0);
    } else if (notify_fd >= 0) {
      dup2(notify_fd, 3);
    }
    int in = ::open("/dev/null", O_RDONLY);
    if (in >= 0) dup2(in, 0);
    int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (out >= 0) {
      dup2(out, 1);
      dup2(out, 2);
    }
    close_range(notify_fd >= 0 ? 4 : 3, ~0u, 0);
    // Blocked across exec: a revoke that arrives while the supervisor is
    // still loading stays pending for it instead of killing it.
    sigset_t mask;
    sigemptyset(&mask);
    for (int s : {SIGCHLD, SIGTERM, SIGUSR1, SIGINT, SIGHUP, SIGQUIT}) sigaddset(&mask, s);
    sigprocmask(SIG_SETMASK, &mask, nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

int supervise_main(const std::string& run_dir, int notify_fd) {
  signal(SIGPIPE, SIG_IGN);
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGCHLD, SIGTERM, SIGUSR1, SIGINT, SIGHUP, SIGQUIT}) sigaddset(&set, s);
  sigprocmask(SIG_BLOCK, &set, nullptr);
  // Orphans of the job come back to us, so we can reap them.
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  if (notify_fd >= 0) fcntl(notify_fd, F_SETFD, FD_CLOEXEC);

  int lock = ::open((run_dir + "/supervisor.lock").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
  if (lock < 0 || ::flock(lock, LOCK_EX | LOCK_NB) != 0) return 0;  // another supervisor has this run
  if (exists(run_dir + "/exit.json")) return 0;                    // it ran already
  if (exists(run_dir + "/job.json")) {
    std::fprintf(stderr, "a previous supervisor started this job and died; it cannot be waited for\n");
    return 3;
  }
  auto j = read_json_file(run_dir + "/launch.json");
  std::vector<std::string> args, envs;
  std::string workdir, out_path, err_path, cgroup;
  uint64_t lease = 0;
  if (j) {
    try {
      lease = j->value("lease", uint64_t{0});
      args = j->at("argv").get<std::vector<std::string>>();
      for (auto& kv : j->at("env")) envs.push_back(kv[0].get<std::string>() + "=" + kv[1].get<std::string>());
      workdir = j->value("workdir", "");
      out_path = j->value("stdout", run_dir + "/stdout");
      err_path = j->value("stderr", run_dir + "/stderr");
      cgroup = j->value("cgroup", "");
    } catch (const json::exception&) {
      args.clear();
    }
  }
  auto open_log = [&](const std::string& path, const char* fallback) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
      std::fprintf(stderr, "cannot open %s: %s; using the run directory\n", path.c_str(), std::strerror(errno));
      fd = ::open((run_dir + "/" + fallback).c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    }
    return fd;
  };
  int out = open_log(out_path.empty() ? run_dir + "/stdout" : out_path, "stdout");
  int err = open_log(err_path.empty() ? run_dir + "/stderr" : err_path, "stderr");
  if (args.empty()) {
    say(err, "trainyard: the run's launch.json is missing or unreadable in " + run_dir + "\n");
    write_atomic(run_dir + "/job.json", json{{"pid", 0}, {"start_ns", wall_ns()}, {"supervisor_pid", getpid()}}.dump());
    write_atomic(run_dir + "/exit.json", json{{"exit_code", 127}, {"signal", 0}, {"end_ns", wall_ns()}}.dump());
    say(notify_fd, "E " + std::to_string(lease) + "\n");
    return 0;
  }
  std::vector<char*> argv, envp;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : envs) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string procs = cgroup.empty() ? std::string() : cgroup + "/cgroup.procs";
  std::string cannot_cgroup = "trainyard: could not join the run's cgroup; running without its limits\n";
  std::string cannot_cd = "trainyard: cannot enter the working directory " + workdir + ": ";
  std::string cannot_exec = "trainyard: cannot run '" + args[0] + "': ";

  int64_t start_ns = wall_ns();
  pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    if (!procs.empty()) {
      int fd = ::open(procs.c_str(), O_WRONLY);
      if (fd < 0 || ::write(fd, "0", 1) != 1) say(err, cannot_cgroup);
      if (fd >= 0) ::close(fd);
    }
    int in = ::open("/dev/null", O_RDONLY);
    if (in >= 0) dup2(in, 0);
    if (out >= 0) dup2(out, 1);
    if (err >= 0) dup2(err, 2);
    if (!workdir.empty() && chdir(workdir.c_str()) != 0) {
      say(2, cannot_cd + std::strerror(errno) + "\n");
      _exit(127);
    }
    signal(SIGPIPE, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execvpe(argv[0], argv.data(), envp.data());
    say(2, cannot_exec + std::strerror(errno) + "\n");
    _exit(127);
  }
  if (pid < 0) {
    say(err, std::string("trainyard: fork failed: ") + std::strerror(errno) + "\n");
    write_atomic(run_dir + "/job.json", json{{"pid", 0}, {"start_ns", start_ns}, {"supervisor_pid", getpid()}}.dump());
    write_atomic(run_dir + "/exit.json", json{{"exit_code", 127}, {"signal", 0}, {"end_ns", wall_ns()}}.dump());
    say(notify_fd, "E " + std::to_string(lease) + "\n");
    return 0;
  }
  setpgid(pid, pid);  // also here: no window where a signal to the group misses the job
  write_atomic(run_dir + "/job.json", json{{"pid", pid}, {"start_ns", start_ns}, {"supervisor_pid", getpid()}}.dump());
  say(notify_fd, "S " + std::to_string(lease) + "\n");

  int status = 0;
  bool done = false;
  while (!done) {
    siginfo_t info;
    int sig = sigwaitinfo(&set, &info);
    if (sig == SIGCHLD) {
      int st = 0;
      for (pid_t w; (w = waitpid(-1, &st, WNOHANG)) > 0;) {
        if (w == pid) {
          status = st;
          done = true;
        }
      }
    } else if (sig == SIGTERM) {
      kill(-pid, SIGTERM);
    } else if (sig == SIGUSR1) {
      kill(-pid, SIGKILL);
      if (!cgroup.empty()) {
        int fd = ::open((cgroup + "/cgroup.kill").c_str(), O_WRONLY);
        if (fd >= 0) {
          (void)!::write(fd, "1", 1);
          ::close(fd);
        }
      }
    }
  }
  int64_t end_ns = wall_ns();
  // The job's leader is gone: nothing of it may outlive it.
  kill(-pid, SIGKILL);
  if (!cgroup.empty()) Cgroups::remove(cgroup);
  for (int i = 0; i < 50; ++i) {
    pid_t w = waitpid(-1, nullptr, WNOHANG);
    if (w < 0) break;  // no children left
    if (w == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  int exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  int signal_no = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  write_atomic(run_dir + "/exit.json", json{{"exit_code", exit_code}, {"signal", signal_no}, {"end_ns", end_ns}}.dump());
  say(notify_fd, "E " + std::to_string(lease) + "\n");
  if (out >= 0) ::close(out);
  if (err >= 0) ::close(err);
  return 0;
}

}  // namespace trainyard::agent

#include "supervisor.h"

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <algorithm>
#include <optional>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "host.h"
#include "job_files.h"
#include "process_tree.h"

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
  ::unlink(tmp.c_str());  // a fresh file, whatever was put there (a FIFO would block)
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ok = ::fsync(fd) == 0 && ok;
  ::close(fd);
  return ok && ::rename(tmp.c_str(), path.c_str()) == 0;
}

// Opened as a job-writable file would be: a FIFO or symlink put in the state
// directory (a job with the agent's uid can reach it) reads as absent.
std::optional<json> read_json_file(const std::string& path) {
  auto opened = open_job_file(path, O_RDONLY);
  if (!opened) return std::nullopt;
  int fd = *opened;
  std::string text;
  char buf[4096];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0 && text.size() < (16u << 20);) {
    text.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  json j = json::parse(text, nullptr, false);
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

Status write_launch_spec(const std::string& state_dir, const LaunchSpec& spec) {
  json env = json::array();
  for (auto& [k, v] : spec.env) env.push_back(json::array({k, v}));
  json j{{"lease", spec.lease_id},      {"argv", spec.argv},          {"env", env},
         {"workdir", spec.workdir},     {"stdout", spec.stdout_path}, {"stderr", spec.stderr_path},
         {"cgroup", spec.cgroup},       {"run_dir", spec.run_dir},    {"max_grace_s", spec.max_grace_s},
         {"truncate", spec.truncate_logs}, {"pty", spec.pty}};
  if (spec.warn_signal > 0) {
    j["warn"] = json{{"signal", spec.warn_signal}, {"after_s", spec.warn_after_s}, {"batch_only", spec.warn_batch_only}};
  }
  if (spec.as_user) j["user"] = json{{"uid", spec.uid}, {"gid", spec.gid}, {"groups", spec.groups}};
  if (!write_atomic(state_dir + "/launch.json", j.dump())) {
    return Status::internal("cannot write " + state_dir + "/launch.json: " + std::strerror(errno));
  }
  return Status::success();
}

// A record with a wrong type in a field reads as absent rather than throwing.
std::optional<JobStarted> read_job_started(const std::string& state_dir) {
  auto j = read_json_file(state_dir + "/job.json");
  if (!j) return std::nullopt;
  try {
    return JobStarted{j->value("pid", 0), j->value("start_ns", int64_t{0}), j->value("supervisor_pid", 0)};
  } catch (const json::exception&) {
    return std::nullopt;
  }
}

std::optional<JobExit> read_job_exit(const std::string& state_dir) {
  auto j = read_json_file(state_dir + "/exit.json");
  if (!j) return std::nullopt;
  try {
    return JobExit{j->value("exit_code", 0), j->value("signal", 0), j->value("end_ns", int64_t{0})};
  } catch (const json::exception&) {
    return std::nullopt;
  }
}

std::optional<Notice> parse_notice(const std::string& line) {
  std::istringstream is(line);
  Notice n;
  std::string kind;
  if (!(is >> kind >> n.lease) || kind.size() != 1 || (kind[0] != 'S' && kind[0] != 'E')) return std::nullopt;
  n.kind = kind[0];
  if (n.kind == 'S') {
    JobStarted js;
    if (is >> js.pid >> js.start_ns) n.started = js;
  } else {
    JobExit ex;
    if (is >> ex.exit_code >> ex.signal >> ex.end_ns) n.exit = ex;
  }
  return n;
}

bool supervisor_alive(const std::string& state_dir) {
  int fd = ::open((state_dir + "/supervisor.lock").c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) return false;
  bool held = ::flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  ::close(fd);  // releases the lock if we took it
  return held;
}

Result<int> start_supervisor(const std::string& self_exe, const std::string& state_dir, int notify_fd, int tty_fd) {
  // Everything the child needs is built before fork: the agent has threads,
  // so the child may only make async-signal-safe calls until exec.
  std::string fd_arg = notify_fd >= 0 ? "3" : "-1";
  std::string log = state_dir + "/supervisor.log";
  // The small supervisor beside the agent when installed (fast to start),
  // else the agent itself in its hidden supervise mode.
  std::string program = self_exe;
  auto slash = self_exe.rfind('/');
  if (slash != std::string::npos) {
    std::string small = self_exe.substr(0, slash + 1) + "trainyard-supervise";
    if (::access(small.c_str(), X_OK) == 0) program = small;
  }
  std::vector<std::string> args = {program, "--supervise", state_dir, fd_arg};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) return Status::internal(std::string("fork failed: ") + std::strerror(errno));
  if (pid == 0) {
    setsid();
    // Out of the way of fds 3 and 4 first, then to 4.
    int tty = tty_fd >= 0 ? fcntl(tty_fd, F_DUPFD, 10) : -1;
    if (notify_fd == 3) {
      fcntl(3, F_SETFD, 0);
    } else if (notify_fd >= 0) {
      dup2(notify_fd, 3);
    }
    int in = ::open("/dev/null", O_RDONLY);
    if (in >= 0) dup2(in, 0);
    int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_NONBLOCK, 0600);
    if (out >= 0) {
      dup2(out, 1);
      dup2(out, 2);
    }
    if (tty >= 0) dup2(tty, 4);
    close_range(tty >= 0 ? 5 : notify_fd >= 0 ? 4 : 3, ~0u, 0);
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


namespace {

// What launch.json asks for; `argv` empty when it is missing or unreadable.
struct Launch {
  uint64_t lease = 0;
  std::vector<std::string> argv, env;
  std::string workdir, run_dir, out_path, err_path, cgroup;
  uint32_t max_grace_s = 300;
  bool truncate = false;
  bool as_user = false;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
  bool pty = false;  // the job runs on the terminal at fd 4
  int warn_signal = 0;  // --signal: sent warn_after_s after the start
  uint64_t warn_after_s = 0;
  bool warn_batch_only = false;
};
constexpr int kTtyFd = 4;

Launch read_launch(const std::string& state_dir) {
  Launch l;
  auto j = read_json_file(state_dir + "/launch.json");
  if (!j) return l;
  try {
    l.lease = j->value("lease", uint64_t{0});
    l.argv = j->at("argv").get<std::vector<std::string>>();
    for (auto& kv : j->at("env")) l.env.push_back(kv[0].get<std::string>() + "=" + kv[1].get<std::string>());
    l.workdir = j->value("workdir", "");
    l.run_dir = j->value("run_dir", "");
    l.out_path = j->value("stdout", "");
    l.err_path = j->value("stderr", "");
    l.cgroup = j->value("cgroup", "");
    l.max_grace_s = j->value("max_grace_s", 300u);
    l.truncate = j->value("truncate", false);
    if (j->contains("user")) {
      auto& u = j->at("user");
      l.as_user = true;
      l.uid = u.at("uid").get<uid_t>();
      l.gid = u.at("gid").get<gid_t>();
      l.groups = u.at("groups").get<std::vector<gid_t>>();
    }
    l.pty = j->value("pty", false);
    if (j->contains("warn")) {
      auto& w = j->at("warn");
      int sig = w.value("signal", 0);
      l.warn_signal = sig > 0 && sig < NSIG ? sig : 0;
      l.warn_after_s = w.value("after_s", uint64_t{0});
      l.warn_batch_only = w.value("batch_only", false);
    }
  } catch (const json::exception&) {
    l.argv.clear();
  }
  return l;
}

// While it lives, the effective ids are the job's user's, so that the logs
// are opened with that user's rights (a path the user may not write is
// refused, as it would be for the job) and created owned by them.
class AsUser {
 public:
  explicit AsUser(const Launch& l) : active_(l.as_user && ::geteuid() == 0) {
    if (!active_) return;
    ok_ = ::setgroups(l.groups.size(), l.groups.data()) == 0 && ::setegid(l.gid) == 0 && ::seteuid(l.uid) == 0;
  }
  ~AsUser() {
    if (!active_) return;
    if (::seteuid(0) != 0 || ::setegid(0) != 0 || ::setgroups(0, nullptr) != 0) {
      std::fprintf(stderr, "cannot return to root after opening the logs: %s\n", std::strerror(errno));
    }
  }
  bool ok() const { return ok_; }

 private:
  bool active_;
  bool ok_ = true;
};

// The job's child becomes its user for good: groups, gid, then uid (a
// process that could regain root would not be confined by them).
bool drop_to_user(const Launch& l, int err) {
  if (!l.as_user) return true;
  if (::setgroups(l.groups.size(), l.groups.data()) != 0 || ::setgid(l.gid) != 0 || ::setuid(l.uid) != 0 ||
      ::getuid() != l.uid || ::setuid(0) == 0) {
    say(err, "trainyard: cannot become uid " + std::to_string(l.uid) + ": " + std::strerror(errno) + "\n");
    return false;
  }
  return true;
}

// The job's log: its path opened safely (no symlink, no FIFO), else the run
// directory's own file, else /dev/null; never a file of the state directory.
int open_log(const std::string& path, const Launch& l, const char* fallback) {
  // Appending either way, so stdout and stderr sharing a file interleave.
  // No path: nothing was tried, so there is nothing to say why.
  Result<int> fd = path.empty() ? Status::not_found("")
                                : open_job_file(path, O_WRONLY | O_CREAT | O_APPEND | (l.truncate ? O_TRUNC : 0));
  if (fd) return *fd;
  if (!path.empty()) {
    std::fprintf(stderr, "cannot open the log %s; using the run directory\n", fd.status().message().c_str());
  }
  if (!l.run_dir.empty()) fd = open_job_file(l.run_dir + "/" + fallback, O_WRONLY | O_CREAT | O_APPEND);
  if (fd) return *fd;
  std::fprintf(stderr, "cannot open the log %s; the job's %s goes to /dev/null\n", fd.status().message().c_str(),
               fallback);
  return ::open("/dev/null", O_WRONLY | O_CLOEXEC);
}

void write_started(const std::string& state_dir, int pid, int64_t start_ns) {
  json j{{"pid", pid}, {"start_ns", start_ns}, {"supervisor_pid", getpid()}};
  write_atomic(state_dir + "/job.json", j.dump());
}

// The end, in this order: exit.json, the lock released (the tree is gone
// already), then the agent told. The agent trusts an end only once the lock is free.
void report_end(const std::string& state_dir, int& lock, int notify_fd, uint64_t lease, const JobExit& ex) {
  write_atomic(state_dir + "/exit.json",
               json{{"exit_code", ex.exit_code}, {"signal", ex.signal}, {"end_ns", ex.end_ns}}.dump());
  ::close(lock);
  lock = -1;
  say(notify_fd, "E " + std::to_string(lease) + " " + std::to_string(ex.exit_code) + " " +
                     std::to_string(ex.signal) + " " + std::to_string(ex.end_ns) + "\n");
}

void kill_cgroup(const std::string& cgroup) {
  if (cgroup.empty()) return;
  int fd = ::open((cgroup + "/cgroup.kill").c_str(), O_WRONLY | O_CLOEXEC);
  if (fd >= 0) {
    (void)!::write(fd, "1", 1);
    ::close(fd);
  }
}

// Everything the job started, wherever it went (own session, double fork,
// another cgroup): they all hang below this subreaper.
void kill_everything(pid_t pid, const std::string& cgroup) {
  ::kill(-pid, SIGKILL);
  kill_cgroup(cgroup);
  signal_descendants(SIGKILL);
}

// The job's child: its own group and cgroup, the logs, the workdir, then exec.
[[noreturn]] void exec_job(const Launch& l, int out, int err) {
  std::string procs = l.cgroup.empty() ? std::string() : l.cgroup + "/cgroup.procs";
  std::vector<char*> argv, envp;
  for (auto& a : l.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (auto& e : l.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  if (l.pty) {
    // A session of its own with the terminal as its controlling tty, so ^C
    // and window changes reach its foreground job; pgid = pid as before.
    setsid();
    ioctl(kTtyFd, TIOCSCTTY, 0);
    out = err = kTtyFd;
  } else {
    setpgid(0, 0);
  }
  if (!procs.empty()) {
    int fd = ::open(procs.c_str(), O_WRONLY);
    if (fd < 0 || ::write(fd, "0", 1) != 1) {
      say(err, "trainyard: could not join the run's cgroup; running without its limits\n");
    }
    if (fd >= 0) ::close(fd);
  }
  int in = l.pty ? kTtyFd : ::open("/dev/null", O_RDONLY);
  if (in >= 0) dup2(in, 0);
  if (out >= 0) dup2(out, 1);
  if (err >= 0) dup2(err, 2);
  if (l.pty) ::close(kTtyFd);
  if (!drop_to_user(l, 2)) _exit(126);
  if (!l.workdir.empty() && chdir(l.workdir.c_str()) != 0) {
    say(2, "trainyard: cannot enter the working directory " + l.workdir + ": " + std::strerror(errno) + "\n");
    _exit(127);
  }
  signal(SIGPIPE, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  // execvpe looks the command up in this process's PATH: the job's, so that
  // the directories it puts first (srun's, the user's) are searched.
  for (auto& e : l.env) {
    if (e.rfind("PATH=", 0) == 0) setenv("PATH", e.c_str() + 5, 1);
  }
  execvpe(argv[0], argv.data(), envp.data());
  say(2, "trainyard: cannot run '" + l.argv[0] + "': " + std::strerror(errno) + "\n");
  _exit(127);
}

// Waits for the job's leader; SIGTERM is passed on to every process of the
// job and arms a SIGKILL max_grace_s later; SIGUSR1 kills at once; the
// --signal warning goes out at its time. Returns the leader's wait status.
int wait_for_leader(pid_t pid, const sigset_t& set, const Launch& l) {
  using Clock = std::chrono::steady_clock;
  std::optional<Clock::time_point> kill_at;
  std::optional<Clock::time_point> warn_at;
  if (l.warn_signal > 0) warn_at = Clock::now() + std::chrono::seconds(std::min<uint64_t>(l.warn_after_s, 1u << 30));
  while (true) {
    std::optional<Clock::time_point> next = kill_at;
    if (warn_at && (!next || *warn_at < *next)) next = warn_at;
    siginfo_t info;
    int sig;
    if (next) {
      auto left = std::max<int64_t>(
          0, std::chrono::duration_cast<std::chrono::milliseconds>(*next - Clock::now()).count());
      timespec ts{static_cast<time_t>(left / 1000), static_cast<long>(left % 1000) * 1'000'000};
      sig = sigtimedwait(&set, &info, &ts);
    } else {
      sig = sigwaitinfo(&set, &info);
    }
    if (sig < 0 && errno == EAGAIN && warn_at && Clock::now() >= *warn_at) {
      warn_at.reset();
      if (l.warn_batch_only) {
        ::kill(pid, l.warn_signal);
      } else {
        ::kill(-pid, l.warn_signal);
        signal_descendants(l.warn_signal);
      }
      continue;
    }
    if (sig == SIGCHLD) {
      int st = 0;
      for (pid_t w; (w = waitpid(-1, &st, WNOHANG)) > 0;) {
        if (w == pid) return st;
      }
    } else if (sig == SIGTERM) {
      ::kill(-pid, SIGTERM);
      signal_descendants(SIGTERM);
      if (!kill_at) kill_at = Clock::now() + std::chrono::seconds(l.max_grace_s);
    } else if (sig == SIGUSR1 || (sig < 0 && errno == EAGAIN && kill_at && Clock::now() >= *kill_at)) {
      kill_everything(pid, l.cgroup);
      kill_at = Clock::now() + std::chrono::seconds(1);  // again while it lingers
    }
  }
}

// Retried briefly: the agent's supervisor_alive() probe takes the lock for an instant.
int take_lock(const std::string& state_dir) {
  int lock = ::open((state_dir + "/supervisor.lock").c_str(), O_CREAT | O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (lock < 0) return -1;
  for (int i = 0; i < 200; ++i) {
    if (::flock(lock, LOCK_EX | LOCK_NB) == 0) return lock;
    if (errno != EWOULDBLOCK) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ::close(lock);
  return -1;
}

}  // namespace

int supervise_main(const std::string& state_dir, int notify_fd) {
  signal(SIGPIPE, SIG_IGN);
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGCHLD, SIGTERM, SIGUSR1, SIGINT, SIGHUP, SIGQUIT}) sigaddset(&set, s);
  sigprocmask(SIG_BLOCK, &set, nullptr);
  // Orphans of the job, even those that left its session, come back to us.
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  if (notify_fd >= 0) fcntl(notify_fd, F_SETFD, FD_CLOEXEC);

  int lock = take_lock(state_dir);
  if (lock < 0) return 0;                                 // another supervisor has this run
  if (exists(state_dir + "/exit.json")) return 0;         // it ran already
  if (exists(state_dir + "/job.json")) {
    std::fprintf(stderr, "a previous supervisor started this job and died; it cannot be waited for\n");
    return 3;
  }
  Launch l = read_launch(state_dir);
  if (l.pty) fcntl(kTtyFd, F_SETFD, FD_CLOEXEC);
  int out = -1, err = -1;
  {
    AsUser as_user(l);
    if (!as_user.ok()) std::fprintf(stderr, "cannot take uid %u to open the logs: %s\n", l.uid, std::strerror(errno));
    out = open_log(l.out_path, l, "stdout");
    err = open_log(l.err_path, l, "stderr");
  }
  int64_t start_ns = wall_ns();
  pid_t pid = l.argv.empty() ? -1 : fork();
  if (pid == 0) exec_job(l, out, err);
  if (pid < 0) {
    say(err, l.argv.empty() ? "trainyard: the run's launch.json is missing or unreadable in " + state_dir + "\n"
                            : std::string("trainyard: fork failed: ") + std::strerror(errno) + "\n");
    write_started(state_dir, 0, start_ns);
    report_end(state_dir, lock, notify_fd, l.lease, JobExit{127, 0, wall_ns()});
    return 0;
  }
  // Also here: no window where a signal to the group misses the job (a pty
  // job makes its own session, which a setpgid from here would prevent).
  if (!l.pty) setpgid(pid, pid);
  if (l.pty) ::close(kTtyFd);  // the job holds the terminal now: its end closes it
  write_started(state_dir, pid, start_ns);
  say(notify_fd, "S " + std::to_string(l.lease) + " " + std::to_string(pid) + " " + std::to_string(start_ns) + "\n");

  int status = wait_for_leader(pid, set, l);
  int64_t end_ns = wall_ns();
  // The job's leader is gone: nothing of it may outlive it.
  kill_everything(pid, l.cgroup);
  for (int round = 1; !kill_descendants(std::chrono::seconds(10), nullptr); ++round) {
    std::fprintf(stderr, "processes of the job are still alive %d s after SIGKILL (uninterruptible?); waiting\n",
                 round * 10);
  }
  if (!l.cgroup.empty()) Cgroups::remove(l.cgroup);
  JobExit ex{WIFEXITED(status) ? WEXITSTATUS(status) : -1, WIFSIGNALED(status) ? WTERMSIG(status) : 0, end_ns};
  report_end(state_dir, lock, notify_fd, l.lease, ex);
  if (out >= 0) ::close(out);
  if (err >= 0) ::close(err);
  return 0;
}

}  // namespace trainyard::agent

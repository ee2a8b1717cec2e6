// Processes for `ty local`, read from /proc and started with fork/exec.
#include "local_processes.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "format.h"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace trainyard::ty {

std::string read_text(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

namespace {

// The process's state letter from /proc/<pid>/stat ('Z' for a zombie), or 0
// when it does not exist.
char proc_state(pid_t pid) {
  std::string stat = read_text("/proc/" + std::to_string(pid) + "/stat");
  auto paren = stat.rfind(')');
  if (paren == std::string::npos || paren + 2 >= stat.size()) return 0;
  return stat[paren + 2];
}

std::string proc_cmdline(pid_t pid) {
  std::string c = read_text("/proc/" + std::to_string(pid) + "/cmdline");
  for (auto& ch : c) {
    if (ch == '\0') ch = ' ';
  }
  return c;
}

}  // namespace

bool alive(pid_t pid, const std::vector<std::string>& marks) {
  if (pid <= 0) return false;
  char st = proc_state(pid);
  if (st == 0 || st == 'Z' || st == 'X') return false;
  std::string cmd = proc_cmdline(pid);
  for (auto& m : marks) {
    if (cmd.find(m) == std::string::npos) return false;
  }
  return true;
}

std::vector<pid_t> group_members(pid_t pgid) {
  std::vector<pid_t> out;
  std::error_code ec;
  for (auto& e : fs::directory_iterator("/proc", ec)) {
    auto name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    pid_t pid = std::stoi(name);
    std::string stat = read_text(e.path().string() + "/stat");
    auto paren = stat.rfind(')');
    if (paren == std::string::npos) continue;
    std::istringstream rest(stat.substr(paren + 2));
    char state = 0;
    long ppid = 0, pgrp = 0;
    rest >> state >> ppid >> pgrp;
    if (pgrp == pgid && state != 'Z' && state != 'X') out.push_back(pid);
  }
  return out;
}

pid_t read_pid(const std::string& path) {
  std::ifstream f(path);
  long pid = 0;
  if (!(f >> pid)) return 0;
  return static_cast<pid_t>(pid);
}

std::optional<std::string> find_binary(const std::string& name) {
  std::error_code ec;
  auto self = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    auto p = self.parent_path() / name;
    if (::access(p.c_str(), X_OK) == 0) return p.string();
  }
  const char* env_path = std::getenv("PATH");
  std::string path = env_path && *env_path ? env_path : "/usr/local/bin:/usr/bin:/bin";
  std::istringstream dirs(path);
  for (std::string d; std::getline(dirs, d, ':');) {
    if (d.empty()) continue;
    auto p = fs::path(d) / name;
    if (::access(p.c_str(), X_OK) == 0) return fs::absolute(p).string();
  }
  return std::nullopt;
}

Result<pid_t> spawn_detached(const std::vector<std::string>& argv, const std::string& log) {
  int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return Status::unavailable("cannot open " + log + ": " + std::strerror(errno));
  std::string banner = "---- " + format_time(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                                     std::chrono::system_clock::now().time_since_epoch())
                                                     .count()) +
                       " started by ty local up ----\n";
  if (::write(fd, banner.data(), banner.size()) < 0) {
    // The banner is a courtesy; the service logs regardless.
  }
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fd);
    return Status::unavailable(std::string("fork: ") + std::strerror(errno));
  }
  if (pid == 0) {
    ::setsid();
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    int null = ::open("/dev/null", O_RDONLY);
    ::dup2(null, 0);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::syscall(SYS_close_range, 3U, ~0U, 0U);
    ::execv(args[0], args.data());
    const char* msg = "ty local up: exec failed\n";
    if (::write(2, msg, std::strlen(msg)) < 0) _exit(127);
    _exit(127);
  }
  ::close(fd);
  return pid;
}

std::string tail_of(const std::string& path, size_t lines) {
  std::string text = read_text(path);
  size_t pos = text.size();
  for (size_t n = 0; n <= lines && pos > 0;) {
    pos = text.rfind('\n', pos - 1);
    if (pos == std::string::npos) {
      pos = 0;
      break;
    }
    ++n;
  }
  std::string out = text.substr(pos == 0 ? 0 : pos + 1);
  std::string indented;
  std::istringstream in(out);
  for (std::string l; std::getline(in, l);) indented += "    " + l + "\n";
  return indented;
}

void stop_pids(const std::vector<MarkedPid>& procs, std::chrono::milliseconds grace) {
  for (auto& [pid, marks] : procs) {
    if (alive(pid, marks)) ::kill(pid, SIGTERM);
  }
  auto deadline = Clock::now() + grace;
  auto any_alive = [&] {
    for (auto& [pid, marks] : procs) {
      if (alive(pid, marks)) return true;
    }
    return false;
  };
  while (any_alive() && Clock::now() < deadline) std::this_thread::sleep_for(50ms);
  for (auto& [pid, marks] : procs) {
    if (alive(pid, marks)) ::kill(pid, SIGKILL);
  }
  auto hard = Clock::now() + 3s;
  while (any_alive() && Clock::now() < hard) std::this_thread::sleep_for(20ms);
}

}  // namespace trainyard::ty

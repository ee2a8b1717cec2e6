#include "process_tree.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <unordered_map>

namespace trainyard::agent {
namespace {

struct ProcEntry {
  pid_t ppid = 0;
  bool zombie = false;
};

// /proc/PID/stat: "pid (comm) S ppid ..."; comm may hold spaces and parens,
// so parse from the last ')'.
bool read_stat(const char* pid_dir, ProcEntry* out) {
  std::string path = std::string("/proc/") + pid_dir + "/stat";
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[512];
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return false;
  buf[n] = '\0';
  char* close = std::strrchr(buf, ')');
  if (!close || close[1] != ' ' || close[2] == '\0') return false;
  out->zombie = close[2] == 'Z' || close[2] == 'X';
  out->ppid = static_cast<pid_t>(std::strtol(close + 4, nullptr, 10));
  return true;
}

std::unordered_map<pid_t, ProcEntry> scan_proc() {
  std::unordered_map<pid_t, ProcEntry> procs;
  DIR* d = opendir("/proc");
  if (!d) return procs;
  while (auto* e = readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    ProcEntry p;
    if (read_stat(e->d_name, &p)) procs.emplace(static_cast<pid_t>(std::atoi(e->d_name)), p);
  }
  closedir(d);
  return procs;
}

}  // namespace

std::vector<pid_t> descendants_of(pid_t ancestor) { return descendants_of(ancestor, {}); }

std::vector<pid_t> descendants_of(pid_t ancestor, const std::unordered_set<pid_t>& barriers) {
  auto procs = scan_proc();
  // 1: leads to `ancestor`, -1: does not; memoized so each chain is walked once.
  std::unordered_map<pid_t, int> verdict;
  std::vector<pid_t> out;
  for (auto& [pid, entry] : procs) {
    std::vector<pid_t> chain;
    int v = -1;
    for (pid_t p = pid; p > 1 && chain.size() < 4096;) {
      if (p == ancestor) {
        v = 1;
        break;
      }
      if (barriers.count(p)) break;  // v = -1: below a barrier
      if (auto it = verdict.find(p); it != verdict.end()) {
        v = it->second;
        break;
      }
      chain.push_back(p);
      auto it = procs.find(p);
      if (it == procs.end()) break;
      p = it->second.ppid;
    }
    for (pid_t c : chain) verdict[c] = v;
    if (v == 1 && pid != ancestor && !entry.zombie) out.push_back(pid);
  }
  return out;
}

size_t signal_descendants(int sig) {
  auto pids = descendants_of(getpid());
  for (pid_t p : pids) ::kill(p, sig);
  return pids.size();
}

size_t kill_descendants_except(const std::unordered_set<pid_t>& keep) {
  auto pids = descendants_of(getpid(), keep);
  for (pid_t p : pids) ::kill(p, SIGKILL);
  return pids.size();
}

bool kill_descendants(std::chrono::milliseconds timeout, const OnReaped& on_reaped) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto pause = std::chrono::milliseconds(1);
  while (true) {
    signal_descendants(SIGKILL);
    int st = 0;
    pid_t w;
    while ((w = waitpid(-1, &st, WNOHANG)) > 0) {
      if (on_reaped) on_reaped(w, st);
    }
    // No child at all means no descendant: any would hang below a child.
    if (w < 0 && errno == ECHILD) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(50));
  }
}

}  // namespace trainyard::agent

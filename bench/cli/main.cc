// bench-cli: how long one `ty submit` process takes, as a user's loop of
// submissions sees it (fork, exec, load, config, key, CURVE handshake,
// durable ack, exit), against a real local Trainyard started with
// `ty local up` in a private HOME (CURVE on, as every install).
//
// Prints the median and mean per process and the rate of the whole loop,
// beside the limits measured in the same run: the process floor
// (`/bin/true`), ty's own start-up (`ty --version`), and `sbatch --hold`
// of a local Slurm when one answers (`sinfo`). Jobs are submitted held
// (`--hold`), so nothing runs and competes with the loop for the CPUs.
//
//   build/bin/bench-cli [--n 300]
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <string>
#include <vector>

#include "process.h"

extern char** environ;

using namespace trainyard::testing;

namespace {

struct Figures {
  double median_ms = 0;
  double mean_ms = 0;
  double p90_ms = 0;
  double per_s = 0;
  int failures = 0;
};

// Runs argv once, stdout and stderr to /dev/null; returns its exit status.
int spawn_once(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return 127;
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

Figures loop(const std::vector<std::string>& argv, int n) {
  std::vector<double> ms;
  Figures f;
  auto all = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    if (spawn_once(argv) != 0) ++f.failures;
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - all).count();
  std::sort(ms.begin(), ms.end());
  f.median_ms = ms[ms.size() / 2];
  f.p90_ms = ms[ms.size() * 9 / 10];
  f.mean_ms = std::accumulate(ms.begin(), ms.end(), 0.0) / static_cast<double>(ms.size());
  f.per_s = n / total;
  return f;
}

void print(const char* what, const Figures& f) {
  std::printf("%-34s median %6.2f ms  mean %6.2f ms  p90 %6.2f ms  %7.1f /s%s\n", what, f.median_ms, f.mean_ms, f.p90_ms,
              f.per_s, f.failures ? "  (some failed!)" : "");
}

// A real Slurm answers `sinfo` and its sbatch is not ty's shim.
bool slurm_here() {
  if (std::system("sinfo -h >/dev/null 2>&1") != 0) return false;
  return std::system("sbatch --version 2>/dev/null | grep -qi slurm") == 0;
}

}  // namespace

int main(int argc, char** argv) {
  int n = 300;
  for (int i = 1; i + 1 < argc; ++i) {
    if (!std::strcmp(argv[i], "--n")) n = std::max(10, std::atoi(argv[i + 1]));
  }
  std::string ty = bin("ty");
  // A private HOME: its own local Trainyard, keys and registry.
  TempDir home;
  setenv("HOME", home.path().c_str(), 1);
  unsetenv("XDG_STATE_HOME");
  unsetenv("XDG_CONFIG_HOME");
  unsetenv("TY_CONFIG");
  setenv("USER", "bench", 0);
  auto up = run({ty, "local", "up"});
  if (up.first != 0) {
    std::fprintf(stderr, "bench-cli: ty local up failed:\n%s\n", up.second.c_str());
    return 1;
  }
  std::vector<std::string> submit = {ty, "submit", "--hold", "--gpus", "0", "--time", "1", "--wrap", "true"};
  loop(submit, 10);  // warm: page cache, the services' first requests

  std::printf("bench-cli: %d processes each, one after another (as a shell loop runs them)\n", n);
  Figures floor = loop({"/bin/true"}, n);
  print("/bin/true (process floor)", floor);
  Figures start = loop({ty, "--version"}, n);
  print("ty --version (ty's start-up)", start);
  Figures sub = loop(submit, n);
  print("ty submit --hold (CURVE, durable)", sub);
  std::printf("ty submit: %.2f ms median per process; target <= 5 ms: %s\n", sub.median_ms,
              sub.median_ms <= 5.0 ? "met" : "NOT met");
  std::printf("  of which process floor %.2f ms, ty start-up %.2f ms, the request itself %.2f ms\n", floor.median_ms,
              start.median_ms - floor.median_ms, sub.median_ms - start.median_ms);
  if (slurm_here()) {
    Figures sb = loop({"sbatch", "--hold", "-t", "1", "--wrap", "true"}, n);
    print("sbatch --hold (local Slurm)", sb);
    std::printf("ty submit / sbatch: %.2f of sbatch's time per process\n", sub.median_ms / sb.median_ms);
  } else {
    std::printf("sbatch: no local Slurm answers (sinfo), so no sbatch figure in this run\n");
  }
  run({ty, "local", "down"});
  return sub.failures ? 1 : 0;
}

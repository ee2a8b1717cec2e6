// `ty local down`: stops the agent and the gateway, then the runs the agent
// left and the other services together (SIGTERM, the grace period, then
// SIGKILL), and says what, if anything, is still running.
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <thread>

#include <nlohmann/json.hpp>

#include "local.h"
#include "local_commands.h"
#include "local_instance.h"
#include "local_processes.h"
#include "local_registry.h"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

extern char** environ;

namespace trainyard::ty {

namespace {

// The runs the agent started that may still be alive: their supervisors
// (own sessions) and the jobs' process groups.
struct LeftRun {
  std::string dir;
  pid_t supervisor = 0;
  pid_t job = 0;  // also its process group
};

// Runs whose supervisor may still be alive, from the agent's run state
// (<agent data>/run-state/<run>/, where the agent keeps what the job must not
// write). A pid read there is used only after checking what it is: the
// supervisor by its command line, the job only while it leads a live
// process group, and never pid 0 or 1.
std::vector<LeftRun> left_runs(const LocalLayout& l) {
  std::vector<LeftRun> out;
  std::error_code ec;
  for (auto& e : fs::directory_iterator(l.data("agent") + "/run-state", ec)) {
    std::string dir = e.path().string();
    if (fs::exists(dir + "/exit.json")) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(read_text(dir + "/job.json"));
    } catch (const std::exception&) {
      continue;
    }
    LeftRun r{dir, j.value("supervisor_pid", 0), j.value("pid", 0)};
    if (r.supervisor <= 1 || !alive(r.supervisor, {"--supervise", dir})) r.supervisor = 0;
    if (r.job <= 1 || group_members(r.job).empty()) r.job = 0;
    if (r.supervisor || r.job) out.push_back(r);
  }
  return out;
}

bool runs_alive(const std::vector<LeftRun>& runs) {
  for (auto& r : runs) {
    if ((r.supervisor && alive(r.supervisor, {"--supervise"})) || (r.job && !group_members(r.job).empty())) return true;
  }
  return false;
}

// SIGTERM to each supervisor (which passes it to the job's process group),
// SIGKILL to the jobs after `grace`, and to a supervisor that outlives that.
void end_runs(const std::vector<LeftRun>& runs, std::chrono::milliseconds grace) {
  for (auto& r : runs) {
    if (r.supervisor) ::kill(r.supervisor, SIGTERM);
    else if (r.job) ::kill(-r.job, SIGTERM);
  }
  auto deadline = Clock::now() + grace;
  while (runs_alive(runs) && Clock::now() < deadline) std::this_thread::sleep_for(50ms);
  for (auto& r : runs) {
    if (r.supervisor && alive(r.supervisor, {"--supervise"})) ::kill(r.supervisor, SIGUSR1);  // SIGKILL to the job
    if (r.job) ::kill(-r.job, SIGKILL);
  }
  auto hard = Clock::now() + 3s;
  while (runs_alive(runs) && Clock::now() < hard) {
    for (auto& r : runs) {
      if (r.supervisor && alive(r.supervisor, {"--supervise"}) && Clock::now() + 2s > hard) ::kill(r.supervisor, SIGKILL);
    }
    std::this_thread::sleep_for(50ms);
  }
}

struct Running {
  const LocalService* svc;
  pid_t pid;
};

std::vector<MarkedPid> pids_of(const LocalTrainyard& t, const std::vector<Running>& running, bool agent_and_gateway) {
  std::vector<MarkedPid> out;
  for (auto& r : running) {
    bool first = r.svc->name == "agent" || r.svc->name == "gateway";
    if (first == agent_and_gateway) out.push_back({r.pid, t.marks(*r.svc)});
  }
  return out;
}

// What outlived SIGKILL; the pid and ready files of the stopped go.
std::vector<std::string> left_over(const LocalTrainyard& t, const std::vector<Running>& running,
                                   const std::vector<LeftRun>& runs) {
  std::vector<std::string> left;
  for (auto& r : running) {
    if (alive(r.pid, t.marks(*r.svc))) left.push_back(r.svc->name + " (pid " + std::to_string(r.pid) + ")");
  }
  for (auto& r : runs) {
    if (r.job && !group_members(r.job).empty()) left.push_back("the job of " + r.dir);
  }
  for (auto& svc : local_services()) {
    if (!t.running_pid(svc)) {
      std::remove(t.layout().pid(svc.name).c_str());
      std::remove(t.layout().ready(svc.name).c_str());
    }
  }
  return left;
}

// The rented nodes of a --cloud-nodes pool: agents the local driver
// started in sessions of their own, gone with the machine they stand for.
// The number the driver terminated.
int stop_rented(const LocalLayout& l) {
  if (!fs::exists(l.cloud() + "/instances")) return 0;
  auto driver = find_binary(kLocalCloudDriver);
  if (!driver) {
    std::cerr << "ty local down: cannot find " << kLocalCloudDriver << " to stop the rented nodes in " << l.cloud()
              << "\n";
    return 0;
  }
  std::vector<std::string> argv{*driver, "--state", l.cloud(), "down"};
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  int out[2];
  if (::pipe(out) != 0) return 0;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&fa, out[0]);
  pid_t pid = 0;
  int rc = ::posix_spawn(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(out[1]);
  std::string text;
  char buf[512];
  for (ssize_t n; rc == 0 && (n = ::read(out[0], buf, sizeof buf)) > 0;) text.append(buf, static_cast<size_t>(n));
  ::close(out[0]);
  int status = 0;
  if (rc == 0) ::waitpid(pid, &status, 0);
  auto reply = nlohmann::json::parse(text, nullptr, false);
  return reply.is_object() ? reply.value("terminated", 0) : 0;
}

}  // namespace

int local_down(const std::string& data, int grace_s) {
  LocalTrainyard t(choose_dir(data, true));
  const auto& l = t.layout();
  std::vector<Running> running;
  for (auto& svc : local_services()) {
    if (pid_t pid = t.running_pid(svc)) running.push_back({&svc, pid});
  }
  auto grace = std::chrono::seconds(std::max(1, grace_s));

  // The agent first, so it does not report its runs as they are ended below
  // (it reports them when it starts again), and the gateway with it.
  stop_pids(pids_of(t, running, true), grace);
  // The runs it left, and the other services at the same time.
  auto runs = left_runs(l);
  auto rest = pids_of(t, running, false);
  std::thread services([&] { stop_pids(rest, grace); });
  end_runs(runs, grace);
  services.join();
  int rented = stop_rented(l);

  auto left = left_over(t, running, runs);
  if (!left.empty()) {
    std::cerr << "ty local down: still running after SIGKILL:";
    for (auto& x : left) std::cerr << " " << x;
    std::cerr << "\n";
    return kExitFailed;
  }
  unregister_dir(l.dir);
  if (running.empty() && runs.empty()) {
    std::cout << "No local Trainyard is running in " << l.dir << "\n";
  } else {
    std::cout << "Stopped the local Trainyard in " << l.dir << " (" << running.size() << " service"
              << (running.size() == 1 ? "" : "s");
    if (!runs.empty()) std::cout << ", " << runs.size() << " running job" << (runs.size() == 1 ? "" : "s") << " ended";
    if (rented > 0) std::cout << ", " << rented << " rented node" << (rented == 1 ? "" : "s") << " terminated";
    std::cout << "). Its jobs, metrics and bills stay there for the next ty local up.\n";
  }
  return kExitOk;
}

}  // namespace trainyard::ty

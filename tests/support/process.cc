#include "process.h"

#include <algorithm>

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace trainyard::testing {

TempDir::TempDir() {
  const char* base = getenv("TMPDIR");
  std::string tmpl = std::string(base ? base : "/tmp") + "/trainyard-test-XXXXXX";
  if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  if (getenv("TY_KEEP_TEST_DIRS")) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string bin(const std::string& name) { return std::string(TY_BIN_DIR) + "/" + name; }

namespace {

// A Trainyard service started with no security settings at all is a test
// about something else, often with peers of its own that hold no keys
// (tests/agent's broker double, tests/bus's raw publishers): it runs with
// security.mode = "none". Every Cluster, tests/security and `ty local`
// pass their keys and run with CURVE.
//
// Likewise an agent runs jobs as the test's own user: test users (alice,
// ana...) have no Unix accounts. tests/security/run_as_test asks for
// agent.run_as=submitter.
std::vector<std::string> with_test_security(std::vector<std::string> argv) {
  static const char* kServices[] = {"trainyard-bus", "trainyard-scheduler", "trainyard-resource-broker",
                                    "trainyard-agent", "trainyard-metrics-aggregator", "trainyard-billing",
                                    "trainyard-gateway"};
  if (argv.empty()) return argv;
  std::string base = argv[0].substr(argv[0].rfind('/') + 1);
  if (std::none_of(std::begin(kServices), std::end(kServices), [&](const char* s) { return base == s; })) return argv;
  auto mentions = [&](const char* key) {
    return std::any_of(argv.begin(), argv.end(), [&](const std::string& a) { return a.find(key) != std::string::npos; });
  };
  if (base == "trainyard-agent" && !mentions("agent.run_as")) {
    argv.insert(argv.end(), {"--set", "agent.run_as=agent"});
  }
  if (!mentions("security.")) argv.insert(argv.end(), {"--set", "security.mode=none"});
  return argv;
}

}  // namespace

Process::Process(std::vector<std::string> argv, std::string log_path, std::map<std::string, std::string> env)
    : log_path_(std::move(log_path)) {
  argv = with_test_security(std::move(argv));
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    setpgid(0, 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    int fd = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    for (auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  setpgid(pid_, pid_);
}

Process::~Process() {
  if (running()) {
    ::kill(-pid_, SIGKILL);
    ::kill(pid_, SIGKILL);
    wait(std::chrono::seconds(5));
  }
}

bool Process::running() {
  if (status_) return false;
  int st = 0;
  pid_t r = waitpid(pid_, &st, WNOHANG);
  if (r == pid_) {
    status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return false;
  }
  return true;
}

void Process::signal(int sig) {
  if (!running()) return;
  ::kill(-pid_, sig);
}

std::optional<int> Process::wait(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (running()) {
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return status_;
}

int Process::stop(std::chrono::milliseconds grace) {
  signal(SIGTERM);
  if (auto s = wait(grace)) return *s;
  signal(SIGKILL);
  return wait(std::chrono::seconds(5)).value_or(-1);
}

std::string Process::log() const { return read_file(log_path_); }

bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (pred()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

int kill_processes_mentioning(const std::string& needle) {
  int killed = 0;
  for (auto& e : std::filesystem::directory_iterator("/proc")) {
    auto name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    pid_t pid = std::stoi(name);
    if (pid == getpid()) continue;
    std::string cmdline = read_file(e.path().string() + "/cmdline");
    std::error_code ec;
    auto cwd = std::filesystem::read_symlink(e.path() / "cwd", ec).string();
    if (cmdline.find(needle) == std::string::npos && cwd.find(needle) == std::string::npos) continue;
    pid_t pgid = getpgid(pid);
    if (pgid > 0 && pgid != getpgrp()) ::kill(-pgid, SIGKILL);
    ::kill(pid, SIGKILL);
    ++killed;
  }
  return killed;
}

bool kill_processes_mentioning_until_gone(const std::string& needle, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (kill_processes_mentioning(needle) > 0) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

bool loopback_port_free(int port) {
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  if (s < 0) return false;
  int one = 1;
  ::setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));  // as ZeroMQ's listeners bind
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  ::close(s);
  return ok;
}

int free_loopback_port() {
  static std::mt19937 rng(std::random_device{}());
  for (int tries = 0; tries < 200; ++tries) {
    int port = 12000 + static_cast<int>(rng() % 8000);
    if (loopback_port_free(port)) return port;
  }
  throw std::runtime_error("no free loopback port in 12000-19999");
}

std::optional<nlohmann::json> read_json(const std::string& path) {
  std::ifstream f(path);
  if (!f) return std::nullopt;
  try {
    return nlohmann::json::parse(f);
  } catch (...) {
    return std::nullopt;
  }
}

BusProcess start_bus(const std::string& dir, const BusOptions& o) {
  std::string ready = dir + "/" + o.name + ".ready";
  std::vector<std::string> argv{bin("trainyard-bus"), "--frontend", o.frontend, "--backend", o.backend,
                                "--ready-file", ready};
  argv.insert(argv.end(), o.extra.begin(), o.extra.end());
  BusProcess bus;
  bus.process = std::make_unique<Process>(argv, dir + "/" + o.name + ".log");
  std::optional<nlohmann::json> j;
  if (!wait_until([&] { return (j = read_json(ready)).has_value(); }, std::chrono::seconds(10))) {
    throw std::runtime_error("trainyard-bus did not start: " + bus.process->log());
  }
  bus.frontend = j->at("frontend").get<std::string>();
  bus.backend = j->at("backend").get<std::string>();
  return bus;
}

nlohmann::json wait_json(const std::string& path, std::chrono::milliseconds timeout,
                         const std::function<bool(const nlohmann::json&)>& pred) {
  nlohmann::json out;
  bool ok = wait_until(
      [&] {
        auto j = read_json(path);
        if (!j) return false;
        if (pred && !pred(*j)) {
          out = *j;
          return false;
        }
        out = *j;
        return true;
      },
      timeout);
  if (!ok) throw std::runtime_error("timed out waiting for " + path + " (last: " + out.dump() + ")");
  return out;
}

std::pair<int, std::string> run(std::vector<std::string> argv, std::chrono::milliseconds timeout,
                                std::map<std::string, std::string> env) {
  char tmpl[] = "/tmp/trainyard-run-XXXXXX";
  int fd = mkstemp(tmpl);
  if (fd >= 0) close(fd);
  int status;
  {
    Process p(std::move(argv), tmpl, std::move(env));
    auto s = p.wait(timeout);
    status = s ? *s : -1;
    if (!s) p.kill9();
  }
  auto out = read_file(tmpl);
  unlink(tmpl);
  return {status, out};
}

}  // namespace trainyard::testing

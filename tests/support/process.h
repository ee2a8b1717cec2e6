// Test support: real child processes and temporary data directories.
// Tests start the real binaries with these and always clean them up, even
// when an assertion fails (the destructors kill what is left).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace trainyard::testing {

// A fresh directory under $TMPDIR, removed on destruction (kept when
// TY_KEEP_TEST_DIRS is set, for debugging).
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Path of a binary built into build/bin.
std::string bin(const std::string& name);

// A child process in its own process group; stdout+stderr go to `log_path`.
class Process {
 public:
  Process(std::vector<std::string> argv, std::string log_path, std::map<std::string, std::string> env = {});
  ~Process();  // SIGKILLs the group if still running
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  // Sends `sig` to the whole process group.
  void signal(int sig);
  void kill9() { signal(9); }
  // Waits up to `timeout` for the process to exit; returns its exit status
  // (128+signal when killed) or nullopt on timeout.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  // SIGTERM, then SIGKILL after `grace`; returns the exit status.
  int stop(std::chrono::milliseconds grace = std::chrono::milliseconds(5000));
  std::string log() const;
  const std::string& log_path() const { return log_path_; }

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
  std::string log_path_;
};

// Polls `pred` every 20 ms until it holds or `timeout` passes.
bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout);

// Reads a JSON file written atomically by a service (--ready-file, --info);
// nullopt while it does not exist or does not parse.
// Whether `port` can be bound on 127.0.0.1 now (with SO_REUSEADDR, as
// ZeroMQ's listeners bind).
bool loopback_port_free(int port);
// A free loopback port in [12000, 20000): below Linux's default ephemeral
// range (32768-60999), where outgoing connections take their local ports,
// so a service given one keeps it across restarts without a connection
// taking it meanwhile (Cluster's services, the cloud tests' scheduler,
// which the broker must know before it starts); and below the port bases
// of the `ty local` tests (20000-32480, local_ports.h), so the two never
// pick the same port (nor the default `ty local` gateway port, 10080).
int free_loopback_port();
std::optional<nlohmann::json> read_json(const std::string& path);
// Waits for read_json(path) to succeed (and `pred` to hold on it).
nlohmann::json wait_json(const std::string& path, std::chrono::milliseconds timeout,
                         const std::function<bool(const nlohmann::json&)>& pred = nullptr);

std::string read_file(const std::string& path);

// A real trainyard-bus forwarder, for tests that start their own services.
struct BusOptions {
  std::string name = "bus";  // its log dir/<name>.log, its ready file dir/<name>.ready
  std::string frontend = "tcp://127.0.0.1:*";  // '*': a free port
  std::string backend = "tcp://127.0.0.1:*";
  std::vector<std::string> extra;  // more flags (--set security..., --log-level)
};
struct BusProcess {
  std::unique_ptr<Process> process;
  std::string frontend, backend;  // as bound, from its ready file
};
// Starts it and waits (10 s) for its ready file; throws naming its log if
// it does not come up.
BusProcess start_bus(const std::string& dir, const BusOptions& options = {});

// SIGKILLs every process (and its process group) whose command line or
// working directory mentions `needle` — e.g. a test's temporary directory,
// to reap job processes that agents run in sessions of their own.
int kill_processes_mentioning(const std::string& needle);
// The same, repeated until no such process is left (a SIGKILLed process
// still finishes the system call it is in, a rename say): for a test that
// then deletes the files those processes wrote. False if some outlived
// `timeout`.
bool kill_processes_mentioning_until_gone(const std::string& needle,
                                          std::chrono::milliseconds timeout = std::chrono::seconds(10));
// Runs a command to completion, returning {exit status, stdout+stderr}.
std::pair<int, std::string> run(std::vector<std::string> argv, std::chrono::milliseconds timeout = std::chrono::seconds(30),
                                std::map<std::string, std::string> env = {});

}  // namespace trainyard::testing

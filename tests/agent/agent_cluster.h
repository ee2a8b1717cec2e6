// The agent as a process, for tests: a real trainyard-bus, a real
// trainyard-agent with declared GPUs, and the test playing the broker
// (BrokerDouble). Shared by tests/agent/agent_test.cc and the hostile-job
// tests in tests/hostile/.
#pragma once

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "broker_double.h"
#include "process.h"
#include "rpc/client.h"

namespace trainyard::fb {
// Lets Boost.Test print the enums it compares.
inline std::ostream& operator<<(std::ostream& os, RunOutcome o) { return os << EnumNameRunOutcome(o); }
inline std::ostream& operator<<(std::ostream& os, ErrorCode c) { return os << EnumNameErrorCode(c); }
}  // namespace trainyard::fb

namespace trainyard::testing {

using namespace std::chrono_literals;


inline bool file_exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

inline bool process_gone(int pid) {
  if (::kill(pid, 0) != 0) return true;
  // A zombie is dead too: only its parent has not read its status yet.
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s;
  std::getline(f, s);
  auto close = s.rfind(')');
  return close != std::string::npos && close + 2 < s.size() && s[close + 2] == 'Z';
}

inline size_t count(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (auto p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) ++n;
  return n;
}

class Cluster {
 public:
  explicit Cluster(std::string agent_extra = "", std::vector<std::string> sets = {})
      : agent_extra_(std::move(agent_extra)), sets_(std::move(sets)) {
    auto bus = start_bus(dir_.path());
    bus_ = std::move(bus.process);
    frontend_ = bus.frontend;
    backend_ = bus.backend;
    broker_ = std::make_unique<BrokerDouble>(dir_ / "broker", frontend_, backend_);
    start_agent();
  }

  ~Cluster() {
    agent_.reset();
    // Supervisors live in sessions of their own (they outlive the agent by
    // design): end what the test left running. Found by what mentions this
    // test's directory (command line or working directory), never by pids
    // read from run records: a hostile job forges those (pid 1 would make
    // kill(-pid) signal every process on the machine).
    try {
      kill_processes_mentioning(dir_.path());
    } catch (const std::exception&) {
    }
  }

  void start_agent() {
    std::string cfg = dir_ / "agent.toml";
    std::ofstream f(cfg);
    f << "[agent]\nnode = \"n1\"\ndata = \"" << (dir_ / "data") << "\"\n"
      << "gpus = [{type = \"A100\", memory_gb = 80, count = 4}]\n"
      << "cpus = 16\nmemory_mb = 64000\npartition = \"gpu\"\n"
      << "heartbeat_ms = 200\nusage_tick_ms = 200\nsample_ms = 300\n"
      << "labels = {rack = \"r1\"}\n"
      << agent_extra_ << "\n"
      << "[broker]\nendpoint = \"" << broker_->endpoint() << "\"\n"
      << "[bus]\nfrontend = \"" << frontend_ << "\"\nbackend = \"" << backend_ << "\"\n";
    f.close();
    ::unlink((dir_ / "agent.ready").c_str());
    std::vector<std::string> argv{bin("trainyard-agent"), "--config", cfg, "--ready-file", dir_ / "agent.ready",
                                  "--log-level", "debug"};
    for (auto& s : sets_) {
      argv.push_back("--set");
      argv.push_back(s);
    }
    agent_ = std::make_unique<Process>(argv, dir_ / "agent.log");
    auto j = wait_json(dir_ / "agent.ready", 15s);
    endpoint_ = j["endpoint"];
  }

  Process& agent() { return *agent_; }
  BrokerDouble& broker() { return *broker_; }
  const std::string& endpoint() const { return endpoint_; }
  std::string path(const std::string& name) const { return dir_ / name; }
  std::string run_dir(uint64_t job, uint32_t attempt, uint64_t lease) const {
    return dir_ / ("data/runs/" + std::to_string(job) + "-" + std::to_string(attempt) + "-" + std::to_string(lease));
  }
  // The run's state directory (launch spec, start/exit records, lock): the agent's, not the job's.
  std::string state_dir(uint64_t job, uint32_t attempt, uint64_t lease) const {
    return dir_ / ("data/run-state/" + std::to_string(job) + "-" + std::to_string(attempt) + "-" + std::to_string(lease));
  }
  std::string runs_dir() const { return dir_ / "data/runs"; }
  std::string agent_log() const { return read_file(dir_ / "agent.log"); }

  // Every event on `topic` for `lease` (run.* and usage.* carry the lease).
  template <typename T>
  std::vector<Seen> for_lease(const std::string& topic, uint64_t lease) {
    std::vector<Seen> out;
    for (auto& s : broker_->events(topic)) {
      if (auto* e = s.as<T>(); e && e->lease_id() == lease) out.push_back(s);
    }
    return out;
  }
  Seen wait_finished(uint64_t lease, std::chrono::milliseconds timeout = 20s) {
    bool ok = wait_until([&] { return !for_lease<fb::RunFinished>("run.finished", lease).empty(); }, timeout);
    if (!ok) BOOST_FAIL("no run.finished for lease " << lease << "; agent log:\n" << agent_log());
    return for_lease<fb::RunFinished>("run.finished", lease).front();
  }
  Seen wait_started(uint64_t lease, std::chrono::milliseconds timeout = 20s) {
    bool ok = wait_until([&] { return !for_lease<fb::RunStarted>("run.started", lease).empty(); }, timeout);
    if (!ok) BOOST_FAIL("no run.started for lease " << lease << "; agent log:\n" << agent_log());
    return for_lease<fb::RunStarted>("run.started", lease).front();
  }

  Result<rpc::Reply> read_log(uint64_t job, bool stderr_, uint64_t offset = 0, uint32_t attempt = 0) {
    rpc::Client c(ctx_, "agent", endpoint_, rpc::ClientOptions{2000, 1, "", "", nullptr});  // the local operator
    return c.call(fb::RequestBody::ReadLog, [&](flatbuffers::FlatBufferBuilder& b) {
      return fb::CreateReadLog(b, job, attempt, stderr_, offset, 65536).Union();
    });
  }

 private:
  TempDir dir_;
  std::string agent_extra_;
  std::vector<std::string> sets_;
  std::string frontend_, backend_, endpoint_;
  std::unique_ptr<Process> bus_;
  std::unique_ptr<BrokerDouble> broker_;
  std::unique_ptr<Process> agent_;
  zmq::context_t ctx_{1};
};

inline Grant job(uint64_t lease, uint64_t job_id, std::vector<std::string> cmd) {
  Grant g;
  g.lease = lease;
  g.job = job_id;
  g.node = "n1";
  g.gpus = {0};
  g.command = std::move(cmd);
  return g;
}

}  // namespace trainyard::testing

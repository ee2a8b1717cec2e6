// A whole Trainyard on loopback for integration tests and benchmarks: the
// real bus, scheduler, resource broker, agents (declared GPUs) and, when
// asked, metrics-aggregator and billing, each a real process with its own
// RocksDB in a temporary directory, bound to free ports read back from
// their ready files.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "process.h"

namespace trainyard::testing {

struct AgentSpec {
  AgentSpec(std::string node_name, int gpu_count = 2, std::string type = "A100")
      : node(std::move(node_name)), gpus(gpu_count), gpu_type(std::move(type)) {}
  std::string node;
  int gpus;
  std::string gpu_type;
  int cpus = 16;
  int memory_mb = 65536;
  std::vector<std::string> extra;  // more --set overrides
};

struct ClusterOptions {
  std::vector<AgentSpec> agents = {{"node-a"}, {"node-b"}};
  bool metrics = false;
  bool billing = false;
  std::vector<std::string> scheduler_sets;  // extra --set for the scheduler
  std::vector<std::string> broker_sets;
  std::vector<std::string> billing_sets;
  int node_timeout_ms = 3000;
  // CURVE with real keys (made by `ty admin keys init` under dir()/keys:
  // every service, every agent, and the users below). false: security.mode
  // = "none" for tests about something else that start peers of their own.
  bool secure = true;
  std::vector<std::string> users = {"alice", "bob", "carol"};  // plus the login name
  // Nodes that get a key (host lists too: "burst-[0-1]") but no agent here:
  // a cloud pool's slots, whose agents the pool's driver starts.
  std::vector<std::string> agent_keys;
  // --set for every process (security.roles..., security.accounts...).
  // Left empty, the login user is the cluster's admin.
  std::vector<std::string> site_sets;

  // Turns on billing with the test rate card (written under `dir`): A100
  // GPUs at 3.60 EUR an hour, one micro-unit per GPU-millisecond; CPU and
  // memory free, so a job's cost is its GPU milliseconds.
  ClusterOptions& with_test_billing(const std::string& dir);
};

class Cluster {
 public:
  explicit Cluster(ClusterOptions options = {});
  ~Cluster();

  const std::string& dir() const { return dir_.path(); }
  std::string bus_frontend, bus_backend;
  std::string scheduler, broker, metrics, billing;  // ROUTER endpoints

  // Starts (or restarts) a service by name: "scheduler", "broker",
  // "metrics", "billing", or an agent's node name. Waits for its ready file.
  // The four services listen on a port below the kernel's ephemeral range
  // (chosen at their first start, kept at restarts), so that no outgoing
  // connection can hold it while a killed service is down.
  void start(const std::string& name);
  Process& process(const std::string& name) { return *procs_.at(name); }
  void kill9(const std::string& name);
  // Writes a ty config file pointing at this cluster and returns its path.
  // ty there acts as the login name (its key keys/user-<login>.key).
  const std::string& ty_config() const { return ty_config_; }
  // The keys directory ("" when not secure) and a user's key file in it.
  std::string keys_dir() const;
  std::string user_key(const std::string& user) const;
  bool secure() const { return options_.secure; }
  // Runs `ty args...` against this cluster.
  std::pair<int, std::string> ty(std::vector<std::string> args,
                                 std::chrono::milliseconds timeout = std::chrono::seconds(30));
  std::string logs() const;  // every service's log, for failure messages

 private:
  std::vector<std::string> common_sets() const;
  std::vector<std::string> security_sets() const;  // --set security.* for every process
  std::string ty_security() const;                 // the [security] and [client] of ty.toml
  void make_keys();
  // Starts `argv` as service `name` and waits for its ready file; throws
  // with the service's log when it exits first or is not ready in time.
  nlohmann::json launch(const std::string& name, const std::vector<std::string>& argv, const std::string& ready);
  TempDir dir_;
  ClusterOptions options_;
  std::map<std::string, std::unique_ptr<Process>> procs_;
  std::string ty_config_;
};

}  // namespace trainyard::testing

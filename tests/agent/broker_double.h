// A stand-in for the resource broker in the agent's tests: answers
// RegisterNode/NodeHeartbeat on a ROUTER, publishes lease.<node>.granted /
// .revoked on the durable bus, and collects what the agent publishes
// (run.*, usage.*, metric.*). Runs its own loop on a background thread; the
// test thread talks to it through thread-safe calls.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bus/publisher.h"
#include "storage/store.h"
#include "trainyard/fb/bus_generated.h"
#include "trainyard/fb/rpc_generated.h"

namespace trainyard::testing {

struct Grant {
  uint64_t lease = 0;
  uint64_t job = 0;
  uint32_t attempt = 1;
  int32_t array_index = -1;
  std::string node;
  std::vector<uint32_t> gpus;
  std::vector<std::string> command;
  std::map<std::string, std::string> env;
  uint64_t time_limit_s = 0;
  uint32_t grace_s = 30;
  double sim_duration_s = 0;
  uint32_t cpus = 1;
  uint64_t memory_mb = 0;
  std::string account = "vision";
  std::string user = "alice";
  std::string partition = "gpu";
  std::string experiment;
  std::string gpu_type = "A100";
  std::string workdir;
  std::string stdout_path;
  std::vector<std::string> nodes;
  uint32_t node_rank = 0;
};

// An event the agent published, as received (envelope bytes, unpacked on demand).
struct Seen {
  std::string topic;
  std::string envelope;
  const fb::Envelope* env() const { return fb::GetEnvelope(envelope.data()); }
  template <typename T>
  const T* as() const {
    return env()->template payload_as<T>();
  }
};

class BrokerDouble {
 public:
  BrokerDouble(const std::string& data_dir, const std::string& bus_frontend, const std::string& bus_backend);
  ~BrokerDouble();

  const std::string& endpoint() const { return endpoint_; }

  void grant(const Grant& g);
  void revoke(const std::string& node, uint64_t lease, uint64_t job, uint32_t grace_s, const std::string& reason);
  // The next heartbeat of `node` is answered NotFound (the broker lost it).
  void forget(const std::string& node);

  int registrations(const std::string& node);
  int heartbeats(const std::string& node);
  size_t registered_nodes();
  // The NodeInfo of the last registration, unpacked.
  std::shared_ptr<fb::NodeInfoT> node(const std::string& name);
  std::vector<uint64_t> last_running_leases(const std::string& node);

  // Events received so far whose topic starts with `prefix`.
  std::vector<Seen> events(const std::string& prefix);

 private:
  void loop(const std::string& data_dir, const std::string& frontend, const std::string& backend);

  std::string endpoint_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> ready_{false};
  std::mutex mu_;
  using Command = std::function<void(bus::Publisher&, storage::Batch&)>;
  std::vector<Command> commands_;  // run on the loop thread
  std::vector<Seen> seen_;
  std::map<std::string, int> registrations_, heartbeats_;
  std::map<std::string, std::shared_ptr<fb::NodeInfoT>> node_info_;
  std::map<std::string, std::vector<uint64_t>> running_;
  std::map<std::string, bool> forgotten_;
  std::thread thread_;
};

}  // namespace trainyard::testing

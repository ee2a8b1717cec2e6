// Integration-test harness for the resource broker: a real trainyard-bus and
// trainyard-resource-broker on loopback, rpc clients acting as agents and
// schedulers, a durable subscriber that records node.* and lease.* events,
// and a publisher of run.* events standing in for an agent.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <zmq.hpp>

#include "bus/publisher.h"
#include "bus/subscriber.h"
#include "process.h"
#include "rpc/client.h"
#include "rpc/server.h"
#include "storage/store.h"
#include "trainyard/fb/runs_generated.h"
#include "util/clock.h"

namespace trainyard::broker_test {

using testing::Process;
using testing::TempDir;

// A bus forwarder and a broker with their data in one temporary directory.
class Stack {
 public:
  // `extra`: more config overrides for the broker ("broker.key=value").
  explicit Stack(int64_t node_timeout_ms = 1000, std::vector<std::string> extra = {});
  ~Stack();

  // Starts the broker (again, on the same data and endpoint once it ran).
  void start_broker();
  void kill_broker();  // SIGKILL: no chance to flush or close anything
  std::unique_ptr<rpc::Client> client(int timeout_ms = 2000, int tries = 1) ;

  zmq::context_t ctx{1};
  TempDir dir;
  std::string frontend;  // publishers connect here
  std::string backend;   // subscribers connect here
  std::string endpoint;  // the broker's ROUTER
  int64_t node_timeout_ms;
  std::vector<std::string> extra;
  std::unique_ptr<Process> bus;
  std::unique_ptr<Process> broker;
};

// Waits until the broker's stream heartbeats say `stream` ("node.@broker")
// has trimmed its outbox up to at least `first_seq`.
bool wait_trimmed(Stack& stack, const std::string& stream, uint64_t first_seq, int timeout_ms = 10000);

// Requests, as an agent or a scheduler sends them.
Status register_node(rpc::Client& c, const std::string& name, int gpus, const std::vector<uint64_t>& running = {});
Status heartbeat(rpc::Client& c, const std::string& name, const std::vector<uint64_t>& running = {});
Result<std::vector<uint64_t>> allocate(rpc::Client& c, uint64_t job, const std::string& node,
                                       const std::vector<uint32_t>& gpus, uint32_t attempt = 0);
struct Placement {
  std::string node;
  std::vector<uint32_t> gpus;
};
Result<std::vector<uint64_t>> allocate_gang(rpc::Client& c, uint64_t job, const std::vector<Placement>& placements);
Status release(rpc::Client& c, uint64_t lease, bool kill, const std::string& reason = "");
Status drain(rpc::Client& c, const std::string& node, bool drain, const std::string& reason = "");

struct NodeRow {
  std::string name;
  bool up = false;
  bool drained = false;
  std::string reason;
  std::vector<uint32_t> allocated_gpus;
  std::vector<uint64_t> leases;
  int64_t last_heartbeat_ns = 0;
  std::string agent_endpoint;
  size_t gpus = 0;
};
// Every page of ListNodes (page_bytes 0: the broker's default), counted in *pages.
Result<std::vector<NodeRow>> list_nodes(rpc::Client& c, uint32_t page_bytes = 0, size_t* pages = nullptr);
const NodeRow* find(const std::vector<NodeRow>& rows, const std::string& name);

// An agent that registers and then heartbeats every 200 ms from its own
// thread; answered NotFound, it registers again, as a real agent does.
class Agent {
 public:
  Agent(Stack& stack, std::string name, int gpus);
  ~Agent();
  Status start();          // registers, then heartbeats
  void silence(bool on);   // stop (or resume) heartbeating
  void set_running(std::vector<uint64_t> leases);
  int registrations() const { return registrations_; }

 private:
  void loop();
  Stack& stack_;
  std::string name_;
  int gpus_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> silent_{false};
  std::atomic<int> registrations_{0};
  std::mutex mu_;
  std::vector<uint64_t> running_;
  std::thread thread_;
};

// What the watcher saw of one event.
struct Seen {
  std::string topic;
  uint64_t lease_id = 0;
  uint64_t job_id = 0;
  std::string node;
  std::vector<uint32_t> gpus;
  std::vector<std::string> nodes;
  uint32_t node_rank = 0;
  std::string reason;
  bool drained = false;
  bool has_spec = false;
};

// A durable subscriber to node.* and lease.* on a service loop of its own
// (a thread), recording every event it applies.
class Watcher {
 public:
  explicit Watcher(Stack& stack, std::vector<std::string> prefixes = {"node.", "lease."});
  ~Watcher();
  // Events whose topic ends with `suffix` (e.g. ".granted", "node.down"),
  // for `lease` when non-zero.
  std::vector<Seen> matching(const std::string& suffix, uint64_t lease = 0) const;
  size_t count(const std::string& suffix, uint64_t lease = 0) const { return matching(suffix, lease).size(); }
  // Waits until `n` matching events are seen (or `timeout_ms` passes).
  bool wait_for(const std::string& suffix, size_t n, uint64_t lease = 0, int timeout_ms = 10000) const;

 private:
  void run(zmq::context_t& ctx, std::string backend, std::vector<std::string> prefixes);
  TempDir dir_;
  mutable std::mutex mu_;
  std::vector<Seen> seen_;
  std::atomic<bool> ready_{false};
  std::atomic<bool> quit_{false};
  std::thread thread_;
};

// Publishes run.* for one node as its agent would (stream run.@<node>),
// serving replay on its own ROUTER, on a service loop of its own (a thread).
class RunPublisher {
 public:
  RunPublisher(Stack& stack, std::string node);
  ~RunPublisher();
  void started(uint64_t lease, uint64_t job);
  void finished(uint64_t lease, uint64_t job, fb::RunOutcome outcome, int exit_code);

 private:
  void run(zmq::context_t& ctx, std::string frontend);
  void post(std::function<void(bus::Publisher&, storage::Batch&)> fn);
  SystemClock clock_;
  std::string node_;
  TempDir dir_;
  std::mutex mu_;
  std::vector<std::function<void(bus::Publisher&, storage::Batch&)>> queue_;
  std::atomic<bool> ready_{false};
  std::atomic<bool> quit_{false};
  std::thread thread_;
};

}  // namespace trainyard::broker_test

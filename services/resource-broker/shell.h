// The resource broker's I/O shell: its ROUTER (RegisterNode, NodeHeartbeat,
// Allocate, ReleaseLease, DrainNode, ListNodes, Ping, replay), its RocksDB,
// its node./lease.<node>. streams, its run. subscription and the liveness
// timer. It feeds the Cluster core and writes what the core changed, with
// the events, into the loop's one WriteBatch; replies and events leave only
// after that batch is committed.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "bus/publisher.h"
#include "bus/subscriber.h"
#include "cloud_options.h"
#include "cloud_shell.h"
#include "core/cluster.h"
#include "rpc/server.h"
#include "security/audit.h"
#include "security/authz.h"
#include "security/directory_feed.h"
#include "storage/store.h"
#include "util/clock.h"
#include "util/config.h"
#include "util/run_service.h"

namespace trainyard {
class Runtime;
}

namespace trainyard::broker {

struct BrokerOptions {
  std::string endpoint = "tcp://127.0.0.1:5561";  // broker.endpoint
  std::string instance = "broker";                // broker.instance: names the streams (node.@broker)
  security::TrustSettings trust;                  // the directory's bootstrap and owner, the audit rate
  std::vector<std::string> bus_frontend;          // bus.frontend: where events go
  std::vector<std::string> bus_backend;           // bus.backend: where run.* comes from
  int64_t node_timeout_ms = 5000;                 // broker.node_timeout_ms
  int64_t liveness_check_ms = 0;                  // 0: node_timeout_ms / 10, within [20, 1000]
  int64_t stream_heartbeat_ms = 1000;             // broker.stream_heartbeat_ms
  uint64_t outbox_keep_events = 1'000'000;        // broker.outbox_keep_events (per stream)
  int64_t outbox_keep_age_s = 7 * 24 * 3600;      // broker.outbox_keep_age_s
  int64_t outbox_trim_ms = 10'000;                // broker.outbox_trim_ms
  int64_t keep_ended_s = 24 * 3600;               // broker.keep_ended_s: ended leases kept this long
  int64_t metrics_ms = 5000;                      // broker.metrics_ms: ops.metrics.resource-broker; 0: off
  std::string data = "data/broker";               // broker.data
  storage::Durability durability = storage::Durability::kWal;  // broker.durability
  CloudSettings cloud;                            // [cloud], [pools.<name>] (cloud_options.h)

  // Reads [broker], [bus], [cloud] and [pools.*]; InvalidArgument names a bad key.
  static Result<BrokerOptions> from_config(const Config& config);
  // Who this process is under CURVE (its key file, its streams).
  std::string principal() const { return "service:" + instance; }
};

struct BrokerStats {
  uint64_t registrations = 0;
  uint64_t heartbeats = 0;
  uint64_t allocations = 0;
  uint64_t conflicts = 0;
  uint64_t releases = 0;
};

class BrokerShell {
 public:
  using Options = BrokerOptions;
  static constexpr ServiceInfo kInfo{
      "resource-broker",
      "agents register their nodes and heartbeat here; schedulers Allocate leases on free GPUs. Publishes node.* and "
      "lease.<node>.*, subscribes run.*. Config keys: [broker] endpoint, data, node_timeout_ms, ...; [bus] "
      "frontend, backend (see services/resource-broker/README.md)."};
  static storage::Options store_options(const Options& o);

  // Binds the ROUTER, loads every node and lease from env.store, gives the
  // nodes a grace period of node_timeout (no heartbeat could arrive while
  // the broker was stopped) and hooks into env.runtime. Throws
  // std::runtime_error naming the record if the store holds something
  // unreadable, zmq::error_t if it cannot bind.
  BrokerShell(const ServiceEnv& env, BrokerOptions options);
  ~BrokerShell();
  nlohmann::json ready_info() const {
    return {{"endpoint", endpoint()}, {"instance", options_.instance}, {"data", options_.data}};
  }

  const std::string& endpoint() const { return server_.endpoint(); }
  const Cluster& cluster() const { return cluster_; }
  const BrokerStats& stats() const { return stats_; }
  const CloudShell& cloud() const { return *cloud_; }

 private:
  // Loads every node, then every lease (live ones take their GPUs on their
  // node again) and the next lease id; throws std::runtime_error naming an
  // unreadable record. Then gives the nodes their grace period (resume).
  void restore();
  // Hooks each request type to its on_* handler.
  void register_handlers();
  void attach(Runtime& runtime);
  Now now() const;
  // Writes the records `fx` names and appends its events, in `batch`.
  void apply(const Effects& fx, storage::Batch& batch);
  void on_ping(const fb::Request& req, rpc::Responder& r);
  Status node_rule(const rpc::Responder& r, std::string_view node, std::string_view what) const;
  Status scheduler_rule(const rpc::Responder& r, std::string_view what) const;
  void on_register(const fb::Request& req, rpc::Responder& r);
  void on_heartbeat(const fb::Request& req, rpc::Responder& r);
  void on_allocate(const fb::Request& req, rpc::Responder& r);
  void on_release(const fb::Request& req, rpc::Responder& r);
  void on_drain(const fb::Request& req, rpc::Responder& r);
  void on_list(const fb::Request& req, rpc::Responder& r);
  void on_cloud_status(const fb::Request& req, rpc::Responder& r) { cloud_->on_status(req, r); }
  void on_cloud_pause(const fb::Request& req, rpc::Responder& r) { cloud_->on_pause(req, r); }
  void on_run_event(const bus::Event& e, storage::Batch& batch);
  void publish_metrics(storage::Batch& batch);

  storage::Store& store_;
  storage::Cf nodes_cf_;
  storage::Cf leases_cf_;
  storage::Cf meta_cf_;
  BrokerOptions options_;
  const Clock& clock_;
  rpc::Server server_;
  bus::Publisher publisher_;
  std::unique_ptr<bus::Subscriber> subscriber_;
  Cluster cluster_;
  std::unique_ptr<security::DirectoryFeed> directory_;
  std::unique_ptr<CloudShell> cloud_;
  std::unique_ptr<security::AuditTrail> audit_;
  Runtime* runtime_ = nullptr;
  BrokerStats stats_;
};

}  // namespace trainyard::broker

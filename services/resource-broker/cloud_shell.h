// The broker's cloud part, the thin shell around CloudPools: it reads the
// waiting jobs from the scheduler (QueryJobs, asynchronously), runs the
// pools' drivers off the loop (DriverRunner), persists cloud leases in the
// "cloud" column family and publishes them on cloud.<pool>.<state>, and
// answers CloudStatus and CloudPause. With no [pools.*] it does nothing.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <zmq.hpp>

#include "bus/publisher.h"
#include "cloud_driver.h"
#include "cloud_options.h"
#include "core/cloud_pools.h"
#include "rpc/async_client.h"
#include "rpc/server.h"
#include "storage/store.h"
#include "util/clock.h"

namespace trainyard {
class Runtime;
}

namespace trainyard::broker {

// Where a rented node's agent finds the cluster (passed to the driver).
struct CloudBootstrap {
  std::string instance;                   // the broker's: tags instances
  std::function<std::string()> broker;    // the broker's endpoint (known once bound)
  std::vector<std::string> bus_frontend;
  std::vector<std::string> bus_backend;
};

struct CloudStats {
  uint64_t launches = 0;
  uint64_t launch_errors = 0;
  uint64_t terminates = 0;
  uint64_t orphans_terminated = 0;
  uint64_t driver_failures = 0;
  int64_t last_burst_latency_us = -1;  // burst-eligible (waiting list read) to launch request handed to the driver
};

class CloudShell {
 public:
  using ApplyCluster = std::function<void(const Effects&, storage::Batch&)>;

  CloudShell(zmq::context_t& ctx, storage::Store& store, CloudSettings settings, CloudBootstrap boot,
             bus::Publisher& publisher, Cluster& cluster, const Clock& clock, ApplyCluster apply_cluster);
  ~CloudShell();

  // Loads the stored leases and pause switches; throws std::runtime_error
  // naming an unreadable record.
  void restore();
  void attach(Runtime& runtime);
  bool enabled() const { return !settings_.pools.empty(); }

  void node_registered(std::string_view node, storage::Batch& batch);
  // Billing's account.budget: what `account` has left to rent with.
  // `job` reached an end state: its spot count and move records go.
  void job_ended(uint64_t job, storage::Batch& batch);
  void budget_changed(std::string_view account, int64_t spent_micros, int64_t limit_micros, storage::Batch& batch);
  void on_status(const fb::Request& req, rpc::Responder& r);
  void on_pause(const fb::Request& req, rpc::Responder& r);
  // cloud.* snapshot for a late subscriber: every lease not ended.
  void snapshot(flatbuffers::FlatBufferBuilder& b, const bus::EmitFn& emit) const;
  // Gauges for ops.metrics.resource-broker (name, value).
  std::vector<std::pair<std::string, double>> gauges() const;

  const CloudPools& pools() const { return core_; }
  const CloudStats& stats() const { return stats_; }

 private:
  struct PendingCall {
    DriverCall call;
    int64_t asked_ns = 0;
  };
  struct Estimate {
    std::string pool;
    int64_t cost_micros = 0;
    int64_t budget_left_micros = -1;
  };
  // CloudStatus.estimate_for: what renting for that job would cost.
  Estimate estimate(const fb::JobSpec* spec, std::string_view principal) const;
  void poll_waiting();
  void on_waiting(const rpc::Reply& reply);
  void plan(storage::Batch& batch);
  void on_driver_replies();
  void handle_reply(const PendingCall& pc, const Result<nlohmann::json>& reply, CloudEffects& fx);
  void apply(CloudEffects& fx, storage::Batch& batch);
  void start_call(const DriverCall& call);
  Result<nlohmann::json> request_for(const DriverCall& call) const;

  zmq::context_t& ctx_;
  storage::Store& store_;
  storage::Cf cloud_cf_;
  storage::Cf meta_cf_;
  CloudSettings settings_;
  CloudBootstrap boot_;
  bus::Publisher& publisher_;
  Cluster& cluster_;
  const Clock& clock_;
  ApplyCluster apply_cluster_;
  CloudPools core_;
  std::unique_ptr<rpc::AsyncClient> scheduler_;  // only with pools configured
  DriverRunner runner_;
  Runtime* runtime_ = nullptr;
  std::vector<WaitingJob> waiting_;
  bool query_in_flight_ = false;
  int64_t waiting_read_mono_us_ = 0;
  uint64_t next_tag_ = 1;
  std::map<uint64_t, PendingCall> calls_;
  CloudStats stats_;
  // The refusals last published on cloud.refused (none yet since this start:
  // the first plan publishes, as what a subscriber holds may be stale), then
  // republished when they change.
  std::optional<std::map<uint64_t, std::string>> published_refused_;
};

}  // namespace trainyard::broker

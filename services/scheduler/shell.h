// The scheduler's I/O shell: its ROUTER (SubmitJob, CancelJob, HoldJob,
// ReleaseJob, GetJob, QueryJobs, Ping), its job.* publisher, its subscriber
// to node.*, lease.*, run.* and account.*, its requests to the broker, and
// RocksDB. It feeds the core, stores what the core changed and publishes
// its events in the loop's batch, and talks to the broker only after that
// batch is committed. On start it rebuilds the core from RocksDB.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "bus/publisher.h"
#include "bus/subscriber.h"
#include "core/scheduler.h"
#include "notifier.h"
#include "rpc/async_client.h"
#include "rpc/server.h"
#include "security/audit.h"
#include "security/authz.h"
#include "security/directory_feed.h"
#include "storage/store.h"
#include "util/clock.h"
#include "util/config.h"
#include "util/run_service.h"
#include "util/runtime.h"

namespace trainyard::scheduler {

struct ShellOptions {
  std::string endpoint = "tcp://127.0.0.1:5560";  // scheduler.endpoint
  std::string data = "data/scheduler";            // scheduler.data
  std::string instance = "scheduler";             // scheduler.instance: names the job.@<instance> stream
  security::TrustSettings trust;                  // the directory's bootstrap and owner, the audit rate
  std::vector<std::string> bus_frontend{"tcp://127.0.0.1:5550"};
  std::vector<std::string> bus_backend{"tcp://127.0.0.1:5551"};
  std::string broker_endpoint = "tcp://127.0.0.1:5561";
  std::string broker_instance = "broker";  // broker.instance: whose key the broker must hold
  int64_t cycle_ms = 1000;                        // scheduler.cycle_ms: the periodic cycle
  int allocate_timeout_ms = 3000;                 // scheduler.allocate_timeout_ms
  int64_t query_page_bytes = 4 * 1024 * 1024;     // scheduler.query_page_bytes: most bytes in one QueryJobs reply
  storage::Durability durability = storage::Durability::kWal;
  std::string policy = "priority";
  SchedulerConfig core;
  NotifyOptions notify;                           // [notify]: job notifications

  // Reads [scheduler], [broker], [bus] and [notify]; errors name the key.
  static Result<ShellOptions> from_config(const Config& config);
  // Who this process is under CURVE (its key file, its streams).
  std::string principal() const { return "service:" + instance; }
};

// "30 days", "1 hour", "90 seconds": a retention period as users read it.
std::string retention_text(uint64_t seconds);

class SchedulerShell {
 public:
  using Options = ShellOptions;
  static constexpr ServiceInfo kInfo{
      "scheduler",
      "the job scheduler. Takes SubmitJob/CancelJob/HoldJob/ReleaseJob/GetJob/QueryJobs on its ROUTER "
      "(scheduler.endpoint), publishes job.*, follows node.*, lease.*, run.* and account.*, and asks the resource "
      "broker (broker.endpoint) for leases."};
  static storage::Options store_options(const Options& o);

  // Rebuilds the core from env.store, binds the ROUTER, connects to the bus
  // and the broker, and hooks into env.runtime. Throws zmq::error_t when
  // the endpoint cannot be bound.
  SchedulerShell(const ServiceEnv& env, ShellOptions options);
  ~SchedulerShell();

  nlohmann::json ready_info() const {
    return {{"endpoint", endpoint()},
            {"instance", options_.instance},
            {"stream", "job.@" + options_.instance},
            {"jobs", job_count()}};
  }
  const std::string& endpoint() const { return server_->endpoint(); }
  size_t job_count() const { return core_.job_count(); }

 private:
  void restore();
  // Nodes, leases and blocked accounts; counts what it read and what it could not.
  void restore_cluster(size_t* nodes, size_t* leases, size_t* bad);
  // Array specs and jobs; returns the jobs restored.
  size_t restore_jobs(size_t* bad);
  void restore_carried_usage(size_t* bad);  // purged jobs' fair-share usage
  void register_handlers();
  // Hooks the sockets, the commit steps and the timers (metrics, the cycle)
  // into the runtime.
  void attach();
  // ops.metrics.scheduler: the audit trail's, the notifier's and the bus's gauges.
  void publish_metrics(storage::Batch& batch);

  // Requests (shell_requests.cc).
  // Who asks, for the rules (security/authz.h).
  security::Caller caller(const rpc::Responder& r) const {
    return security::Caller::of(r.principal(), directory_->current());
  }
  // PermissionDenied unless the caller may manage job `id` (owner,
  // coordinator, admin); acting on another user's job is audited.
  Status may_manage(rpc::Responder& r, JobId id, std::string_view what) const;
  void on_submit(const fb::Request& req, rpc::Responder& r);
  void on_cancel(const fb::Request& req, rpc::Responder& r);
  void on_hold(const fb::Request& req, rpc::Responder& r);
  void on_release(const fb::Request& req, rpc::Responder& r);
  void on_requeue(const fb::Request& req, rpc::Responder& r);
  void on_get(const fb::Request& req, rpc::Responder& r);
  void on_query(const fb::Request& req, rpc::Responder& r);  // query.cc
  void on_ping(const fb::Request& req, rpc::Responder& r);
  PriorityFactors factors_of(const Job& j) const;
  // Events (shell_events.cc).
  void on_event(const bus::Event& e, storage::Batch& batch);
  // node.up / node.down / node.drained, and the stored node's flags.
  void on_node_event(const bus::Event& e, storage::Batch& batch);
  // account.blocked (billing's only): the core's block and the stored accounts row.
  void on_account_blocked(const bus::Event& e, int64_t now, storage::Batch& batch);
  // cloud.<pool>.<state>: which waiting jobs a booting cloud node is meant for (cloud_waits.cc).
  void on_cloud_lease(const bus::Event& e);
  void on_cloud_refusals(const bus::Event& e);
  // Why `j` waits (or ended): the core's reason, or the cloud node it waits for.
  std::string reason_for(const Job& j) const;

  // Cycle if due, then store and publish what the core changed (runs
  // before each commit).
  void settle();
  void publish_submitted(const std::vector<JobId>& submitted, storage::Batch& batch);
  void send_to_broker();
  void send_allocate(const AllocateRequest& a);
  void send_release(const ReleaseRequest& r);

  zmq::context_t& ctx_;
  ShellOptions options_;
  const Clock& clock_;
  storage::Store& store_;
  storage::Cf jobs_cf_, specs_cf_, nodes_cf_, leases_cf_, accounts_cf_, meta_cf_;
  Scheduler core_;
  Runtime& runtime_;
  std::unique_ptr<rpc::Server> server_;
  std::unique_ptr<bus::Publisher> publisher_;
  std::unique_ptr<bus::Subscriber> subscriber_;
  std::unique_ptr<rpc::AsyncClient> broker_;
  std::unique_ptr<security::DirectoryFeed> directory_;
  std::unique_ptr<security::AuditTrail> audit_;
  std::unique_ptr<Notifier> notifier_;
  std::vector<AllocateRequest> to_allocate_;
  std::vector<ReleaseRequest> to_release_;
  bool resend_releases_ = false;
  JobId stored_next_id_ = 0;
  int64_t last_broker_warning_ms_ = 0;
  flatbuffers::FlatBufferBuilder store_fbb_{1024};
  struct CloudWait {
    uint64_t lease = 0;
    std::string pool;
    int64_t expected_ready_ns = 0;
  };
  std::map<JobId, CloudWait> cloud_waits_;  // shown, not persisted: the broker republishes on change
  std::map<JobId, std::string> cloud_refused_;  // likewise: why no cloud node is rented for the job
};

}  // namespace trainyard::scheduler

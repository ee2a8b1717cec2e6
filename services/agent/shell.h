// The node agent's I/O shell: registers its node(s) with the broker, applies
// the lease.<node>.* stream, starts each run under a supervisor, enforces
// time limits and revocations, follows metrics files, samples resources, and
// publishes run.*, usage.* and metric.* on its own durable streams. Runs are
// kept in RocksDB so a restarted agent finds them again.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include <zmq.hpp>

#include "bus/publisher.h"
#include "bus/subscriber.h"
#include "core/line_splitter.h"
#include "core/run.h"
#include "host.h"
#include "nvml.h"
#include "rpc/async_client.h"
#include "rpc/server.h"
#include "security/audit.h"
#include "security/authz.h"
#include "security/directory_feed.h"
#include "storage/store.h"
#include "supervisor.h"
#include "terminal.h"
#include "util/clock.h"
#include "util/run_service.h"
#include "util/runtime.h"

namespace trainyard::agent {

struct JobUser;  // job_user.h

struct AgentOptions {
  std::string node;                          // this node (simulated: the prefix of its nodes' names)
  std::string broker_instance = "broker";    // broker.instance: whose lease streams it obeys
  bool run_as_submitter = true;              // agent.run_as: jobs as their user (when the agent is root)
  security::TrustSettings trust;             // the directory (who reads a run's logs), its owner, the audit rate
  uint32_t simulate = 0;                     // >0: act as that many simulated nodes
  std::string endpoint = "tcp://127.0.0.1:*";
  std::string runs_dir;                      // run directories: the job's logs and metrics file (job-writable)
  std::string state_dir;                     // run state (launch spec, start/exit records, lock): agent-only, 0700
  std::string broker_endpoint;
  std::vector<std::string> bus_frontend;
  std::vector<std::string> bus_backend;
  std::vector<HostGpu> gpus;
  bool gpus_from_nvml = false;               // sample GPU use through NVML
  std::string advertise_endpoint;            // reported to the broker; empty: the bound endpoint
  uint32_t cpus = 0;
  uint64_t memory_mb = 0;
  std::vector<std::pair<std::string, std::string>> labels;
  std::string partition;
  int64_t heartbeat_ms = 1000;
  int64_t usage_tick_ms = 10000;
  int64_t sample_ms = 5000;
  int64_t check_ms = 100;                    // time limits, grace periods, simulated ends
  int64_t keep_finished_s = 7 * 24 * 3600;   // finished runs stay readable (logs) this long
  size_t metrics_read_bytes = 256 * 1024;    // per run per loop iteration
  size_t metrics_batch_points = 20000;       // points per metric.batch at most
  // Per-run caps on what a job may report (past them points are dropped,
  // counted, and the job's stderr gets one warning per cap).
  uint32_t max_points_per_s = 20000;         // sustained rate (a burst of 60 s worth is allowed)
  uint32_t max_series_per_run = 1000;        // distinct metric names
  uint32_t max_metric_name_bytes = 200;
  std::string self_exe;                      // for the supervisor re-exec
  std::string cgroup_root = "auto";
  uint32_t max_grace_s = 300;                // no stop waits longer than this between SIGTERM and SIGKILL
  int64_t publisher_heartbeat_ms = 1000;
  int64_t ops_ms = 10000;                    // ops.metrics.agent every so often
  std::string data;                          // agent.data: the store, runs/ and run-state/ below it
  storage::Durability durability = storage::Durability::kWal;  // agent.durability

  // Reads [agent], [broker] and [bus] (options.cc); InvalidArgument names a
  // bad key.
  static Result<AgentOptions> from_config(const Config& config);
  // Who this process is under CURVE (its key file, its streams).
  std::string principal() const { return "agent:" + node; }
};

class AgentShell {
 public:
  using Options = AgentOptions;
  static constexpr ServiceInfo kInfo{
      "agent",
      "the node agent. Registers this node's GPUs, CPUs and memory with the resource broker, runs the jobs leased "
      "to it (each under its own supervisor, with only its GPUs visible), and publishes run events, usage ticks and "
      "metrics. Config keys: see services/agent/README.md."};
  static storage::Options store_options(const Options& o);

  // Finds the GPUs (agent.gpus, else NVML), prepares the run directories,
  // becomes the subreaper of what its runs leave behind, binds, recovers the
  // stored runs and hooks everything into env.runtime. Throws zmq::error_t
  // when the endpoint cannot be bound, std::runtime_error when a directory
  // cannot be made.
  AgentShell(const ServiceEnv& env, AgentOptions options);
  ~AgentShell();

  nlohmann::json ready_info() const {
    nlohmann::json j{{"endpoint", endpoint()}, {"node", options_.node}};
    if (options_.simulate > 0) j["nodes"] = nodes_;
    return j;
  }
  const std::string& endpoint() const { return server_.endpoint(); }
  const std::vector<std::string>& nodes() const { return nodes_; }

 private:
  // NVML when the host has it and the agent is not simulating; fills
  // options.gpus from it when none were declared.
  static std::unique_ptr<Nvml> find_gpus(AgentOptions& options);
  void prepare_host();
  void start();

  struct Run {
    RunRecord rec;
    std::string grant;                        // the LeaseGranted envelope (launch needs its spec)
    bool launch_due = false;                  // start the supervisor after this iteration's commit
    std::string launch_error;                 // launching failed: finish it as Failed
    bool our_child = false;                   // the supervisor is our child (started by this process)
    bool launched_here = false;               // started by this process: its start and end come by the notify pipe
    std::optional<JobExit> notified_exit;     // the supervisor's "E" notice
    bool warned_files = false;                // a job-writable file was refused (logged once per run)
    int64_t last_kill_ms = 0;                 // SIGKILL resent every second while it lingers
    std::unique_ptr<LineSplitter> splitter;   // metrics follower
    int metrics_fd = -1;
    bool metrics_eof = false;                 // last read hit the end of the file
    std::unordered_set<std::string> series;   // metric names seen (capped at max_series_per_run)
    double point_tokens = -1;                 // token bucket of max_points_per_s (-1: full)
    int64_t tokens_at_ns = 0;
    uint64_t dropped_points = 0;              // over a cap
    uint64_t prev_cpu_ns = 0;                 // resource sampling
    int64_t prev_sample_ns = 0;
    std::unique_ptr<Terminal> terminal;       // an interactive run's pty master (terminal_io.cc)
  };
  struct NodeState {
    bool registered = false;
    bool in_flight = false;
  };

  void recover();
  Run* find(uint64_t lease);
  void save(Run& run);
  void on_lease_event(const bus::Event& e, storage::Batch& batch);
  void on_granted(const fb::LeaseGranted& g, const bus::Event& e);
  void stop_run(Run& run, StopReason why, const std::string& message, uint32_t grace_s);
  void launch_due_runs();
  void launch(Run& run);
  LaunchSpec launch_spec_for(Run& run, const fb::LeaseGranted& grant, const std::string& workdir);
  // Writes the launch spec (with the job's terminal for a pty run) and starts
  // the run's supervisor as the job's user.
  Status start_run_supervisor(Run& run, const fb::LeaseGranted& grant, const std::string& workdir, const JobUser& user);
  std::string run_dir_for(const RunRecord& r) const;
  std::string state_dir_for(const RunRecord& r) const;
  // Creates the run's state directory and, exclusively, its run directory.
  Status prepare_run_dirs(const std::string& run_dir, const std::string& state_dir);
  // A job-writable file refused (a symlink, a FIFO...): counted, logged once per run.
  void refused_job_file(Run& run, const std::string& why);
  // Whether `name` = `value` of a metric line may become a point: a name too
  // long, past the series cap or past the rate cap is dropped (warned once
  // per cap in the job's stderr); a name that is not UTF-8 is repaired.
  bool admit_point(Run& run, std::string& name, int64_t now_ns);
  // Appends one warning line to the job's stderr, once per `bit` per run.
  void warn_job_once(Run& run, uint32_t bit, const std::string& message);
  // A pending run whose directory shows a supervisor started it (the agent
  // crashed before recording that).
  bool started_before_restart(const Run& run) const;
  void on_notify();
  void reap_children();
  void reap_pass();  // waits for what has ended; notes supervisors gone and orphans seen
  // What is left of a job whose supervisor died comes back to the agent (a
  // child subreaper): SIGKILL it all, leaving live supervisors' trees alone.
  void kill_orphans();
  void check_runs();
  void check_real_run(Run& run, int64_t now);
  void finish_from_exit(Run& run, const JobExit& ex, int64_t now);
  void mark_started(Run& run, const JobStarted& js);
  void finish(Run& run, int exit_code, int signal, int64_t end_ns, const std::string& reason);
  void publish_started(const Run& run);
  void publish_usage(Run& run, int64_t end_ns, bool final);
  void usage_ticks();
  bool follow_metrics();
  bool follow_one(Run& run, size_t budget);
  // Opens the run's metrics file; false when it is not there (yet), and a
  // finished run's metrics are then done.
  bool open_metrics(Run& run, bool finished);
  void warn_bad_line(Run& run, BadLine kind, uint64_t offset);
  void sample_resources();
  void heartbeat();
  void register_node(size_t i);
  void prune_finished();
  void publish_ops();
  void on_read_log(const fb::Request& req, rpc::Responder& r);
  // Interactive runs (spec.pty, terminal_io.cc): the pty whose slave the
  // supervisor gets, the TerminalIo request, and reading what jobs wrote.
  Status open_terminal(Run& run, const JobUser& user, int* slave_fd);
  void on_terminal_io(const fb::Request& req, rpc::Responder& r);
  void pump_terminals();
  std::vector<uint64_t> running_leases(const std::string& node) const;
  flatbuffers::Offset<fb::NodeInfo> node_info(flatbuffers::FlatBufferBuilder& b, const std::string& name) const;
  // This data directory's incarnation (NodeInfo.incarnation): read from the
  // store, or made and stored when the directory is new.
  uint64_t load_incarnation();

  zmq::context_t& ctx_;
  storage::Store& store_;
  Runtime& runtime_;
  AgentOptions options_;
  const Clock& clock_;
  std::unique_ptr<Nvml> nvml_;
  std::unique_ptr<Cgroups> cgroups_;
  storage::Cf runs_cf_;
  storage::Cf grants_cf_;
  storage::Cf meta_cf_;
  uint64_t incarnation_ = 0;
  rpc::Server server_;
  std::unique_ptr<bus::Publisher> publisher_;
  std::unique_ptr<bus::Subscriber> subscriber_;
  std::unique_ptr<security::DirectoryFeed> directory_;
  std::unique_ptr<security::AuditTrail> audit_;
  std::unique_ptr<rpc::AsyncClient> broker_;
  std::vector<std::string> nodes_;
  std::set<std::string, std::less<>> node_set_;
  std::vector<NodeState> node_state_;
  std::map<uint64_t, std::unique_ptr<Run>> runs_;
  std::vector<uint64_t> launch_queue_;
  int notify_read_ = -1;
  int notify_write_ = -1;
  std::string notify_buf_;
  std::vector<std::pair<std::string, std::string>> base_env_;
  std::string srun_dir_;                      // first on every job's PATH: srun (srun_dir.h)
  size_t metrics_cursor_ = 0;  // round-robin start among followed runs
  bool warned_cgroup_ = false;
  uint64_t job_files_refused_ = 0;
  uint64_t refused_leases_ = 0;  // lease events on a stream not the broker's
  bool orphans_seen_ = false;                 // reaped a child that was no supervisor
  bool warned_broker_ = false;
  int64_t heartbeat_slices_ = 1;
  int64_t heartbeat_slice_ = 0;
  std::vector<char> read_buf_;
};

}  // namespace trainyard::agent

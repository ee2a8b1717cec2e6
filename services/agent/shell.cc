// The agent's construction and its store: finding the GPUs, preparing the
// host, wiring sockets and timers into the runtime, recovering the stored runs
// and pruning the finished ones. The rest of AgentShell lives beside it:
// lease_events.cc, launch.cc, run_watch.cc, run_events.cc,
// metrics_follower.cc, sampler.cc, node_link.cc, read_log.cc, terminal_io.cc.
#include "shell.h"

#include <fcntl.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include <spdlog/spdlog.h>

#include "core/gpu_name.h"
#include "job_files.h"
#include "lease_key.h"
#include "srun_dir.h"

extern char** environ;

namespace trainyard::agent {
namespace {

bus::PublisherOptions publisher_options(const AgentOptions& o) {
  bus::PublisherOptions po;
  po.instance = o.node;
  po.bus_endpoints = o.bus_frontend;
  po.heartbeat_ms = o.publisher_heartbeat_ms;
  return po;
}

// The node's lease streams and the directory.
bus::SubscriberOptions lease_subscription(const AgentOptions& o) {
  bus::SubscriberOptions so;
  so.name = "agent " + o.node;
  so.bus_endpoints = o.bus_backend;
  if (o.simulate > 0) {
    // One prefix covers every simulated node ("lease.sim-" matches "lease.sim-42."): thousands of
    // prefixes would cost a scan per event, and a SUB socket drops subscriptions beyond its
    // send high-water mark when it connects.
    so.prefixes.push_back("lease." + o.node + "-");
  } else {
    so.prefixes.push_back("lease." + o.node + ".");
  }
  so.prefixes.emplace_back(security::kDirectoryPrefix);
  return so;
}

// The agent's own environment, which every job starts from.
std::vector<std::pair<std::string, std::string>> inherited_env() {
  std::vector<std::pair<std::string, std::string>> env;
  for (char** e = environ; e && *e; ++e) {
    std::string kv(*e);
    auto eq = kv.find('=');
    if (eq != std::string::npos) env.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
  }
  return env;
}

}  // namespace

storage::Options AgentShell::store_options(const Options& o) {
  return service_store({"runs", "grants", "meta", security::DirectoryFeed::kColumnFamily}, o.durability);
}

std::unique_ptr<Nvml> AgentShell::find_gpus(AgentOptions& o) {
  std::unique_ptr<Nvml> nvml;
  std::string why;
  if (o.simulate == 0) {
    auto loaded = Nvml::load();
    if (loaded) {
      nvml = std::move(*loaded);
    } else {
      why = loaded.status().message();
    }
  }
  if (!o.gpus.empty()) {
    spdlog::info("{} GPUs declared in the config", o.gpus.size());
  } else if (nvml) {
    for (auto& d : nvml->devices()) o.gpus.push_back(HostGpu{d.index, gpu_type_from_name(d.name), d.memory_mb, d.uuid});
    o.gpus_from_nvml = true;
    spdlog::info("{} GPUs found through NVML", o.gpus.size());
  } else if (o.simulate == 0) {
    spdlog::info("no GPUs: {} and none declared in agent.gpus", why);
  }
  return nvml;
}

void AgentShell::prepare_host() {
  std::error_code ec;
  std::filesystem::create_directories(options_.runs_dir, ec);
  if (ec) throw std::runtime_error("cannot create the runs directory " + options_.runs_dir + ": " + ec.message());
  // Run state (launch specs, start/exit records, locks): the agent's alone.
  if (auto s = ensure_private_dir(options_.state_dir); !s) {
    throw std::runtime_error("the run state directory: " + s.message());
  }
  // What is left of a job whose supervisor was killed comes back to the
  // agent, which kills it (kill_orphans).
  if (options_.simulate == 0) prctl(PR_SET_CHILD_SUBREAPER, 1);
}

AgentShell::AgentShell(const ServiceEnv& env, AgentOptions options)
    : ctx_(env.ctx),
      store_(env.store),
      runtime_(env.runtime),
      options_(std::move(options)),
      clock_(env.clock),
      nvml_(find_gpus(options_)),
      runs_cf_(store_.cf("runs")),
      grants_cf_(store_.cf("grants")),
      meta_cf_(store_.cf("meta")),
      server_(ctx_, options_.endpoint, "agent") {
  prepare_host();
  incarnation_ = load_incarnation();
  if (options_.simulate > 0) {
    for (uint32_t i = 0; i < options_.simulate; ++i) nodes_.push_back(options_.node + "-" + std::to_string(i));
  } else {
    nodes_.push_back(options_.node);
  }
  node_set_.insert(nodes_.begin(), nodes_.end());
  node_state_.resize(nodes_.size());

  publisher_ = std::make_unique<bus::Publisher>(ctx_, store_, server_, publisher_options(options_), clock_);
  directory_ = std::make_unique<security::DirectoryFeed>(store_, options_.trust.directory, options_.trust.directory_owner);
  subscriber_ = std::make_unique<bus::Subscriber>(ctx_, store_, lease_subscription(options_),
                                                  [this](const bus::Event& e, storage::Batch& batch) { on_lease_event(e, batch); });

  if (!options_.broker_endpoint.empty()) {
    broker_ = std::make_unique<rpc::AsyncClient>(ctx_, "broker", options_.broker_endpoint, 3000,
                                                 "service:" + options_.broker_instance);
  }
  server_.on(fb::RequestBody::ReadLog, [this](const fb::Request& req, rpc::Responder& r) { on_read_log(req, r); });
  server_.on(fb::RequestBody::TerminalIo, [this](const fb::Request& req, rpc::Responder& r) { on_terminal_io(req, r); });
  audit_ = std::make_unique<security::AuditTrail>(*publisher_, runtime_, clock_, options_.node,
                                                  options_.trust.audit_refusals_per_s);
  audit_->attach(server_);

  int fds[2];
  if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) throw std::runtime_error("pipe2 failed");
  notify_read_ = fds[0];
  notify_write_ = fds[1];
  base_env_ = inherited_env();
  if (options_.simulate == 0) {
    srun_dir_ = prepare_srun_dir(options_.data, options_.self_exe);
    auto cgroups = Cgroups::open(options_.cgroup_root);
    if (cgroups) {
      cgroups_ = std::move(*cgroups);
      spdlog::info("runs get a cgroup v2 each under {}: {}", cgroups_->root(), cgroups_->limits());
    } else {
      spdlog::info("runs get no cgroup limits: {}", cgroups.status().message());
    }
  }
  read_buf_.resize(std::max<size_t>(options_.metrics_read_bytes, 4096));
  start();
  spdlog::info("agent {} up: {} node(s), endpoint {}, broker {}", options_.node, nodes_.size(), endpoint(),
               options_.broker_endpoint);
}

AgentShell::~AgentShell() {
  for (auto& [lease, run] : runs_) {
    if (run->metrics_fd >= 0) ::close(run->metrics_fd);
  }
  if (notify_read_ >= 0) ::close(notify_read_);
  if (notify_write_ >= 0) ::close(notify_write_);
}

void AgentShell::start() {
  recover();
  runtime_.watch(server_.socket(), [this] { server_.poll_in(); });
  runtime_.after_commit([this] { server_.flush(); });
  publisher_->attach(runtime_);
  subscriber_->attach(runtime_);
  if (broker_) broker_->attach(runtime_);
  runtime_.watch_fd(notify_read_, [this] { on_notify(); });
  // Supervisors start only once the grant (and the cursor past it) is durable.
  runtime_.after_commit([this] { launch_due_runs(); });
  runtime_.every(options_.check_ms, [this] {
    reap_children();
    check_runs();
    pump_terminals();
  });
  runtime_.every(options_.usage_tick_ms, [this] { usage_ticks(); });
  if (options_.simulate == 0) runtime_.every(options_.sample_ms, [this] { sample_resources(); });
  // Simulated nodes heartbeat in slices spread over the period, not in one burst.
  heartbeat_slices_ = std::clamp<int64_t>(static_cast<int64_t>(nodes_.size()) / 100, 1, 10);
  runtime_.every(std::max<int64_t>(1, options_.heartbeat_ms / heartbeat_slices_), [this] { heartbeat(); });
  runtime_.every(60'000, [this] { prune_finished(); });
  runtime_.every(options_.ops_ms, [this] { publish_ops(); });
  runtime_.each_iteration([this] { return follow_metrics(); });
  check_runs();
  for (int64_t i = 0; i < heartbeat_slices_; ++i) heartbeat();  // register every node now
}

void AgentShell::recover() {
  size_t total = 0, live = 0;
  value_or_throw(store_.scan(runs_cf_, "", "", [&](std::string_view k, std::string_view v) {
    auto rec = decode_run(v);
    if (!rec) {
      spdlog::warn("skipping an unreadable run record ({} bytes) in {}", v.size(), store_.path());
      return true;
    }
    auto run = std::make_unique<Run>();
    run->rec = std::move(*rec);
    if (auto g = value_or_throw(store_.get(grants_cf_, k))) run->grant = std::move(*g);
    ++total;
    if (!run->rec.finished()) {
      ++live;
      if (!run->rec.simulated && run->rec.state == RunState::kPending) {
        // Granted but perhaps never started: launch() adopts it if it did.
        run->launch_due = true;
        launch_queue_.push_back(run->rec.lease_id);
      }
    }
    runs_.emplace(run->rec.lease_id, std::move(run));
    return true;
  }));
  if (total > 0) spdlog::info("recovered {} runs from {}, {} not finished", total, store_.path(), live);
}

AgentShell::Run* AgentShell::find(uint64_t lease) {
  auto it = runs_.find(lease);
  return it == runs_.end() ? nullptr : it->second.get();
}

void AgentShell::save(Run& run) { runtime_.batch().put(runs_cf_, lease_key(run.rec.lease_id), encode_run(run.rec)); }

void AgentShell::prune_finished() {
  int64_t now = clock_.now_ns();
  for (auto it = runs_.begin(); it != runs_.end();) {
    auto& r = it->second->rec;
    int64_t keep = r.simulated ? std::min<int64_t>(options_.keep_finished_s, 60) : options_.keep_finished_s;
    int64_t keep_ns = seconds_to_ns(static_cast<uint64_t>(std::max<int64_t>(0, keep)));
    if (r.finished() && r.metrics_done && now - r.end_ns > keep_ns) {
      runtime_.batch().del(runs_cf_, lease_key(r.lease_id));
      runtime_.batch().del(grants_cf_, lease_key(r.lease_id));
      if (!r.simulated) {
        std::error_code ec;
        std::filesystem::remove_all(state_dir_for(r), ec);
      }
      if (it->second->metrics_fd >= 0) ::close(it->second->metrics_fd);
      it = runs_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace trainyard::agent

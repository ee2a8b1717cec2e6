#include "shell.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <unordered_map>

#include <spdlog/spdlog.h>

#include "core/gpu_name.h"
#include "job_files.h"
#include "srun_dir.h"
#include "storage/keys.h"
#include "supervisor.h"
#include "text/utf8.h"

extern char** environ;

namespace trainyard::agent {

using storage::Key;

namespace {

std::string lease_key(uint64_t lease) { return Key().u64(lease).bytes(); }

// A metric.batch under construction: the names table and its points.
class PointBatch {
 public:
  void add(const std::string& name, int64_t step, int64_t time_ns, double value) {
    auto it = index_.find(name);
    uint32_t idx;
    if (it == index_.end()) {
      idx = static_cast<uint32_t>(names_.size());
      names_.push_back(name);
      index_.emplace(name, idx);
    } else {
      idx = it->second;
    }
    points_.emplace_back(step, time_ns, value, idx);
  }
  size_t size() const { return points_.size(); }
  bool empty() const { return points_.empty(); }
  // Appends the points as metric.batch events of at most `max` points each.
  void publish(bus::Publisher& pub, storage::Batch& batch, uint64_t job, uint32_t attempt,
               const std::string& experiment, size_t max) {
    for (size_t from = 0; from < points_.size(); from += max) {
      size_t to = std::min(points_.size(), from + max);
      auto& b = pub.builder();
      // Only the names these points use.
      std::vector<int64_t> remap(names_.size(), -1);
      std::vector<flatbuffers::Offset<flatbuffers::String>> names;
      std::vector<fb::MetricPoint> pts;
      pts.reserve(to - from);
      for (size_t i = from; i < to; ++i) {
        auto& p = points_[i];
        if (remap[p.name()] < 0) {
          remap[p.name()] = static_cast<int64_t>(names.size());
          names.push_back(b.CreateString(names_[p.name()]));
        }
        pts.emplace_back(p.step(), p.time_ns(), p.value(), static_cast<uint32_t>(remap[p.name()]));
      }
      auto n = b.CreateVector(names);
      auto v = b.CreateVectorOfStructs(pts);
      auto e = b.CreateString(experiment);
      auto mb = fb::CreateMetricBatch(b, job, attempt, n, v, e);
      pub.append(batch, "metric.batch", fb::Payload::MetricBatch, mb.Union());
    }
    points_.clear();
    names_.clear();
    index_.clear();
  }

 private:
  std::vector<std::string> names_;
  std::unordered_map<std::string, uint32_t> index_;
  std::vector<fb::MetricPoint> points_;
};

}  // namespace

storage::Options AgentShell::store_options(const Options& o) {
  return service_store({"runs", "grants", security::DirectoryFeed::kColumnFamily}, o.durability);
}

std::unique_ptr<Nvml> AgentShell::find_gpus(AgentOptions& o) {
  std::unique_ptr<Nvml> nvml;
  std::string why;
  if (o.simulate == 0) nvml = Nvml::load(&why);
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
      server_(ctx_, options_.endpoint, "agent") {
  prepare_host();
  if (options_.simulate > 0) {
    for (uint32_t i = 0; i < options_.simulate; ++i) nodes_.push_back(options_.node + "-" + std::to_string(i));
  } else {
    nodes_.push_back(options_.node);
  }
  node_set_.insert(nodes_.begin(), nodes_.end());
  node_state_.resize(nodes_.size());

  bus::PublisherOptions po;
  po.instance = options_.node;
  po.bus_endpoints = options_.bus_frontend;
  po.heartbeat_ms = options_.publisher_heartbeat_ms;
  publisher_ = std::make_unique<bus::Publisher>(ctx_, store_, server_, po, clock_);

  bus::SubscriberOptions so;
  so.name = "agent " + options_.node;
  so.bus_endpoints = options_.bus_backend;
  if (options_.simulate > 0) {
    // One prefix covers every simulated node ("lease.sim-" matches "lease.sim-42."): thousands of
    // prefixes would cost a scan per event, and a SUB socket drops subscriptions beyond its
    // send high-water mark when it connects.
    so.prefixes.push_back("lease." + options_.node + "-");
  } else {
    so.prefixes.push_back("lease." + options_.node + ".");
  }
  so.prefixes.emplace_back(security::kDirectoryPrefix);
  directory_ = std::make_unique<security::DirectoryFeed>(store_, options_.trust.directory, options_.trust.directory_owner);
  subscriber_ = std::make_unique<bus::Subscriber>(
      ctx_, store_, so, [this](const bus::Event& e, storage::Batch& batch) { on_lease_event(e, batch); });

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
  for (char** e = environ; e && *e; ++e) {
    std::string kv(*e);
    auto eq = kv.find('=');
    if (eq != std::string::npos) base_env_.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
  }
  if (options_.simulate == 0) {
    srun_dir_ = prepare_srun_dir(options_.data, options_.self_exe);
    std::string why;
    cgroups_ = Cgroups::open(options_.cgroup_root, &why);
    if (cgroups_) {
      spdlog::info("runs get cgroup v2 limits under {}", cgroups_->root());
    } else {
      spdlog::info("runs get no cgroup limits: {}", why);
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
  store_.scan(runs_cf_, "", "", [&](std::string_view k, std::string_view v) {
    auto rec = decode_run(v);
    if (!rec) {
      spdlog::warn("skipping an unreadable run record ({} bytes) in {}", v.size(), store_.path());
      return true;
    }
    auto run = std::make_unique<Run>();
    run->rec = std::move(*rec);
    if (auto g = store_.get(grants_cf_, k)) run->grant = std::move(*g);
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
  });
  if (total > 0) spdlog::info("recovered {} runs from {}, {} not finished", total, store_.path(), live);
}

AgentShell::Run* AgentShell::find(uint64_t lease) {
  auto it = runs_.find(lease);
  return it == runs_.end() ? nullptr : it->second.get();
}

void AgentShell::save(Run& run) { runtime_.batch().put(runs_cf_, lease_key(run.rec.lease_id), encode_run(run.rec)); }

void AgentShell::on_lease_event(const bus::Event& e, storage::Batch& batch) {
  if (directory_->apply(e, batch)) return;
  // Grants and revocations come from the broker's streams only: under CURVE
  // the forwarder let only service:<broker.instance> publish there.
  if (e.stream().substr(e.stream().rfind('@') + 1) != options_.broker_instance) {
    ++refused_leases_;
    spdlog::warn("ignored {} on stream {}: leases come from the broker ({}) only", e.topic, e.stream(),
                 options_.broker_instance);
    return;
  }
  switch (e.type()) {
    case fb::Payload::LeaseGranted: {
      auto* g = e.as<fb::LeaseGranted>();
      if (!g || !g->node() || !node_set_.count(g->node()->string_view())) return;
      on_granted(*g, e);
      return;
    }
    case fb::Payload::LeaseRevoked: {
      auto* r = e.as<fb::LeaseRevoked>();
      Run* run = r ? find(r->lease_id()) : nullptr;
      if (!run || run->rec.finished()) return;
      std::string why = r->reason() ? r->reason()->str() : std::string();
      bool preempt = why.find("preempt") != std::string::npos;
      stop_run(*run, preempt ? StopReason::kPreempted : StopReason::kRevoked,
               "revoked" + (why.empty() ? std::string() : ": " + why), r->grace_s());
      return;
    }
    case fb::Payload::LeaseReleased:
    case fb::Payload::LeaseLost: {
      bool lost = e.type() == fb::Payload::LeaseLost;
      uint64_t lease = lost ? e.as<fb::LeaseLost>()->lease_id() : e.as<fb::LeaseReleased>()->lease_id();
      Run* run = find(lease);
      if (!run || run->rec.finished()) return;
      if (run->rec.state == RunState::kPending && !started_before_restart(*run)) {
        // Replayed history: the lease ended before this agent ever started it.
        run->launch_due = false;
        run->rec.state = RunState::kFinished;
        run->rec.reason = lost ? "lease lost before the run started" : "lease released before the run started";
        run->rec.metrics_done = true;
        save(*run);
        return;
      }
      stop_run(*run, lost ? StopReason::kLost : StopReason::kRevoked,
               lost ? "the broker declared the lease lost" : "the lease was released", lost ? 0 : run->rec.grace_s);
      return;
    }
    default:
      return;
  }
}

void AgentShell::on_granted(const fb::LeaseGranted& g, const bus::Event& e) {
  if (find(g.lease_id())) return;  // a grant seen twice (replay) starts nothing twice
  auto run = std::make_unique<Run>();
  RunRecord& r = run->rec;
  int64_t now = clock_.now_ns();
  r.lease_id = g.lease_id();
  r.job_id = g.job_id();
  r.attempt = g.attempt();
  r.array_index = g.array_index();
  r.node = g.node()->str();
  r.simulated = options_.simulate > 0;
  r.granted_ns = now;
  if (g.gpu_indices()) r.gpu_indices.assign(g.gpu_indices()->begin(), g.gpu_indices()->end());
  r.gpus = static_cast<uint32_t>(r.gpu_indices.size());
  r.cpus = g.cpus();
  r.memory_mb = g.memory_mb();
  r.gpu_type = g.gpu_type() ? g.gpu_type()->str() : std::string();
  if (r.gpu_type.empty() && !r.gpu_indices.empty()) {
    for (auto& gpu : options_.gpus) {
      if (gpu.index == r.gpu_indices[0]) r.gpu_type = gpu.type;
    }
  }
  r.partition = options_.partition;
  if (auto* spec = g.spec()) {
    if (spec->account()) r.account = spec->account()->str();
    if (spec->user()) r.user = spec->user()->str();
    if (spec->partition() && spec->partition()->size() > 0) r.partition = spec->partition()->str();
    if (spec->experiment()) r.experiment = spec->experiment()->str();
    r.grace_s = capped_grace_s(spec->grace_s(), options_.max_grace_s);
    r.time_limit_s = spec->time_limit_s();
    if (r.simulated) {
      // Up to about 31 years (and NaN as 0): beyond, the double would not fit an int64 of ns.
      double d = spec->sim_duration_s() > 0 ? std::min(spec->sim_duration_s(), 1e9) : 0.0;
      r.sim_end_ns = add_ns(now, static_cast<int64_t>(d * 1e9));
      if (spec->env()) {
        for (auto* kv : *spec->env()) {
          if (kv->key() && kv->value() && kv->key()->string_view() == "TY_SIM_EXIT_CODE") {
            r.sim_exit_code = std::atoi(kv->value()->c_str());
          }
        }
      }
    }
  }
  run->grant.assign(reinterpret_cast<const char*>(e.bytes.data()), e.bytes.size());
  runtime_.batch().put(grants_cf_, lease_key(r.lease_id), run->grant);
  if (r.simulated) {
    r.state = RunState::kRunning;
    r.start_ns = now;
    r.usage_until_ns = now;
    if (r.time_limit_s > 0) r.deadline_ns = add_ns(now, seconds_to_ns(r.time_limit_s));
    r.metrics_done = true;
    publish_started(*run);
  } else {
    run->launch_due = true;
    launch_queue_.push_back(r.lease_id);
  }
  save(*run);
  spdlog::debug("lease {} granted: job {} attempt {} on {}", r.lease_id, r.job_id, r.attempt, r.node);
  runs_.emplace(r.lease_id, std::move(run));
}

void AgentShell::stop_run(Run& run, StopReason why, const std::string& message, uint32_t grace_s) {
  auto& r = run.rec;
  if (r.finished()) return;
  int64_t now = clock_.now_ns();
  grace_s = capped_grace_s(grace_s, options_.max_grace_s);
  if (r.state == RunState::kStopping) {
    // Asked again (a revoke after the time limit...): keep the first reason, the sooner kill.
    r.kill_at_ns = std::min(r.kill_at_ns, add_ns(now, seconds_to_ns(grace_s)));
    save(run);
    return;
  }
  r.stop_reason = why;
  r.stop_message = message;
  if (r.simulated) {
    finish(run, -1, SIGTERM, now, message);
    return;
  }
  if (r.state == RunState::kPending && started_before_restart(run)) launch(run);  // adopt it, then stop it
  if (r.state == RunState::kPending) {
    // Not started yet: nothing to kill.
    run.launch_due = false;
    finish(run, -1, 0, now, message + " before it started");
    return;
  }
  r.state = RunState::kStopping;
  r.kill_at_ns = add_ns(now, seconds_to_ns(grace_s));
  if (r.supervisor_pid > 1 && (run.our_child || supervisor_alive(state_dir_for(r)))) {
    ::kill(r.supervisor_pid, grace_s == 0 ? SIGUSR1 : SIGTERM);
    if (grace_s == 0) run.last_kill_ms = monotonic_ms();
  }
  spdlog::info("stopping job {} (lease {}): {}; SIGKILL in {} s", r.job_id, r.lease_id, message, grace_s);
  save(run);
}

void AgentShell::check_runs() {
  on_notify();  // an end already in the pipe is seen before its reaped supervisor counts as died
  int64_t now = clock_.now_ns();
  for (auto& [lease, run] : runs_) {
    auto& r = run->rec;
    if (r.finished()) continue;
    if (!run->launch_error.empty()) {
      spdlog::error("job {} (lease {}) could not start: {}", r.job_id, r.lease_id, run->launch_error);
      if (r.run_dir.empty()) r.metrics_done = true;  // no metrics file to follow: prunable later
      finish(*run, 127, 0, now, "could not start: " + run->launch_error);
      continue;
    }
    if (!r.simulated) {
      check_real_run(*run, now);
      continue;
    }
    if (r.deadline_ns > 0 && r.deadline_ns < r.sim_end_ns && now >= r.deadline_ns) {
      r.stop_reason = StopReason::kTimeLimit;
      finish(*run, -1, SIGKILL, r.deadline_ns, "time limit of " + std::to_string(r.time_limit_s) + " s reached");
    } else if (now >= r.sim_end_ns) {
      finish(*run, r.sim_exit_code, 0, r.sim_end_ns, exit_reason(r.sim_exit_code, 0));
    }
  }
}

void AgentShell::publish_started(const Run& run) {
  auto& r = run.rec;
  auto& b = publisher_->builder();
  auto node = b.CreateString(r.node);
  auto ev = fb::CreateRunStarted(b, r.lease_id, r.job_id, r.attempt, node, r.job_pid, r.start_ns);
  publisher_->append(runtime_.batch(), "run.started", fb::Payload::RunStarted, ev.Union());
}

void AgentShell::publish_usage(Run& run, int64_t end_ns, bool final) {
  auto& r = run.rec;
  auto tick = next_usage_tick(r.usage_until_ns, end_ns);
  if (!tick && !final) return;
  int64_t start = r.usage_until_ns;
  int64_t end = tick ? tick->second : r.usage_until_ns;
  auto& b = publisher_->builder();
  auto account = b.CreateString(r.account);
  auto user = b.CreateString(r.user);
  auto partition = b.CreateString(r.partition);
  auto node = b.CreateString(r.node);
  auto gpu_type = b.CreateString(r.gpu_type);
  auto ev = fb::CreateUsageTick(b, r.lease_id, r.job_id, account, user, partition, node, gpu_type, r.gpus, r.cpus,
                                r.memory_mb, start, end, final);
  publisher_->append(runtime_.batch(), "usage.tick", fb::Payload::UsageTick, ev.Union());
  r.usage_until_ns = end;
}

void AgentShell::finish(Run& run, int exit_code, int signal, int64_t end_ns, const std::string& reason) {
  auto& r = run.rec;
  if (r.finished()) return;
  r.outcome = decide_outcome(r.stop_reason, exit_code, signal);
  r.exit_code = exit_code;
  r.signal = signal;
  if (r.start_ns > 0) {
    // The final tick closes the tiling; a tick already past the reported end
    // moves the end (by at most one check period) so the sum stays exact.
    r.end_ns = std::max(end_ns, r.usage_until_ns);
    publish_usage(run, r.end_ns, true);
  } else {
    r.end_ns = end_ns;
  }
  r.reason = reason;
  r.state = RunState::kFinished;
  run.launch_due = false;
  auto& b = publisher_->builder();
  auto node = b.CreateString(r.node);
  auto why = b.CreateString(reason);
  auto ev = fb::CreateRunFinished(b, r.lease_id, r.job_id, r.attempt, node, r.outcome, exit_code, signal, r.end_ns, why);
  publisher_->append(runtime_.batch(), "run.finished", fb::Payload::RunFinished, ev.Union());
  save(run);
  if (!r.simulated) {
    spdlog::info("job {} attempt {} finished (lease {}): {} ({})", r.job_id, r.attempt, r.lease_id,
                 fb::EnumNameRunOutcome(r.outcome), reason);
  }
}

void AgentShell::usage_ticks() {
  int64_t now = clock_.now_ns();
  for (auto& [lease, run] : runs_) {
    auto& r = run->rec;
    if (r.finished() || r.start_ns == 0) continue;
    int64_t end = now;
    if (r.simulated) {
      // A simulated run ends exactly at its declared end, not when a check notices.
      end = std::min(end, r.sim_end_ns);
      if (r.deadline_ns > 0) end = std::min(end, r.deadline_ns);
    }
    if (end <= r.usage_until_ns) continue;
    publish_usage(*run, end, false);
    save(*run);
  }
}

bool AgentShell::follow_metrics() {
  bool more = false;
  for (auto& [lease, run] : runs_) {
    auto& r = run->rec;
    if (r.simulated || r.metrics_done || r.run_dir.empty() || r.state == RunState::kPending) continue;
    more |= follow_one(*run, options_.metrics_read_bytes);
  }
  return more;
}

bool AgentShell::follow_one(Run& run, size_t budget) {
  auto& r = run.rec;
  bool finished = r.finished();
  if (!run.splitter) run.splitter = std::make_unique<LineSplitter>(kMaxMetricLineBytes, r.metrics_offset, r.metrics_skipping);
  if (run.metrics_fd < 0) {
    std::string why;
    int err = 0;
    run.metrics_fd = open_job_file(r.metrics_path, O_RDONLY, &why, &err);
    if (run.metrics_fd < 0 && err != ENOENT) refused_job_file(run, why);
    if (run.metrics_fd < 0) {
      if (finished) {
        r.metrics_done = true;
        save(run);
      }
      return false;
    }
  }
  // Unchanged file and still running: nothing to do until it grows.
  if (run.metrics_eof && !finished) {
    struct stat st;
    if (::fstat(run.metrics_fd, &st) == 0 && static_cast<uint64_t>(st.st_size) <= run.splitter->next_read()) return false;
  }
  budget = std::min(budget, read_buf_.size());
  ssize_t n = ::pread(run.metrics_fd, read_buf_.data(), budget, static_cast<off_t>(run.splitter->next_read()));
  if (n < 0) n = 0;
  run.metrics_eof = static_cast<size_t>(n) < budget;
  int64_t now = clock_.now_ns();
  PointBatch points;
  uint64_t bad_before = 0;
  for (auto c : r.bad_lines) bad_before += c;
  auto on_line = [&](std::string_view line, uint64_t offset) {
    MetricLine m = parse_metric_line(line);
    if (m.bad != BadLine::kNone) {
      ++r.bad_lines[static_cast<size_t>(m.bad)];
      warn_bad_line(run, m.bad, offset);
      return;
    }
    // A "time" beyond year 2255 (or before 1970) is a unit mistake: use the read time.
    bool time_ok = m.has_time && m.time_s >= 0 && m.time_s < 9.0e9;
    int64_t t = time_ok ? static_cast<int64_t>(m.time_s * 1e9) : now;
    for (auto& [name, value] : m.values) {
      if (admit_point(run, name, now)) points.add(name, m.step, t, value);
    }
  };
  auto on_too_long = [&](uint64_t offset) {
    ++r.bad_lines[static_cast<size_t>(BadLine::kTooLong)];
    warn_bad_line(run, BadLine::kTooLong, offset);
  };
  uint64_t before = run.splitter->consumed();
  bool was_skipping = run.splitter->skipping();
  if (n > 0) run.splitter->feed(std::string_view(read_buf_.data(), static_cast<size_t>(n)), on_line, on_too_long);
  if (n == 0 && finished) {
    run.splitter->finish(on_line, on_too_long);
    r.metrics_done = true;
    ::close(run.metrics_fd);
    run.metrics_fd = -1;
    uint64_t bad = 0;
    for (auto c : r.bad_lines) bad += c;
    spdlog::info("job {} attempt {}: {} metric points, {} bad lines skipped, {} points over a cap dropped", r.job_id,
                 r.attempt, r.points + points.size(), bad, run.dropped_points);
  }
  uint64_t bad_after = 0;
  for (auto c : r.bad_lines) bad_after += c;
  if (!points.empty()) {
    r.points += points.size();
    points.publish(*publisher_, runtime_.batch(), r.job_id, r.attempt, r.experiment, options_.metrics_batch_points);
  }
  if (run.splitter->consumed() != before || run.splitter->skipping() != was_skipping || r.metrics_done ||
      bad_after != bad_before) {
    r.metrics_offset = run.splitter->consumed();
    r.metrics_skipping = run.splitter->skipping();
    save(run);
  }
  return static_cast<size_t>(n) == budget;
}

void AgentShell::warn_bad_line(Run& run, BadLine kind, uint64_t offset) {
  warn_job_once(run, 1u << static_cast<uint32_t>(kind),
                "trainyard: skipped a line of the metrics file " + run.rec.metrics_path + " at byte " +
                    std::to_string(offset) + ": " + describe(kind) +
                    " (expected {\"step\": N, \"name\": number, ...}); further lines like it are skipped and "
                    "counted without a warning\n");
}

namespace {
// Warning bits past the BadLine kinds: one per cap.
constexpr uint32_t kWarnNameTooLong = 1u << 16;
constexpr uint32_t kWarnTooManySeries = 1u << 17;
constexpr uint32_t kWarnTooFast = 1u << 18;
}  // namespace

bool AgentShell::admit_point(Run& run, std::string& name, int64_t now_ns) {
  const auto& o = options_;
  auto drop = [&](uint32_t bit, const std::string& why) {
    ++run.dropped_points;
    warn_job_once(run, bit, "trainyard: dropped metric points: " + why + "; further points like them are dropped "
                            "and counted without a warning\n");
    return false;
  };
  if (name.size() > o.max_metric_name_bytes)
    return drop(kWarnNameTooLong, "a metric name is longer than " + std::to_string(o.max_metric_name_bytes) +
                                      " bytes (agent.max_metric_name_bytes)");
  if (!text::valid_utf8(name)) name = text::replace_invalid_utf8(name);  // kept, readable everywhere
  if (!run.series.contains(name)) {
    if (run.series.size() >= o.max_series_per_run)
      return drop(kWarnTooManySeries, "the job reports more than " + std::to_string(o.max_series_per_run) +
                                          " distinct metrics (agent.max_series_per_run)");
    run.series.insert(name);
  }
  // Token bucket: max_points_per_s sustained, a minute's worth of burst (a
  // job catching up its log at start is not a flood).
  double burst = 60.0 * o.max_points_per_s;
  if (run.point_tokens < 0) run.point_tokens = burst;
  if (run.tokens_at_ns > 0 && now_ns > run.tokens_at_ns)
    run.point_tokens = std::min(burst, run.point_tokens + (now_ns - run.tokens_at_ns) * 1e-9 * o.max_points_per_s);
  run.tokens_at_ns = now_ns;
  if (run.point_tokens < 1)
    return drop(kWarnTooFast, "the job reports more than " + std::to_string(o.max_points_per_s) +
                                  " points per second (agent.max_points_per_s)");
  run.point_tokens -= 1;
  return true;
}

void AgentShell::warn_job_once(Run& run, uint32_t bit, const std::string& msg) {
  auto& r = run.rec;
  if (r.warned_kinds & bit) return;
  r.warned_kinds |= bit;
  std::string why;
  int fd = open_job_file(r.stderr_path, O_WRONLY | O_APPEND | O_CREAT, &why);
  if (fd < 0) {
    refused_job_file(run, why);
    return;
  }
  (void)!::write(fd, msg.data(), msg.size());
  ::close(fd);
}

void AgentShell::sample_resources() {
  int64_t now = clock_.now_ns();
  for (auto& [lease, run] : runs_) {
    auto& r = run->rec;
    if (r.simulated || r.finished() || r.job_pid <= 0 || r.start_ns == 0) continue;
    RunResources res = sample_run(r.job_pid, r.cgroup);
    if (res.processes == 0) continue;
    PointBatch points;
    int64_t step = (now - r.start_ns) / 1'000'000;
    if (run->prev_sample_ns > 0 && now > run->prev_sample_ns && res.cpu_ns >= run->prev_cpu_ns) {
      double pct = static_cast<double>(res.cpu_ns - run->prev_cpu_ns) / static_cast<double>(now - run->prev_sample_ns) * 100;
      points.add("sys/cpu_percent", step, now, pct);
    }
    run->prev_cpu_ns = res.cpu_ns;
    run->prev_sample_ns = now;
    points.add("sys/rss_mb", step, now, static_cast<double>(res.rss_bytes) / (1024.0 * 1024.0));
    if (nvml_ && options_.gpus_from_nvml && !r.gpu_indices.empty()) {
      double util = 0, mem = 0;
      int n = 0;
      for (auto idx : r.gpu_indices) {
        if (auto s = nvml_->sample(idx)) {
          util += s->util_percent;
          mem += s->memory_used_mb;
          ++n;
        }
      }
      if (n > 0) {
        points.add("sys/gpu_util", step, now, util / n);
        points.add("sys/gpu_mem_mb", step, now, mem);
      }
    }
    points.publish(*publisher_, runtime_.batch(), r.job_id, r.attempt, r.experiment, options_.metrics_batch_points);
  }
}

std::vector<uint64_t> AgentShell::running_leases(const std::string& node) const {
  std::vector<uint64_t> out;
  for (auto& [lease, run] : runs_) {
    if (!run->rec.finished() && run->rec.node == node) out.push_back(lease);
  }
  return out;
}

flatbuffers::Offset<fb::NodeInfo> AgentShell::node_info(flatbuffers::FlatBufferBuilder& b,
                                                        const std::string& name) const {
  std::vector<flatbuffers::Offset<fb::GpuInfo>> gpus;
  for (auto& g : options_.gpus) {
    gpus.push_back(fb::CreateGpuInfoDirect(b, g.index, g.type.c_str(), g.memory_mb,
                                           (options_.simulate > 0 ? name + "-" + g.uuid : g.uuid).c_str()));
  }
  std::vector<flatbuffers::Offset<fb::KeyValue>> labels;
  for (auto& [k, v] : options_.labels) labels.push_back(fb::CreateKeyValueDirect(b, k.c_str(), v.c_str()));
  std::string ep = options_.advertise_endpoint.empty() ? server_.endpoint() : options_.advertise_endpoint;
  return fb::CreateNodeInfoDirect(b, name.c_str(), &gpus, options_.cpus, options_.memory_mb, &labels,
                                  options_.partition.c_str(), options_.simulate > 0, ep.c_str());
}

void AgentShell::register_node(size_t i) {
  node_state_[i].in_flight = true;
  const std::string& name = nodes_[i];
  auto leases = running_leases(name);
  broker_->send(
      fb::RequestBody::RegisterNode,
      [&](flatbuffers::FlatBufferBuilder& b) {
        auto info = node_info(b, name);
        auto l = b.CreateVector(leases);
        return fb::CreateRegisterNode(b, info, l).Union();
      },
      [this, i](Result<rpc::Reply> reply) {
        node_state_[i].in_flight = false;
        if (!reply) {
          if (!warned_broker_) {
            spdlog::warn("cannot register {} with the broker: {}; retrying every {} ms", nodes_[i],
                         reply.status().message(), options_.heartbeat_ms);
            warned_broker_ = true;
          }
          return;
        }
        node_state_[i].registered = true;
        if (warned_broker_ || options_.simulate == 0) spdlog::info("{} registered with the broker", nodes_[i]);
        warned_broker_ = false;
      });
}

void AgentShell::heartbeat() {
  if (!broker_) return;
  // One pass over the runs, not one per node: a simulated agent has thousands of each.
  std::unordered_map<std::string_view, std::vector<uint64_t>> by_node;
  for (auto& [lease, run] : runs_) {
    if (!run->rec.finished()) by_node[run->rec.node].push_back(lease);
  }
  static const std::vector<uint64_t> kNone;
  size_t slice = static_cast<size_t>(heartbeat_slice_++ % heartbeat_slices_);
  for (size_t i = slice; i < nodes_.size(); i += static_cast<size_t>(heartbeat_slices_)) {
    auto& st = node_state_[i];
    if (st.in_flight) continue;
    if (!st.registered) {
      register_node(i);
      continue;
    }
    st.in_flight = true;
    auto it = by_node.find(nodes_[i]);
    const auto& leases = it == by_node.end() ? kNone : it->second;
    broker_->send(
        fb::RequestBody::NodeHeartbeat,
        [&](flatbuffers::FlatBufferBuilder& b) {
          auto n = b.CreateString(nodes_[i]);
          auto l = b.CreateVector(leases);
          return fb::CreateNodeHeartbeat(b, n, l).Union();
        },
        [this, i](Result<rpc::Reply> reply) {
          node_state_[i].in_flight = false;
          if (reply) {
            warned_broker_ = false;
            return;
          }
          if (reply.status().code() == ErrorCode::NotFound) {
            spdlog::info("the broker does not know {}; registering again", nodes_[i]);
            node_state_[i].registered = false;
            register_node(i);
          } else if (!warned_broker_) {
            spdlog::warn("heartbeat of {} failed: {}", nodes_[i], reply.status().message());
            warned_broker_ = true;
          }
        });
  }
}

void AgentShell::publish_ops() {
  size_t running = 0, finished = 0;
  uint64_t points = 0, bad = 0;
  for (auto& [lease, run] : runs_) {
    auto& r = run->rec;
    (r.finished() ? finished : running) += 1;
    points += r.points;
    for (auto c : r.bad_lines) bad += c;
  }
  size_t registered = 0;
  for (auto& st : node_state_) registered += st.registered ? 1 : 0;
  auto& stats = publisher_->stats();
  auto& b = publisher_->builder();
  std::vector<flatbuffers::Offset<fb::Gauge>> g;
  auto gauge = [&](const char* name, double v) { g.push_back(fb::CreateGaugeDirect(b, name, v)); };
  gauge("runs_running", static_cast<double>(running));
  gauge("runs_kept_finished", static_cast<double>(finished));
  gauge("nodes", static_cast<double>(nodes_.size()));
  gauge("nodes_registered", static_cast<double>(registered));
  gauge("metric_points_of_kept_runs", static_cast<double>(points));
  gauge("bad_metric_lines_of_kept_runs", static_cast<double>(bad));
  gauge("job_files_refused", static_cast<double>(job_files_refused_));
  gauge("events_published", static_cast<double>(stats.published));
  gauge("lease_events_applied", static_cast<double>(subscriber_->stats().applied));
  gauge("lease_events_refused", static_cast<double>(refused_leases_));
  for (auto& [name, v] : audit_->gauges()) g.push_back(fb::CreateGaugeDirect(b, name.c_str(), v));
  gauge("directory_version", static_cast<double>(directory_->current().version));
  auto ev = fb::CreateOpsMetricsDirect(b, "agent", options_.node.c_str(), &g);
  publisher_->append(runtime_.batch(), "ops.metrics.agent", fb::Payload::OpsMetrics, ev.Union());
}

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

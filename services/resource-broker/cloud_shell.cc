#include "cloud_shell.h"

#include <algorithm>
#include <chrono>
#include <functional>
#include <stdexcept>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "cloud_keys.h"
#include "cloud_records.h"
#include "storage/keys.h"
#include "util/runtime.h"
#include "wire/fb_str.h"

namespace trainyard::broker {

namespace {

constexpr std::string_view kNextKey = "cloud_next_lease";
constexpr std::string_view kPausePrefix = "cloud_pause/";  // + pool ("" : global) -> "0"/"1" + reason
constexpr std::string_view kSpotPrefix = "cloud_spot/";  // + job (u64) -> u64: runs ended by spot notices
constexpr std::string_view kMovedPrefix = "cloud_moved/";  // + job (u64) -> "": moved from a rented node to owned ones
constexpr std::string_view kBudgetPrefix = "cloud_budget/";  // + account -> i64: micro-units left this month

// Reads the meta records "<prefix><job>" (job: a u64 key part), calling
// fn(job, value) for each well-formed one.
void scan_per_job(storage::Store& store, storage::Cf cf, std::string_view prefix,
                  const std::function<void(uint64_t, std::string_view)>& fn) {
  value_or_throw(store.scan(cf, prefix, std::string(prefix) + "\xff", [&](std::string_view k, std::string_view v) {
    storage::KeyReader r(k);
    (void)r.str();
    if (k.size() == prefix.size() + 1 + 8) fn(r.u64(), v);
    return true;
  }));
}

int64_t mono_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

bool waits_for_resources(std::string_view reason) {
  return reason.rfind("Resources", 0) == 0 || reason.rfind("Priority", 0) == 0 ||
         reason.rfind("waiting for cloud node", 0) == 0;
}

}  // namespace

CloudShell::CloudShell(zmq::context_t& ctx, storage::Store& store, CloudSettings settings, CloudBootstrap boot,
                       bus::Publisher& publisher, Cluster& cluster, const Clock& clock, ApplyCluster apply_cluster)
    : ctx_(ctx),
      store_(store),
      cloud_cf_(store.cf("cloud")),
      meta_cf_(store.cf("meta")),
      settings_(std::move(settings)),
      boot_(std::move(boot)),
      publisher_(publisher),
      cluster_(cluster),
      clock_(clock),
      apply_cluster_(std::move(apply_cluster)),
      core_(settings_.core, settings_.pools),
      runner_(settings_.driver_timeout_s * 1000) {}

CloudShell::~CloudShell() = default;

void CloudShell::restore() {
  for (auto& p : settings_.pools) {
    if (auto s = check_pool_keys(security::Site::current(), settings_.keys_dir(p.name), p); !s) {
      throw std::runtime_error(s.message());
    }
  }
  std::string error;
  value_or_throw(store_.scan(cloud_cf_, "", "", [&](std::string_view k, std::string_view v) {
    auto l = decode_cloud_lease(v);
    if (!l) {
      error = fmt::format("cloud lease {}: {}", storage::KeyReader(k).u64(), l.status().message());
      return false;
    }
    core_.restore(std::move(l).value());
    return true;
  }));
  if (!error.empty()) {
    throw std::runtime_error("the broker's store " + store_.path() + " holds an unreadable record (" + error + ")");
  }
  if (auto v = value_or_throw(store_.get(meta_cf_, kNextKey)); v && v->size() == 8) {
    core_.restore_next_id(storage::decode_u64(*v));
  }
  value_or_throw(store_.scan(
      meta_cf_, kPausePrefix, std::string(kPausePrefix) + "\xff", [&](std::string_view k, std::string_view v) {
        if (!v.empty()) core_.restore_pause(k.substr(kPausePrefix.size()), v[0] == '1', std::string(v.substr(1)));
        return true;
      }));
  scan_per_job(store_, meta_cf_, kSpotPrefix, [&](uint64_t job, std::string_view v) {
    if (v.size() == 8) core_.restore_spot_interruptions(job, static_cast<uint32_t>(storage::decode_u64(v)));
  });
  scan_per_job(store_, meta_cf_, kMovedPrefix, [&](uint64_t job, std::string_view) { core_.restore_moved(job); });
  value_or_throw(store_.scan(
      meta_cf_, kBudgetPrefix, std::string(kBudgetPrefix) + "\xff", [&](std::string_view k, std::string_view v) {
        if (v.size() == 8) {
          core_.set_budget_left(k.substr(kBudgetPrefix.size()), static_cast<int64_t>(storage::decode_u64(v)));
        }
        return true;
      }));
}

void CloudShell::job_ended(uint64_t job, storage::Batch& batch) {
  if (!core_.forget_job(job)) return;
  batch.del(meta_cf_, storage::Key().str(kSpotPrefix).u64(job).bytes());
  batch.del(meta_cf_, storage::Key().str(kMovedPrefix).u64(job).bytes());
}

void CloudShell::budget_changed(std::string_view account, int64_t spent_micros, int64_t limit_micros,
                                storage::Batch& batch) {
  std::string key = std::string(kBudgetPrefix) + std::string(account);
  if (limit_micros <= 0) {
    core_.set_budget_left(account, std::nullopt);
    batch.del(meta_cf_, key);
    return;
  }
  int64_t left = limit_micros - spent_micros;
  core_.set_budget_left(account, left);
  batch.put(meta_cf_, key, storage::encode_u64(static_cast<uint64_t>(left)));
}

void CloudShell::attach(Runtime& runtime) {
  runtime_ = &runtime;
  if (!enabled() && core_.leases().empty()) return;
  scheduler_ = std::make_unique<rpc::AsyncClient>(ctx_, "scheduler", settings_.scheduler, 3000,
                                                  settings_.scheduler_principal);
  scheduler_->attach(runtime);
  runtime.watch_fd(runner_.notify_fd(), [this] { on_driver_replies(); });
  CloudEffects fx;
  core_.resume(clock_.now_ns(), fx);
  core_.reconcile(fx);
  apply(fx, runtime.batch());
  runtime.every(settings_.poll_ms, [this] { poll_waiting(); });
  runtime.every(settings_.reconcile_s * 1000, [this] {
    CloudEffects f;
    core_.reconcile(f);
    apply(f, runtime_->batch());
  });
  spdlog::info("cloud: {} pools, {} leases remembered; waiting jobs read from {} every {} ms", settings_.pools.size(),
               core_.leases().size(), settings_.scheduler, settings_.poll_ms);
}

void CloudShell::poll_waiting() {
  if (query_in_flight_) return;
  query_in_flight_ = true;
  scheduler_->send(
      fb::RequestBody::QueryJobs,
      [](flatbuffers::FlatBufferBuilder& b) {
        std::vector<uint8_t> states{static_cast<uint8_t>(fb::JobState::Pending)};
        auto sv = b.CreateVector(states);
        fb::QueryJobsBuilder q(b);
        q.add_states(flatbuffers::Offset<flatbuffers::Vector<fb::JobState>>(sv.o));
        q.add_limit(10000);
        return q.Finish().Union();
      },
      [this](Result<rpc::Reply> r) {
        query_in_flight_ = false;
        if (r) {
          on_waiting(*r);
        } else {
          // Without a fresh list, plan on the last one: nothing idle is
          // released that a job was waiting for; boot timeouts still count.
          spdlog::debug("cloud: waiting jobs not read: {}", r.status().to_string());
        }
        plan(runtime_->batch());
      });
}

void CloudShell::on_waiting(const rpc::Reply& reply) {
  const auto* list = reply.body<fb::JobList>();
  waiting_.clear();
  waiting_read_mono_us_ = mono_us();
  if (!list || !list->jobs()) return;
  for (const auto* j : *list->jobs()) {
    if (!j || j->state() != fb::JobState::Pending) continue;
    WaitingJob w;
    w.id = j->job_id();
    if (const auto* s = j->spec()) {
      w.account = str(s->account());
      w.partition = str(s->partition());
      w.gpu_type = str(s->gpu_type());
      w.gpus_per_node = s->gpus_per_node();
      w.nodes = std::max<uint32_t>(1, s->nodes());
      w.time_limit_s = static_cast<int64_t>(std::min<uint64_t>(s->time_limit_s(), INT64_MAX));
    }
    w.submit_ns = j->submit_time_ns();
    w.expected_start_ns = j->expected_start_ns();
    w.waits_for_resources = waits_for_resources(str(j->reason()));
    waiting_.push_back(std::move(w));
  }
}

void CloudShell::plan(storage::Batch& batch) {
  CloudEffects fx;
  core_.plan(waiting_, cluster_, clock_.now_ns(), fx);
  bool launches = std::any_of(fx.calls.begin(), fx.calls.end(),
                              [](const DriverCall& c) { return c.kind == DriverCall::kLaunch; });
  apply(fx, batch);
  if (launches && waiting_read_mono_us_ > 0) stats_.last_burst_latency_us = mono_us() - waiting_read_mono_us_;
  if (published_refused_ != core_.refused()) {
    published_refused_ = core_.refused();
    auto& b = publisher_.builder();
    publisher_.append_to(batch, kCloudPrefix, kRefusedTopic, fb::Payload::CloudRefusals,
                         build_refusals(b, *published_refused_).Union());
  }
}

void CloudShell::node_registered(std::string_view node, storage::Batch& batch) {
  if (!core_.is_cloud_node(node)) return;
  CloudEffects fx;
  core_.node_registered(node, cluster_, clock_.now_ns(), fx);
  apply(fx, batch);
}

void CloudShell::apply(CloudEffects& fx, storage::Batch& batch) {
  Now now{clock_.now_ns(), std::chrono::duration_cast<std::chrono::nanoseconds>(
                               std::chrono::steady_clock::now().time_since_epoch())
                               .count()};
  for (auto& n : fx.interruptions) {
    if (n.move_to_owned()) {
      // Each run gets SIGTERM and its own grace, and its job is requeued
      // (a preemption: no retry spent) to start again on owned GPUs.
      for (uint64_t job : n.moved_jobs) batch.put(meta_cf_, storage::Key().str(kMovedPrefix).u64(job).bytes(), "");
      spdlog::info("cloud: node {}: {}", n.node, n.reason);
      cluster_.interrupt(n.node, 0, "cloud: " + n.reason, now, fx.cluster, fb::RevokeCause::Preemption);
      continue;
    }
    // Each run on the node gets SIGTERM now and the notice's time to end;
    // its job is requeued (a preemption: no retry spent) and counted.
    const CloudLease* cl = core_.lease_of_node(n.node);
    for (const Lease* l : cluster_.live_leases(n.node)) {
      if (!cl || !cl->spot) continue;
      core_.spot_interrupted(l->job_id);
      batch.put(meta_cf_, storage::Key().str(kSpotPrefix).u64(l->job_id).bytes(),
                storage::encode_u64(core_.spot_interruptions(l->job_id)));
    }
    spdlog::warn("cloud: node {}: {}", n.node, n.reason);
    cluster_.interrupt(n.node, n.deadline_ns, "cloud: " + n.reason, now, fx.cluster);
  }
  for (auto& [node, why] : fx.nodes_gone) cluster_.node_gone(node, why, now, fx.cluster);
  if (!fx.cluster.empty()) apply_cluster_(fx.cluster, batch);
  for (auto id : fx.leases) {
    const CloudLease* l = core_.lease(id);
    if (!l) continue;
    batch.put(cloud_cf_, storage::Key().u64(id).bytes(), encode_cloud_lease(*l));
    auto& b = publisher_.builder();
    auto payload = build_cloud_lease(b, *l);
    publisher_.append_to(batch, kCloudPrefix, cloud_topic(*l), fb::Payload::CloudLease, payload.Union());
    spdlog::info("cloud lease {} ({} node {}): {}{}", l->id, l->pool, l->node, to_string(l->state),
                 l->reason.empty() ? "" : ": " + l->reason);
  }
  if (!fx.leases.empty()) batch.put(meta_cf_, kNextKey, storage::encode_u64(core_.next_id()));
  if (fx.pauses) {
    auto put = [&](const std::string& pool, bool paused, const std::string& reason) {
      batch.put(meta_cf_, std::string(kPausePrefix) + pool, std::string(paused ? "1" : "0") + reason);
    };
    put("", core_.paused(), core_.pause_reason());
    for (auto& p : core_.pools()) put(p.name, core_.pool_state(p.name).paused, core_.pool_state(p.name).pause_reason);
  }
  for (auto& c : fx.calls) start_call(c);
}

}  // namespace trainyard::broker

#include "shell.h"

#include <algorithm>
#include <chrono>
#include <stdexcept>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "cloud_records.h"
#include "job/job_state.h"
#include "records.h"
#include "security/keys.h"
#include "security/site.h"
#include "storage/keys.h"
#include "util/page.h"
#include "util/runtime.h"
#include "wire.h"

namespace trainyard::broker {

namespace {

constexpr std::string_view kNextLeaseKey = "next_lease_id";
constexpr const char* kVersion = "0.1.0";

bus::PublisherOptions publisher_options(const BrokerOptions& o) {
  bus::PublisherOptions p;
  p.instance = o.instance;
  p.bus_endpoints = o.bus_frontend;
  p.heartbeat_ms = o.stream_heartbeat_ms;
  p.outbox_keep_events = o.outbox_keep_events;
  p.outbox_keep_age_s = o.outbox_keep_age_s;
  p.trim_every_ms = o.outbox_trim_ms;
  return p;
}

std::vector<uint64_t> ids_of(const flatbuffers::Vector<uint64_t>* v) {
  if (!v) return {};
  return {v->begin(), v->end()};
}

}  // namespace

Result<BrokerOptions> BrokerOptions::from_config(const Config& config) try {
  BrokerOptions o;
  o.endpoint = config.get_string("broker.endpoint", o.endpoint);
  o.instance = config.get_string("broker.instance", o.instance);
  auto trust = security::trust_from_config(config);
  if (!trust) return trust.status();
  o.trust = std::move(trust).value();
  o.bus_frontend = config.get_strings("bus.frontend", {"tcp://127.0.0.1:5550"});
  o.bus_backend = config.get_strings("bus.backend", {"tcp://127.0.0.1:5551"});
  o.node_timeout_ms = config.get_int("broker.node_timeout_ms", o.node_timeout_ms, 100, 86400000);
  o.liveness_check_ms = config.get_int("broker.liveness_check_ms", o.liveness_check_ms, 0, 3600000);
  o.stream_heartbeat_ms = config.get_int("broker.stream_heartbeat_ms", o.stream_heartbeat_ms, 10, 3600000);
  o.outbox_keep_events = static_cast<uint64_t>(
      config.get_int("broker.outbox_keep_events", static_cast<int64_t>(o.outbox_keep_events), 1, INT64_MAX));
  o.outbox_keep_age_s = config.get_int("broker.outbox_keep_age_s", o.outbox_keep_age_s, 1, INT64_MAX / 1'000'000'000);
  o.outbox_trim_ms = config.get_int("broker.outbox_trim_ms", o.outbox_trim_ms, 10, 86400000);
  o.metrics_ms = config.get_int("broker.metrics_ms", o.metrics_ms, 0, 86400000);
  o.keep_ended_s = config.get_int("broker.keep_ended_s", o.keep_ended_s, 1, INT64_MAX / 1'000'000'000);
  o.data = config.get_string("broker.data", o.data);
  auto d = storage::parse_durability("broker.durability", config.get_string("broker.durability", "wal"));
  if (!d) return d.status();
  o.durability = *d;
  auto cloud = CloudSettings::from_config(config);
  if (!cloud) return cloud.status();
  o.cloud = std::move(cloud).value();
  o.cloud.scheduler_instance = config.get_string("scheduler.instance", o.cloud.scheduler_instance);
  o.cloud.scheduler_principal = "service:" + o.cloud.scheduler_instance;
  return o;
} catch (const std::exception& e) {
  return Status::invalid(e.what());
}

storage::Options BrokerShell::store_options(const Options& o) {
  return service_store({"nodes", "leases", "meta", "cloud", security::DirectoryFeed::kColumnFamily}, o.durability);
}

BrokerShell::BrokerShell(const ServiceEnv& env, BrokerOptions options)
    : store_(env.store),
      nodes_cf_(store_.cf("nodes")),
      leases_cf_(store_.cf("leases")),
      meta_cf_(store_.cf("meta")),
      options_(std::move(options)),
      clock_(env.clock),
      server_(env.ctx, options_.endpoint, "resource-broker"),
      publisher_(env.ctx, store_, server_, publisher_options(options_), clock_),
      cluster_(ClusterOptions{options_.node_timeout_ms * 1'000'000}) {
  restore();

  directory_ = std::make_unique<security::DirectoryFeed>(store_, options_.trust.directory, options_.trust.directory_owner);
  options_.cloud.directory = [this]() -> const security::Directory& { return directory_->current(); };
  CloudBootstrap boot{options_.instance, [this] { return server_.endpoint(); }, options_.bus_frontend,
                      options_.bus_backend};
  cloud_ = std::make_unique<CloudShell>(env.ctx, store_, options_.cloud, std::move(boot), publisher_, cluster_, clock_,
                                        [this](const Effects& fx, storage::Batch& batch) { apply(fx, batch); });
  cloud_->restore();

  publisher_.set_snapshot([this](std::string_view prefix, flatbuffers::FlatBufferBuilder& b, const bus::EmitFn& emit) {
    if (prefix == kCloudPrefix) {
      cloud_->snapshot(b, emit);
      return;
    }
    for (const auto& e : snapshot_events(cluster_, prefix)) {
      auto w = build_event(b, e);
      emit(w.topic, w.type, w.payload);
    }
  });

  bus::SubscriberOptions so;
  so.name = "resource-broker";
  so.bus_endpoints = options_.bus_backend;
  so.prefixes = {"run.", "account.", std::string(security::kDirectoryPrefix)};
  // With pools, a job's end drops what the cloud part remembers of it.
  if (!options_.cloud.pools.empty()) so.prefixes.push_back("job.");
  // A replay from an agent that died blocks the loop: keep it well under
  // node_timeout so live nodes are never judged silent meanwhile.
  so.replay_timeout_ms = static_cast<int>(std::clamp<int64_t>(options_.node_timeout_ms / 5, 100, 2000));
  subscriber_ = std::make_unique<bus::Subscriber>(
      env.ctx, store_, so, [this](const bus::Event& e, storage::Batch& batch) { on_run_event(e, batch); });

  register_handlers();
  attach(env.runtime);
  audit_ = std::make_unique<security::AuditTrail>(publisher_, env.runtime, clock_, options_.instance,
                                                  options_.trust.audit_refusals_per_s);
  audit_->attach(server_);
  spdlog::info("resource broker {}: node timeout {} ms", options_.instance, options_.node_timeout_ms);
}

BrokerShell::~BrokerShell() = default;

void BrokerShell::restore() {
  // Nodes first: live leases take their GPUs on their node again.
  std::string error;
  value_or_throw(store_.scan(nodes_cf_, "", "", [&](std::string_view k, std::string_view v) {
    auto n = decode_node(v);
    if (!n) {
      error = fmt::format("node {}: {}", k, n.status().message());
      return false;
    }
    cluster_.restore_node(std::move(n).value());
    return true;
  }));
  if (error.empty()) {
    value_or_throw(store_.scan(leases_cf_, "", "", [&](std::string_view k, std::string_view v) {
      auto l = decode_lease(v);
      Status s = l ? cluster_.restore_lease(std::move(l).value()) : l.status();
      if (!s) {
        error = fmt::format("lease {}: {}", storage::KeyReader(k).u64(), s.message());
        return false;
      }
      return true;
    }));
  }
  if (!error.empty()) {
    throw std::runtime_error("the broker's store " + store_.path() + " holds an unreadable record (" + error +
                             "); restore it from a backup or move it away to start empty");
  }
  if (auto v = value_or_throw(store_.get(meta_cf_, kNextLeaseKey)); v && v->size() == 8) {
    cluster_.restore_next_lease_id(storage::decode_u64(*v));
  }
  cluster_.resume(now());
  if (!cluster_.nodes().empty()) {
    spdlog::info("resumed with {} nodes and {} live leases; nodes have {} ms to heartbeat", cluster_.nodes().size(),
                 cluster_.live_lease_count(), options_.node_timeout_ms);
  }
}

void BrokerShell::register_handlers() {
  using fb::RequestBody;
  auto bind = [this](RequestBody type, void (BrokerShell::*fn)(const fb::Request&, rpc::Responder&)) {
    server_.on(type, [this, fn](const fb::Request& req, rpc::Responder& r) { (this->*fn)(req, r); });
  };
  bind(RequestBody::Ping, &BrokerShell::on_ping);
  bind(RequestBody::RegisterNode, &BrokerShell::on_register);
  bind(RequestBody::NodeHeartbeat, &BrokerShell::on_heartbeat);
  bind(RequestBody::Allocate, &BrokerShell::on_allocate);
  bind(RequestBody::ReleaseLease, &BrokerShell::on_release);
  bind(RequestBody::DrainNode, &BrokerShell::on_drain);
  bind(RequestBody::ListNodes, &BrokerShell::on_list);
  bind(RequestBody::CloudStatus, &BrokerShell::on_cloud_status);
  bind(RequestBody::CloudPause, &BrokerShell::on_cloud_pause);
}

void BrokerShell::attach(Runtime& runtime) {
  runtime_ = &runtime;
  runtime.watch(server_.socket(), [this] { server_.poll_in(); });
  // Events first, then replies: whoever gets an ack can count on the event
  // being on its way.
  publisher_.attach(runtime);
  runtime.after_commit([this] { server_.flush(); });
  subscriber_->attach(runtime);
  cloud_->attach(runtime);
  int64_t check = options_.liveness_check_ms > 0 ? options_.liveness_check_ms
                                                 : std::clamp<int64_t>(options_.node_timeout_ms / 10, 20, 1000);
  runtime.every(check, [this] {
    // Read heartbeats that queued up while the loop was busy (e.g. a replay
    // from a dead agent) before judging anyone silent.
    server_.poll_in();
    Effects fx;
    cluster_.check_liveness(now(), fx);
    for (auto& e : fx.events) {
      if (e.kind == EventKind::kNodeDown) spdlog::warn("node {} is down: {}", e.node, e.reason);
    }
    apply(fx, runtime_->batch());
  });
  runtime.every(std::min<int64_t>(60'000, std::max<int64_t>(1000, options_.keep_ended_s * 100)), [this] {
    Effects fx;
    cluster_.forget_ended_before(clock_.now_ns() - options_.keep_ended_s * 1'000'000'000, 100'000, fx);
    apply(fx, runtime_->batch());
  });
  if (options_.metrics_ms > 0) runtime.every(options_.metrics_ms, [this] { publish_metrics(runtime_->batch()); });
}

Now BrokerShell::now() const {
  return Now{clock_.now_ns(), std::chrono::duration_cast<std::chrono::nanoseconds>(
                                  std::chrono::steady_clock::now().time_since_epoch())
                                  .count()};
}

void BrokerShell::apply(const Effects& fx, storage::Batch& batch) {
  for (const auto& name : fx.nodes) {
    if (const Node* n = cluster_.node(name)) batch.put(nodes_cf_, name, encode_node(*n));
  }
  for (auto id : fx.leases) {
    if (const Lease* l = cluster_.lease(id)) batch.put(leases_cf_, storage::Key().u64(id), encode_lease(*l));
  }
  for (auto id : fx.forgotten) batch.del(leases_cf_, storage::Key().u64(id));
  if (fx.lease_counter) batch.put(meta_cf_, kNextLeaseKey, storage::encode_u64(cluster_.next_lease_id()));
  for (const auto& e : fx.events) {
    auto w = build_event(publisher_.builder(), e);
    publisher_.append_to(batch, w.prefix, w.topic, w.type, w.payload);
  }
}

void BrokerShell::on_ping(const fb::Request&, rpc::Responder& r) {
  auto& b = r.builder();
  r.ok(fb::ReplyBody::Pong, fb::CreatePongDirect(b, "resource-broker", options_.instance.c_str(), kVersion).Union());
}

std::string_view str_of(const flatbuffers::String* s) { return s ? s->string_view() : std::string_view(); }

// Nodes register and heartbeat only as themselves (their agent's key), or
// through a service.
Status BrokerShell::node_rule(const rpc::Responder& r, std::string_view node, std::string_view what) const {
  auto c = security::Caller::of(r.principal(), directory_->current());
  if (!c.enforced() || c.service() || c.agent_of(node)) return Status::success();
  return c.refuse("node agents", std::string(what) + " node " + std::string(node));
}

// Leases are the schedulers' to take and give back.
Status BrokerShell::scheduler_rule(const rpc::Responder& r, std::string_view what) const {
  auto c = security::Caller::of(r.principal(), directory_->current());
  if (!c.enforced() || c.service()) return Status::success();
  return c.refuse("schedulers", what);
}

void BrokerShell::on_register(const fb::Request& req, rpc::Responder& r) {
  auto* q = req.body_as_RegisterNode();
  if (!q->node()) {
    r.error(Status::invalid("RegisterNode.node is missing: send the node's NodeInfo"));
    return;
  }
  if (auto s = node_rule(r, str_of(q->node()->name()), "register"); !s) return r.error(s);
  ++stats_.registrations;
  Effects fx;
  auto s = cluster_.register_node(std::shared_ptr<const fb::NodeInfoT>(q->node()->UnPack()),
                                  ids_of(q->running_leases()), now(), fx);
  if (!s) {
    r.error(s);
    return;
  }
  const Node* n = cluster_.node(q->node()->name()->string_view());
  size_t revoked = static_cast<size_t>(std::count_if(fx.events.begin(), fx.events.end(), [](const Event& e) {
    return e.kind == EventKind::kLeaseRevoked;
  }));
  spdlog::info("node {} registered: {} GPUs, {} CPUs, {} MiB, agent {}; {} leases live, {} reported running, {} of "
               "them revoked (not live here)",
               n->name(), n->info->gpus.size(), n->info->cpus, n->info->memory_mb, n->info->agent_endpoint,
               n->leases.size(), q->running_leases() ? q->running_leases()->size() : 0, revoked);
  apply(fx, runtime_->batch());
  cloud_->node_registered(n->name(), runtime_->batch());
  r.ok(fb::ReplyBody::Empty, fb::CreateEmpty(r.builder()).Union());
}

void BrokerShell::on_heartbeat(const fb::Request& req, rpc::Responder& r) {
  auto* q = req.body_as_NodeHeartbeat();
  if (!q->name()) {
    r.error(Status::invalid("NodeHeartbeat.name is missing: name the node"));
    return;
  }
  if (auto s = node_rule(r, q->name()->string_view(), "heartbeat as"); !s) return r.error(s);
  ++stats_.heartbeats;
  Effects fx;
  auto s = cluster_.heartbeat(q->name()->string_view(), ids_of(q->running_leases()), now(), fx);
  apply(fx, runtime_->batch());
  if (!s) {
    r.error(s);
    return;
  }
  r.ok(fb::ReplyBody::Empty, fb::CreateEmpty(r.builder()).Union());
}

void BrokerShell::on_allocate(const fb::Request& req, rpc::Responder& r) {
  auto* q = req.body_as_Allocate();
  if (auto s = scheduler_rule(r, "allocate GPUs"); !s) return r.error(s);
  Effects fx;
  auto ids = cluster_.allocate(read_allocate(*q), now(), fx);
  if (!ids) {
    if (ids.status().code() == ErrorCode::Conflict) ++stats_.conflicts;
    spdlog::debug("Allocate for job {} refused: {}", q->job_id(), ids.status().to_string());
    r.error(ids.status());
    return;
  }
  if (!fx.events.empty()) ++stats_.allocations;
  apply(fx, runtime_->batch());
  auto& b = r.builder();
  auto v = b.CreateVector(*ids);
  r.ok(fb::ReplyBody::Allocated, fb::CreateAllocated(b, ids->front(), v).Union());
}

void BrokerShell::on_release(const fb::Request& req, rpc::Responder& r) {
  auto* q = req.body_as_ReleaseLease();
  if (auto s = scheduler_rule(r, "release leases"); !s) return r.error(s);
  ++stats_.releases;
  Effects fx;
  auto s = cluster_.release(q->lease_id(), q->kill(), q->reason() ? q->reason()->string_view() : std::string_view(),
                            q->grace_s(), now(), fx,
                            q->cause() == fb::RevokeCause::Unknown ? fb::RevokeCause::Other : q->cause());
  if (!s) {
    r.error(s);
    return;
  }
  apply(fx, runtime_->batch());
  r.ok(fb::ReplyBody::Empty, fb::CreateEmpty(r.builder()).Union());
}

void BrokerShell::on_drain(const fb::Request& req, rpc::Responder& r) {
  auto* q = req.body_as_DrainNode();
  if (!q->name()) {
    r.error(Status::invalid("DrainNode.name is missing: name the node to drain"));
    return;
  }
  if (auto c = security::Caller::of(r.principal(), directory_->current());
      c.enforced() && !c.operator_() && !c.agent_of(q->name()->string_view())) {
    return r.error(c.refuse("operators", "drain or undrain node " + q->name()->str()));
  }
  Effects fx;
  auto s = cluster_.drain(q->name()->string_view(), q->drain(),
                          q->reason() ? q->reason()->string_view() : std::string_view(), fx);
  if (!s) {
    r.error(s);
    return;
  }
  if (!fx.events.empty()) {
    spdlog::info("node {} {}{}", q->name()->string_view(), q->drain() ? "drained" : "undrained",
                 q->reason() && q->reason()->size() ? ": " + q->reason()->str() : std::string());
  }
  if (security::principal_kind(r.principal()) == "user") {
    r.audit(std::string(q->drain() ? "drain" : "undrain") + " node " + q->name()->str());
  }
  apply(fx, runtime_->batch());
  r.ok(fb::ReplyBody::Empty, fb::CreateEmpty(r.builder()).Union());
}

void BrokerShell::on_list(const fb::Request& req, rpc::Responder& r) {
  auto* q = req.body_as_ListNodes();
  auto& b = r.builder();
  std::vector<flatbuffers::Offset<fb::NodeStatus>> rows;
  PageBudget page(q->page_bytes());
  const auto& nodes = cluster_.nodes();
  auto it = q->after_name() ? nodes.upper_bound(q->after_name()->string_view()) : nodes.begin();
  std::string_view last;
  for (; it != nodes.end(); ++it) {
    size_t before = b.GetSize();
    auto row = build_node_status(b, it->second);
    if (!page.admit(b.GetSize() - before)) break;  // the built row is left unreferenced
    rows.push_back(row);
    last = it->first;
  }
  auto v = b.CreateVector(rows);
  auto next = page.truncated() ? b.CreateString(last) : flatbuffers::Offset<flatbuffers::String>();
  r.ok(fb::ReplyBody::NodeList, fb::CreateNodeList(b, v, next, page.truncated()).Union());
}

void BrokerShell::on_run_event(const bus::Event& e, storage::Batch& batch) {
  if (directory_->apply(e, batch)) return;
  if (auto* b = e.as<fb::AccountBudget>()) {
    // Believed only from billing's own stream: any publisher may name a
    // topic account.budget on its stream.
    if (e.stream() == bus::stream_name("account.", options_.trust.directory_owner)) {
      cloud_->budget_changed(b->account() ? b->account()->string_view() : std::string_view(), b->spent_micros(),
                             b->limit_micros(), batch);
    }
    return;
  }
  if (e.stream().rfind("account.", 0) == 0) return;
  if (auto* j = e.as<fb::JobStateChanged>()) {
    // Believed only from the scheduler's own stream, as budgets from billing's.
    if (e.stream() == bus::stream_name("job.", options_.cloud.scheduler_instance) && is_terminal(j->to())) {
      cloud_->job_ended(j->job_id(), batch);
    }
    return;
  }
  if (e.stream().rfind("job.", 0) == 0) return;
  Effects fx;
  if (auto* f = e.as<fb::RunFinished>()) {
    std::string node = f->node() ? f->node()->str() : std::string();
    std::string reason = fmt::format("run finished: {}", fb::EnumNameRunOutcome(f->outcome()));
    if (f->signal() != 0) {
      reason += fmt::format(" (signal {})", f->signal());
    } else {
      reason += fmt::format(" (exit {})", f->exit_code());
    }
    cluster_.run_finished(f->lease_id(), node, reason, now(), fx);
  } else if (auto* s = e.as<fb::RunStarted>()) {
    cluster_.run_started(s->lease_id(), s->node() ? s->node()->string_view() : std::string_view(), fx);
  }
  apply(fx, batch);
}

void BrokerShell::publish_metrics(storage::Batch& batch) {
  size_t up = 0, drained = 0;
  for (const auto& [name, n] : cluster_.nodes()) {
    up += n.up ? 1 : 0;
    drained += n.drained ? 1 : 0;
  }
  bus::Gauges g;
  auto gauge = [&](const char* name, double v) { g.emplace_back(name, v); };
  gauge("nodes", static_cast<double>(cluster_.nodes().size()));
  gauge("nodes_up", static_cast<double>(up));
  gauge("nodes_drained", static_cast<double>(drained));
  gauge("gpus_total", static_cast<double>(cluster_.total_gpus()));
  gauge("gpus_free", static_cast<double>(cluster_.free_gpus()));
  gauge("leases_live", static_cast<double>(cluster_.live_lease_count()));
  gauge("allocations", static_cast<double>(stats_.allocations));
  gauge("conflicts", static_cast<double>(stats_.conflicts));
  gauge("registrations", static_cast<double>(stats_.registrations));
  if (cloud_->enabled()) {
    for (auto& kv : cloud_->gauges()) g.emplace_back(kv);
  }
  for (auto& kv : audit_->gauges()) g.emplace_back(kv);
  gauge("directory_version", static_cast<double>(directory_->current().version));
  bus::publish_ops_metrics(publisher_, batch, "resource-broker", options_.instance, g);
}

}  // namespace trainyard::broker

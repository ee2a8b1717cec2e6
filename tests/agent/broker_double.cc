#include "broker_double.h"

#include <chrono>
#include <stdexcept>

#include "bus/subscriber.h"
#include "rpc/server.h"
#include "util/clock.h"
#include "util/runtime.h"

namespace trainyard::testing {

BrokerDouble::BrokerDouble(const std::string& data_dir, const std::string& bus_frontend, const std::string& bus_backend) {
  thread_ = std::thread([=, this] { loop(data_dir, bus_frontend, bus_backend); });
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!ready_) {
    if (std::chrono::steady_clock::now() > deadline) throw std::runtime_error("broker double did not start");
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

BrokerDouble::~BrokerDouble() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void BrokerDouble::loop(const std::string& data_dir, const std::string& frontend, const std::string& backend) {
  std::vector<std::string> cfs = bus::Publisher::column_families();
  for (auto& c : bus::Subscriber::column_families()) cfs.push_back(c);
  auto store = storage::Store::open(data_dir, storage::Options{cfs, {}, storage::Durability::kWal});
  if (!store) throw std::runtime_error(store.status().message());
  zmq::context_t ctx(1);
  SystemClock clock;
  Runtime runtime(store->get());
  rpc::Server server(ctx, "tcp://127.0.0.1:*", "broker");
  bus::PublisherOptions po;
  po.instance = "broker";
  po.bus_endpoints = {frontend};
  po.heartbeat_ms = 200;
  bus::Publisher pub(ctx, **store, server, po, clock);
  bus::SubscriberOptions so;
  so.name = "broker-double";
  so.bus_endpoints = {backend};
  so.prefixes = {"run.", "usage.", "metric."};
  bus::Subscriber sub(ctx, **store, so, [this](const bus::Event& e, storage::Batch&) {
    std::lock_guard lock(mu_);
    seen_.push_back(Seen{std::string(e.topic), std::string(reinterpret_cast<const char*>(e.bytes.data()), e.bytes.size())});
  });
  server.on(fb::RequestBody::RegisterNode, [this](const fb::Request& req, rpc::Responder& r) {
    auto* q = req.body_as_RegisterNode();
    if (!q->node() || !q->node()->name()) {
      r.error(Status::invalid("RegisterNode.node.name is missing"));
      return;
    }
    std::string name = q->node()->name()->str();
    std::lock_guard lock(mu_);
    ++registrations_[name];
    forgotten_[name] = false;
    node_info_[name] = std::shared_ptr<fb::NodeInfoT>(q->node()->UnPack());
    running_[name] = q->running_leases() ? std::vector<uint64_t>(q->running_leases()->begin(), q->running_leases()->end())
                                         : std::vector<uint64_t>{};
    r.ok();
  });
  server.on(fb::RequestBody::NodeHeartbeat, [this](const fb::Request& req, rpc::Responder& r) {
    auto* q = req.body_as_NodeHeartbeat();
    std::string name = q->name() ? q->name()->str() : "";
    std::lock_guard lock(mu_);
    if (forgotten_[name] || !registrations_.count(name)) {
      r.error(Status::not_found("node " + name + " is not registered; send RegisterNode"));
      return;
    }
    ++heartbeats_[name];
    running_[name] = q->running_leases() ? std::vector<uint64_t>(q->running_leases()->begin(), q->running_leases()->end())
                                         : std::vector<uint64_t>{};
    r.ok();
  });
  runtime.watch(server.socket(), [&] { server.poll_in(); });
  runtime.after_commit([&] { server.flush(); });
  pub.attach(runtime);
  sub.attach(runtime);
  runtime.every(10, [] {});
  runtime.each_iteration([&] {
    std::vector<Command> cmds;
    {
      std::lock_guard lock(mu_);
      cmds.swap(commands_);
    }
    for (auto& c : cmds) c(pub, runtime.batch());
    if (stop_) runtime.stop();
    return false;
  });
  endpoint_ = server.endpoint();
  ready_ = true;
  runtime.run();
}

void BrokerDouble::grant(const Grant& g) {
  std::lock_guard lock(mu_);
  commands_.push_back([g](bus::Publisher& pub, storage::Batch& batch) {
    fb::LeaseGrantedT t;
    t.lease_id = g.lease;
    t.job_id = g.job;
    t.attempt = g.attempt;
    t.node = g.node;
    t.gpu_indices = g.gpus;
    t.cpus = g.cpus;
    t.memory_mb = g.memory_mb;
    t.array_index = g.array_index;
    t.gpu_type = g.gpu_type;
    t.node_rank = g.node_rank;
    t.nodes = g.nodes;
    t.spec = std::make_unique<fb::JobSpecT>();
    auto& s = *t.spec;
    s.name = "test-job";
    s.user = g.user;
    s.account = g.account;
    s.partition = g.partition;
    s.command = g.command;
    s.workdir = g.workdir;
    for (auto& [k, v] : g.env) {
      auto kv = std::make_unique<fb::KeyValueT>();
      kv->key = k;
      kv->value = v;
      s.env.push_back(std::move(kv));
    }
    s.gpus_per_node = static_cast<uint32_t>(g.gpus.size());
    s.cpus = g.cpus;
    s.memory_mb = g.memory_mb;
    s.time_limit_s = g.time_limit_s;
    s.experiment = g.experiment;
    s.stdout_path = g.stdout_path;
    s.grace_s = g.grace_s;
    s.sim_duration_s = g.sim_duration_s;
    auto& b = pub.builder();
    auto off = fb::LeaseGranted::Pack(b, &t);
    std::string prefix = "lease." + g.node + ".";
    pub.append_to(batch, prefix, prefix + "granted", fb::Payload::LeaseGranted, off.Union());
  });
}

void BrokerDouble::revoke(const std::string& node, uint64_t lease, uint64_t job, uint32_t grace_s,
                          const std::string& reason) {
  std::lock_guard lock(mu_);
  commands_.push_back([=](bus::Publisher& pub, storage::Batch& batch) {
    auto& b = pub.builder();
    auto off = fb::CreateLeaseRevokedDirect(b, lease, job, node.c_str(), reason.c_str(), grace_s);
    std::string prefix = "lease." + node + ".";
    pub.append_to(batch, prefix, prefix + "revoked", fb::Payload::LeaseRevoked, off.Union());
  });
}

void BrokerDouble::forget(const std::string& node) {
  std::lock_guard lock(mu_);
  forgotten_[node] = true;
}

int BrokerDouble::registrations(const std::string& node) {
  std::lock_guard lock(mu_);
  return registrations_.count(node) ? registrations_[node] : 0;
}

int BrokerDouble::heartbeats(const std::string& node) {
  std::lock_guard lock(mu_);
  return heartbeats_.count(node) ? heartbeats_[node] : 0;
}

size_t BrokerDouble::registered_nodes() {
  std::lock_guard lock(mu_);
  return registrations_.size();
}

std::shared_ptr<fb::NodeInfoT> BrokerDouble::node(const std::string& name) {
  std::lock_guard lock(mu_);
  auto it = node_info_.find(name);
  return it == node_info_.end() ? nullptr : it->second;
}

std::vector<uint64_t> BrokerDouble::last_running_leases(const std::string& node) {
  std::lock_guard lock(mu_);
  return running_[node];
}

std::vector<Seen> BrokerDouble::events(const std::string& prefix) {
  std::lock_guard lock(mu_);
  std::vector<Seen> out;
  for (auto& s : seen_) {
    if (s.topic.rfind(prefix, 0) == 0) out.push_back(s);
  }
  return out;
}

}  // namespace trainyard::testing

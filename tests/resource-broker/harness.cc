#include "harness.h"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "trainyard/fb/rpc_generated.h"
#include "util/runtime.h"

namespace trainyard::broker_test {

using namespace std::chrono_literals;
using testing::bin;
using testing::free_loopback_port;
using testing::start_bus;
using testing::wait_json;
using testing::wait_until;

// --- Stack ---

Stack::Stack(int64_t timeout_ms, std::vector<std::string> extra_sets)
    : node_timeout_ms(timeout_ms), extra(std::move(extra_sets)) {
  auto started = start_bus(dir.path());
  bus = std::move(started.process);
  frontend = started.frontend;
  backend = started.backend;
  // Below the ephemeral range: restarts bind it again, and no connection
  // made while the broker is down can take it (free_loopback_port).
  endpoint = "tcp://127.0.0.1:" + std::to_string(free_loopback_port());
  start_broker();
}

Stack::~Stack() {
  broker.reset();
  bus.reset();
}

void Stack::start_broker() {
  std::string ready = dir / "broker.ready";
  std::filesystem::remove(ready);
  std::vector<std::string> argv{bin("trainyard-resource-broker"), "--ready-file", ready, "--log-level", "info",
                                "--set", "broker.endpoint=" + endpoint, "--set", "broker.data=" + (dir / "broker-data"),
                                "--set", "bus.frontend=" + frontend, "--set", "bus.backend=" + backend, "--set",
                                "broker.node_timeout_ms=" + std::to_string(node_timeout_ms), "--set",
                                "broker.stream_heartbeat_ms=200"};
  for (auto& e : extra) {
    argv.push_back("--set");
    argv.push_back(e);
  }
  broker = std::make_unique<Process>(argv, dir / "broker.log");
  auto j = wait_json(ready, 10s);
  if (!j.contains("endpoint")) throw std::runtime_error("broker did not start: " + broker->log());
  // Restarts bind the same endpoint, so agents' clients find it again.
  endpoint = j["endpoint"].get<std::string>();
}

void Stack::kill_broker() {
  broker->kill9();
  broker->wait(5000ms);
}

std::unique_ptr<rpc::Client> Stack::client(int timeout_ms, int tries) {
  rpc::ClientOptions o;
  o.timeout_ms = timeout_ms;
  o.tries = tries;
  return std::make_unique<rpc::Client>(ctx, "resource-broker", endpoint, o);
}

bool wait_trimmed(Stack& stack, const std::string& stream, uint64_t first_seq, int timeout_ms) {
  zmq::socket_t sub(stack.ctx, zmq::socket_type::sub);
  sub.set(zmq::sockopt::linger, 0);
  sub.set(zmq::sockopt::subscribe, std::string(bus::kHeartbeatPrefix) + stream);
  sub.connect(stack.backend);
  int64_t deadline = monotonic_ms() + timeout_ms;
  while (monotonic_ms() < deadline) {
    zmq::pollitem_t item{static_cast<void*>(sub), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, std::chrono::milliseconds(100));
    if (!(item.revents & ZMQ_POLLIN)) continue;
    zmq::message_t topic, body;
    (void)sub.recv(topic);
    if (!topic.more()) continue;
    (void)sub.recv(body);
    auto e = bus::verify_event(topic.to_string_view(), {static_cast<const uint8_t*>(body.data()), body.size()});
    if (!e) continue;
    if (auto* hb = e->as<fb::StreamHeartbeat>(); hb && hb->first_seq() >= first_seq) return true;
  }
  return false;
}

// --- requests ---

namespace {

Status status_of(const Result<rpc::Reply>& r) { return r.ok() ? Status::success() : r.status(); }

flatbuffers::Offset<fb::NodeInfo> build_node(flatbuffers::FlatBufferBuilder& b, const std::string& name, int gpus) {
  fb::NodeInfoT n;
  n.name = name;
  for (int i = 0; i < gpus; ++i) {
    auto g = std::make_unique<fb::GpuInfoT>();
    g->index = static_cast<uint32_t>(i);
    g->type = "A100";
    g->memory_mb = 81920;
    g->uuid = name + "-" + std::to_string(i);
    n.gpus.push_back(std::move(g));
  }
  n.cpus = 64;
  n.memory_mb = 512 * 1024;
  n.agent_endpoint = "tcp://127.0.0.1:1/" + name;
  return fb::NodeInfo::Pack(b, &n);
}

flatbuffers::Offset<fb::JobSpec> build_spec(flatbuffers::FlatBufferBuilder& b, uint64_t job) {
  fb::JobSpecT s;
  s.name = "job-" + std::to_string(job);
  s.user = "ada";
  s.command = {"sleep", "1"};
  s.cpus = 1;
  s.grace_s = 5;
  return fb::JobSpec::Pack(b, &s);
}

Result<std::vector<uint64_t>> allocated(const Result<rpc::Reply>& r) {
  if (!r.ok()) return r.status();
  auto* a = r->body<fb::Allocated>();
  if (!a || !a->lease_ids()) return Status::internal("Allocate answered without lease ids");
  std::vector<uint64_t> ids(a->lease_ids()->begin(), a->lease_ids()->end());
  if (ids.empty() || ids.front() != a->lease_id()) return Status::internal("Allocated.lease_id is not lease_ids[0]");
  return ids;
}

}  // namespace

Status register_node(rpc::Client& c, const std::string& name, int gpus, const std::vector<uint64_t>& running) {
  return status_of(c.call(fb::RequestBody::RegisterNode, [&](flatbuffers::FlatBufferBuilder& b) {
    auto n = build_node(b, name, gpus);
    auto r = b.CreateVector(running);
    return fb::CreateRegisterNode(b, n, r).Union();
  }));
}

Status heartbeat(rpc::Client& c, const std::string& name, const std::vector<uint64_t>& running) {
  return status_of(c.call(fb::RequestBody::NodeHeartbeat, [&](flatbuffers::FlatBufferBuilder& b) {
    auto n = b.CreateString(name);
    auto r = b.CreateVector(running);
    return fb::CreateNodeHeartbeat(b, n, r).Union();
  }));
}

Result<std::vector<uint64_t>> allocate(rpc::Client& c, uint64_t job, const std::string& node,
                                       const std::vector<uint32_t>& gpus, uint32_t attempt) {
  return allocated(c.call(fb::RequestBody::Allocate, [&](flatbuffers::FlatBufferBuilder& b) {
    auto n = b.CreateString(node);
    auto g = b.CreateVector(gpus);
    auto s = build_spec(b, job);
    return fb::CreateAllocate(b, job, attempt, n, g, 1, 0, s).Union();
  }));
}

Result<std::vector<uint64_t>> allocate_gang(rpc::Client& c, uint64_t job, const std::vector<Placement>& placements) {
  return allocated(c.call(fb::RequestBody::Allocate, [&](flatbuffers::FlatBufferBuilder& b) {
    std::vector<flatbuffers::Offset<fb::Placement>> ps;
    for (auto& p : placements) ps.push_back(fb::CreatePlacementDirect(b, p.node.c_str(), &p.gpus, 1, 0));
    auto pv = b.CreateVector(ps);
    auto s = build_spec(b, job);
    return fb::CreateAllocate(b, job, 0, 0, 0, 0, 0, s, -1, pv).Union();
  }));
}

Status release(rpc::Client& c, uint64_t lease, bool kill, const std::string& reason) {
  return status_of(c.call(fb::RequestBody::ReleaseLease, [&](flatbuffers::FlatBufferBuilder& b) {
    return fb::CreateReleaseLeaseDirect(b, lease, kill, reason.c_str(), 5).Union();
  }));
}

Status drain(rpc::Client& c, const std::string& node, bool on, const std::string& reason) {
  return status_of(c.call(fb::RequestBody::DrainNode, [&](flatbuffers::FlatBufferBuilder& b) {
    return fb::CreateDrainNodeDirect(b, node.c_str(), on, reason.c_str()).Union();
  }));
}

Result<std::vector<NodeRow>> list_nodes(rpc::Client& c, uint32_t page_bytes, size_t* pages) {
  std::vector<NodeRow> rows;
  std::string after;
  if (pages) *pages = 0;
  for (;;) {
    auto r = c.call(fb::RequestBody::ListNodes, [&](flatbuffers::FlatBufferBuilder& b) {
      return fb::CreateListNodesDirect(b, after.empty() ? nullptr : after.c_str(), page_bytes).Union();
    });
    if (!r.ok()) return r.status();
    auto* list = r->body<fb::NodeList>();
    if (!list) return Status::internal("ListNodes answered without a NodeList");
    if (pages) ++*pages;
    for (auto* s : *list->nodes()) {
      NodeRow row;
      row.name = s->node()->name()->str();
      row.up = s->up();
      row.drained = s->drained();
      if (s->reason()) row.reason = s->reason()->str();
      if (s->allocated_gpus()) row.allocated_gpus.assign(s->allocated_gpus()->begin(), s->allocated_gpus()->end());
      if (s->leases()) row.leases.assign(s->leases()->begin(), s->leases()->end());
      row.last_heartbeat_ns = s->last_heartbeat_ns();
      if (s->node()->agent_endpoint()) row.agent_endpoint = s->node()->agent_endpoint()->str();
      row.gpus = s->node()->gpus() ? s->node()->gpus()->size() : 0;
      rows.push_back(std::move(row));
    }
    if (!list->truncated()) return rows;
    if (!list->next_after_name() || list->next_after_name()->str() <= after) {
      return Status::internal("a truncated NodeList did not move its cursor forward");
    }
    after = list->next_after_name()->str();
  }
}

const NodeRow* find(const std::vector<NodeRow>& rows, const std::string& name) {
  for (auto& r : rows) {
    if (r.name == name) return &r;
  }
  return nullptr;
}

// --- Agent ---

Agent::Agent(Stack& stack, std::string name, int gpus) : stack_(stack), name_(std::move(name)), gpus_(gpus) {}

Agent::~Agent() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

Status Agent::start() {
  auto c = stack_.client();
  auto s = register_node(*c, name_, gpus_);
  if (!s) return s;
  ++registrations_;
  thread_ = std::thread([this] { loop(); });
  return s;
}

void Agent::silence(bool on) { silent_ = on; }

void Agent::set_running(std::vector<uint64_t> leases) {
  std::lock_guard lock(mu_);
  running_ = std::move(leases);
}

void Agent::loop() {
  auto c = stack_.client(500, 1);
  while (!stop_) {
    std::this_thread::sleep_for(200ms);  // the agent's heartbeat period, not a synchronisation
    if (silent_) continue;
    std::vector<uint64_t> running;
    {
      std::lock_guard lock(mu_);
      running = running_;
    }
    auto s = heartbeat(*c, name_, running);
    if (s.code() == ErrorCode::NotFound && register_node(*c, name_, gpus_, running)) ++registrations_;
  }
}

// --- Watcher ---

Watcher::Watcher(Stack& stack, std::vector<std::string> prefixes) {
  thread_ = std::thread([this, &stack, prefixes] { run(stack.ctx, stack.backend, prefixes); });
  if (!wait_until([&] { return ready_.load(); }, 10s)) throw std::runtime_error("watcher did not start");
}

Watcher::~Watcher() {
  quit_ = true;
  thread_.join();
}

void Watcher::run(zmq::context_t& ctx, std::string backend, std::vector<std::string> prefixes) {
  auto opened = storage::Store::open(dir_ / "db", storage::Options{bus::Subscriber::column_families(), {}, {}});
  if (!opened) throw std::runtime_error(opened.status().to_string());
  auto store = std::move(opened).value();
  Runtime runtime(store.get());
  bus::SubscriberOptions o;
  o.name = "test-watcher";
  o.bus_endpoints = {backend};
  o.prefixes = std::move(prefixes);
  o.replay_timeout_ms = 500;
  o.retry_ms = 200;
  bus::Subscriber sub(ctx, *store, o, [this](const bus::Event& e, storage::Batch&) {
    Seen s;
    s.topic = std::string(e.topic);
    switch (e.type()) {
      case fb::Payload::NodeUp: s.node = e.as<fb::NodeUp>()->node()->name()->str(); break;
      case fb::Payload::NodeDown:
        s.node = e.as<fb::NodeDown>()->name()->str();
        s.reason = e.as<fb::NodeDown>()->reason()->str();
        break;
      case fb::Payload::NodeDrained:
        s.node = e.as<fb::NodeDrained>()->name()->str();
        s.drained = e.as<fb::NodeDrained>()->drained();
        s.reason = e.as<fb::NodeDrained>()->reason()->str();
        break;
      case fb::Payload::LeaseGranted: {
        auto* g = e.as<fb::LeaseGranted>();
        s.lease_id = g->lease_id();
        s.job_id = g->job_id();
        s.node = g->node()->str();
        if (g->gpu_indices()) s.gpus.assign(g->gpu_indices()->begin(), g->gpu_indices()->end());
        if (g->nodes()) {
          for (auto* n : *g->nodes()) s.nodes.push_back(n->str());
        }
        s.node_rank = g->node_rank();
        s.has_spec = g->spec() && g->spec()->command() && g->spec()->command()->size() > 0;
        break;
      }
      case fb::Payload::LeaseRevoked:
        s.lease_id = e.as<fb::LeaseRevoked>()->lease_id();
        s.node = e.as<fb::LeaseRevoked>()->node()->str();
        s.reason = e.as<fb::LeaseRevoked>()->reason()->str();
        break;
      case fb::Payload::LeaseReleased:
        s.lease_id = e.as<fb::LeaseReleased>()->lease_id();
        s.node = e.as<fb::LeaseReleased>()->node()->str();
        s.reason = e.as<fb::LeaseReleased>()->reason()->str();
        break;
      case fb::Payload::LeaseLost:
        s.lease_id = e.as<fb::LeaseLost>()->lease_id();
        s.node = e.as<fb::LeaseLost>()->node()->str();
        s.reason = e.as<fb::LeaseLost>()->reason()->str();
        break;
      default: break;
    }
    std::lock_guard lock(mu_);
    seen_.push_back(std::move(s));
  });
  sub.attach(runtime);
  runtime.every(20, [&] {
    if (quit_) runtime.stop();
  });
  ready_ = true;
  runtime.run();
}

std::vector<Seen> Watcher::matching(const std::string& suffix, uint64_t lease) const {
  std::lock_guard lock(mu_);
  std::vector<Seen> out;
  for (auto& s : seen_) {
    bool ends = s.topic.size() >= suffix.size() &&
                s.topic.compare(s.topic.size() - suffix.size(), suffix.size(), suffix) == 0;
    if (ends && (lease == 0 || s.lease_id == lease)) out.push_back(s);
  }
  return out;
}

bool Watcher::wait_for(const std::string& suffix, size_t n, uint64_t lease, int timeout_ms) const {
  return wait_until([&] { return count(suffix, lease) >= n; }, std::chrono::milliseconds(timeout_ms));
}

// --- RunPublisher ---

RunPublisher::RunPublisher(Stack& stack, std::string node) : node_(std::move(node)) {
  thread_ = std::thread([this, &stack] { run(stack.ctx, stack.frontend); });
  if (!wait_until([&] { return ready_.load(); }, 10s)) throw std::runtime_error("run publisher did not start");
}

RunPublisher::~RunPublisher() {
  quit_ = true;
  thread_.join();
}

void RunPublisher::run(zmq::context_t& ctx, std::string frontend) {
  auto opened = storage::Store::open(dir_ / "db", storage::Options{bus::Publisher::column_families(), {}, {}});
  if (!opened) throw std::runtime_error(opened.status().to_string());
  auto store = std::move(opened).value();
  Runtime runtime(store.get());
  rpc::Server server(ctx, "tcp://127.0.0.1:*", "test-agent");
  bus::PublisherOptions o;
  o.instance = node_;
  o.bus_endpoints = {frontend};
  o.heartbeat_ms = 200;
  bus::Publisher pub(ctx, *store, server, o, clock_);
  runtime.watch(server.socket(), [&] { server.poll_in(); });
  pub.attach(runtime);
  runtime.after_commit([&] { server.flush(); });
  runtime.every(10, [&] {
    if (quit_) runtime.stop();
    std::vector<std::function<void(bus::Publisher&, storage::Batch&)>> todo;
    {
      std::lock_guard lock(mu_);
      todo.swap(queue_);
    }
    for (auto& fn : todo) fn(pub, runtime.batch());
  });
  ready_ = true;
  runtime.run();
}

void RunPublisher::post(std::function<void(bus::Publisher&, storage::Batch&)> fn) {
  std::lock_guard lock(mu_);
  queue_.push_back(std::move(fn));
}

void RunPublisher::started(uint64_t lease, uint64_t job) {
  post([this, lease, job](bus::Publisher& pub, storage::Batch& batch) {
    auto& b = pub.builder();
    auto n = b.CreateString(node_);
    pub.append(batch, "run.started", fb::Payload::RunStarted,
               fb::CreateRunStarted(b, lease, job, 0, n, 4242, clock_.now_ns()).Union());
  });
}

void RunPublisher::finished(uint64_t lease, uint64_t job, fb::RunOutcome outcome, int exit_code) {
  post([this, lease, job, outcome, exit_code](bus::Publisher& pub, storage::Batch& batch) {
    auto& b = pub.builder();
    auto n = b.CreateString(node_);
    auto r = b.CreateString("test");
    pub.append(batch, "run.finished", fb::Payload::RunFinished,
               fb::CreateRunFinished(b, lease, job, 0, n, outcome, exit_code, 0, clock_.now_ns(), r).Union());
  });
}

}  // namespace trainyard::broker_test

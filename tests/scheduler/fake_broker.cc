// trainyard-fake-broker: a test double of the resource broker and of the
// node agents, for the scheduler's integration tests and bench-submit. It
// publishes node.up for its declared nodes, answers Allocate (single node
// or gang) on its ROUTER by publishing lease.<node>.granted, refuses GPUs
// already leased (Conflict), and treats a second Allocate of a job attempt
// that holds a lease as success with the same lease. As the agents, it
// publishes run.started at once and, when the spec has sim_duration_s > 0,
// run.finished after that long with the outcome in the spec's labels
// (fake.outcome = Failed|TimedOut|..., fake.exit_code = N), then
// lease.released. ReleaseLease{kill} ends a run as Cancelled. DrainNode
// with reason "fail" kills a node: node.down and lease.lost for its leases.
// --info writes what it saw as JSON (grants and runs per job) for the tests.
#include <signal.h>

#include <cstdio>
#include <iostream>
#include <map>
#include <set>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "bus/publisher.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/runtime.h"
#include "util/service_main.h"

using namespace trainyard;

namespace {

struct Node {
  std::string name;
  uint32_t gpus = 0;
  std::string type;
  uint32_t cpus = 64;
  uint64_t memory_mb = 512'000;
  uint64_t used = 0;  // GPU mask
  bool up = true;
};

struct Lease {
  uint64_t id;
  uint64_t job;
  uint32_t attempt;
  std::string node;
  uint64_t gpus;
  uint32_t rank;
  bool running = false;
  int64_t finish_at_ms = 0;  // 0: runs until revoked
  fb::RunOutcome outcome = fb::RunOutcome::Succeeded;
  int exit_code = 0;
};

std::string label(const fb::JobSpec* spec, const std::string& key) {
  if (!spec || !spec->labels()) return {};
  for (auto* kv : *spec->labels()) {
    if (kv->key() && kv->key()->str() == key && kv->value()) return kv->value()->str();
  }
  return {};
}


}  // namespace

int main(int argc, char** argv) {
  block_termination_signals();
  CLI::App app{"trainyard-fake-broker: a test double of the resource broker and agents for scheduler tests"};
  std::string data, bus, endpoint = "tcp://127.0.0.1:*", ready_file, info_file;
  std::vector<std::string> node_specs;
  app.add_option("--data", data, "RocksDB directory (its outbox)")->required();
  app.add_option("--bus", bus, "bus frontend (XSUB) endpoint")->required();
  app.add_option("--endpoint", endpoint, "ROUTER endpoint to bind");
  app.add_option("--node", node_specs, "a node NAME:GPUS[:TYPE[:CPUS]] (repeatable)");
  app.add_option("--ready-file", ready_file, "write {pid, endpoint} here once serving");
  app.add_option("--info", info_file, "write what it saw here as JSON, every 50 ms");
  CLI11_PARSE(app, argc, argv);
  init_logging("fake-broker", "warn");

  std::map<std::string, Node> nodes;
  for (auto& s : node_specs) {
    Node n;
    std::vector<std::string> parts;
    for (size_t a = 0, b; a <= s.size(); a = b + 1) {
      b = s.find(':', a);
      if (b == std::string::npos) b = s.size();
      parts.push_back(s.substr(a, b - a));
    }
    n.name = parts[0];
    n.gpus = parts.size() > 1 ? static_cast<uint32_t>(std::stoul(parts[1])) : 8;
    n.type = parts.size() > 2 ? parts[2] : "A100";
    if (parts.size() > 3) n.cpus = static_cast<uint32_t>(std::stoul(parts[3]));
    nodes[n.name] = n;
  }

  auto opened = storage::Store::open(data, storage::Options{bus::Publisher::column_families(), {}, storage::Durability::kWal});
  if (!opened) {
    std::cerr << "error: " << opened.status().message() << "\n";
    return 3;
  }
  auto& store = **opened;
  zmq::context_t ctx(1);
  SystemClock clock;
  Runtime runtime(&store);
  rpc::Server server(ctx, endpoint, "fake-broker");
  bus::PublisherOptions po;
  po.instance = "broker";
  po.bus_endpoints = {bus};
  po.heartbeat_ms = 200;
  bus::Publisher pub(ctx, store, server, po, clock);

  std::map<uint64_t, Lease> leases;
  std::map<std::pair<uint64_t, uint32_t>, std::vector<uint64_t>> by_attempt;  // (job, attempt) -> lease ids
  std::map<uint64_t, int> runs_started;                                        // job -> runs started
  std::map<uint64_t, int> grants;                                              // job -> leases granted (rank 0)
  uint64_t next_lease = 1, allocates = 0, repeats = 0, conflicts = 0, releases = 0, finished = 0;
  std::set<std::string> draining;

  auto publish_node = [&](const Node& n) {
    auto& b = pub.builder();
    std::vector<flatbuffers::Offset<fb::GpuInfo>> gpus;
    for (uint32_t i = 0; i < n.gpus; ++i) {
      gpus.push_back(fb::CreateGpuInfoDirect(b, i, n.type.c_str(), 80'000, ("GPU-" + n.name + "-" + std::to_string(i)).c_str()));
    }
    auto info = fb::CreateNodeInfoDirect(b, n.name.c_str(), &gpus, n.cpus, n.memory_mb, nullptr, "", true, "");
    pub.append(runtime.batch(), "node.up", fb::Payload::NodeUp, fb::CreateNodeUp(b, info).Union());
  };
  auto lease_prefix = [](const std::string& node) { return "lease." + node + "."; };
  auto release = [&](uint64_t id, const std::string& reason) {
    auto it = leases.find(id);
    if (it == leases.end()) return;
    auto& l = it->second;
    nodes[l.node].used &= ~l.gpus;
    auto& b = pub.builder();
    auto ev = fb::CreateLeaseReleasedDirect(b, id, l.job, l.node.c_str(), reason.c_str());
    pub.append_to(runtime.batch(), lease_prefix(l.node), lease_prefix(l.node) + "released", fb::Payload::LeaseReleased,
                  ev.Union());
    leases.erase(it);
  };
  auto finish_run = [&](Lease& l, fb::RunOutcome outcome, int exit_code, const std::string& reason) {
    auto& b = pub.builder();
    auto ev = fb::CreateRunFinishedDirect(b, l.id, l.job, l.attempt, l.node.c_str(), outcome, exit_code, 0,
                                          clock.now_ns(), reason.c_str());
    pub.append(runtime.batch(), "run.finished", fb::Payload::RunFinished, ev.Union());
    l.running = false;
    ++finished;
  };

  for (auto& [name, n] : nodes) publish_node(n);

  server.on(fb::RequestBody::Allocate, [&](const fb::Request& req, rpc::Responder& r) {
    ++allocates;
    auto* a = req.body_as_Allocate();
    auto key = std::make_pair(a->job_id(), a->attempt());
    auto& b = r.builder();
    if (auto it = by_attempt.find(key); it != by_attempt.end()) {
      ++repeats;
      auto ids = b.CreateVector(it->second);
      r.ok(fb::ReplyBody::Allocated, fb::CreateAllocated(b, it->second[0], ids).Union());
      return;
    }
    struct Want {
      std::string node;
      uint64_t gpus;
    };
    std::vector<Want> wants;
    if (a->placements() && a->placements()->size() > 0) {
      for (auto* p : *a->placements()) {
        uint64_t m = 0;
        if (p->gpu_indices()) for (auto g : *p->gpu_indices()) m |= uint64_t{1} << g;
        wants.push_back({p->node() ? p->node()->str() : "", m});
      }
    } else {
      uint64_t m = 0;
      if (a->gpu_indices()) for (auto g : *a->gpu_indices()) m |= uint64_t{1} << g;
      wants.push_back({a->node() ? a->node()->str() : "", m});
    }
    for (auto& w : wants) {
      auto it = nodes.find(w.node);
      if (it == nodes.end() || !it->second.up) {
        r.error(Status::not_found("node " + w.node + " is not registered"));
        return;
      }
      if (it->second.used & w.gpus) {
        ++conflicts;
        r.error(Status::conflict("GPUs on " + w.node + " are already leased"));
        return;
      }
    }
    std::vector<uint64_t> ids;
    std::vector<std::string> names;
    for (auto& w : wants) names.push_back(w.node);
    double duration = a->spec() ? a->spec()->sim_duration_s() : 0;
    std::string outcome = label(a->spec(), "fake.outcome");
    std::string code = label(a->spec(), "fake.exit_code");
    for (uint32_t rank = 0; rank < wants.size(); ++rank) {
      auto& w = wants[rank];
      uint64_t id = next_lease++;
      ids.push_back(id);
      nodes[w.node].used |= w.gpus;
      Lease l{id, a->job_id(), a->attempt(), w.node, w.gpus, rank};
      if (duration > 0) l.finish_at_ms = monotonic_ms() + static_cast<int64_t>(duration * 1000);
      if (outcome == "Failed") l.outcome = fb::RunOutcome::Failed;
      if (outcome == "TimedOut") l.outcome = fb::RunOutcome::TimedOut;
      l.exit_code = code.empty() ? (l.outcome == fb::RunOutcome::Failed ? 1 : 0) : std::stoi(code);
      leases[id] = l;
      auto& eb = pub.builder();
      std::vector<uint32_t> gl;
      for (uint32_t g = 0; g < 64; ++g) {
        if (w.gpus >> g & 1) gl.push_back(g);
      }
      fb::JobSpecT spec;
      if (a->spec()) a->spec()->UnPackTo(&spec);
      auto s = fb::CreateJobSpec(eb, &spec);
      std::vector<flatbuffers::Offset<flatbuffers::String>> name_offsets;
      for (auto& nm : names) name_offsets.push_back(eb.CreateString(nm));
      auto ev = fb::CreateLeaseGrantedDirect(eb, id, a->job_id(), a->attempt(), w.node.c_str(), &gl, a->cpus(),
                                             a->memory_mb(), s, a->array_index(), nodes[w.node].type.c_str(), rank,
                                             &name_offsets);
      pub.append_to(runtime.batch(), lease_prefix(w.node), lease_prefix(w.node) + "granted", fb::Payload::LeaseGranted,
                    ev.Union());
    }
    by_attempt[key] = ids;
    grants[a->job_id()] += 1;
    auto v = b.CreateVector(ids);
    r.ok(fb::ReplyBody::Allocated, fb::CreateAllocated(b, ids[0], v).Union());
  });

  server.on(fb::RequestBody::ReleaseLease, [&](const fb::Request& req, rpc::Responder& r) {
    ++releases;
    auto* rl = req.body_as_ReleaseLease();
    auto it = leases.find(rl->lease_id());
    if (it == leases.end()) {
      r.error(Status::not_found("lease " + std::to_string(rl->lease_id()) + " is not held"));
      return;
    }
    auto& l = it->second;
    std::string reason = rl->reason() ? rl->reason()->str() : "";
    if (rl->kill()) {
      auto& b = pub.builder();
      auto ev = fb::CreateLeaseRevokedDirect(b, l.id, l.job, l.node.c_str(), reason.c_str(), rl->grace_s());
      pub.append_to(runtime.batch(), lease_prefix(l.node), lease_prefix(l.node) + "revoked", fb::Payload::LeaseRevoked,
                    ev.Union());
      if (l.running) finish_run(l, fb::RunOutcome::Cancelled, 143, reason);
    }
    release(rl->lease_id(), reason);
    r.ok(fb::ReplyBody::Empty, fb::CreateEmpty(r.builder()).Union());
  });

  server.on(fb::RequestBody::DrainNode, [&](const fb::Request& req, rpc::Responder& r) {
    auto* d = req.body_as_DrainNode();
    std::string name = d->name() ? d->name()->str() : "";
    std::string reason = d->reason() ? d->reason()->str() : "";
    auto it = nodes.find(name);
    if (it == nodes.end()) {
      r.error(Status::not_found("node " + name + " is not registered"));
      return;
    }
    if (reason == "fail") {
      it->second.up = false;
      auto& b = pub.builder();
      pub.append(runtime.batch(), "node.down", fb::Payload::NodeDown,
                 fb::CreateNodeDownDirect(b, name.c_str(), "missed heartbeats (fake)").Union());
      std::vector<uint64_t> lost;
      for (auto& [id, l] : leases) {
        if (l.node == name) lost.push_back(id);
      }
      for (uint64_t id : lost) {
        auto& l = leases[id];
        auto& lb = pub.builder();
        auto ev = fb::CreateLeaseLostDirect(lb, id, l.job, l.attempt, name.c_str(), "node failed");
        pub.append_to(runtime.batch(), lease_prefix(name), lease_prefix(name) + "lost", fb::Payload::LeaseLost, ev.Union());
        leases.erase(id);
      }
      it->second.used = 0;
    } else if (reason == "up") {
      it->second.up = true;
      publish_node(it->second);
    } else {
      auto& b = pub.builder();
      pub.append(runtime.batch(), "node.drain", fb::Payload::NodeDrained,
                 fb::CreateNodeDrainedDirect(b, name.c_str(), d->drain(), reason.c_str()).Union());
    }
    r.ok(fb::ReplyBody::Empty, fb::CreateEmpty(r.builder()).Union());
  });

  runtime.watch(server.socket(), [&] { server.poll_in(); });
  runtime.after_commit([&] { server.flush(); });
  pub.attach(runtime);
  // The "agents": start granted runs, end the ones whose time has come.
  runtime.every(5, [&] {
    int64_t now = monotonic_ms();
    std::vector<uint64_t> done;
    for (auto& [id, l] : leases) {
      if (!l.running && l.finish_at_ms >= 0) {
        l.running = true;
        runs_started[l.job] += l.rank == 0 ? 1 : 0;
        auto& b = pub.builder();
        auto ev = fb::CreateRunStartedDirect(b, id, l.job, l.attempt, l.node.c_str(), 4242, clock.now_ns());
        pub.append(runtime.batch(), "run.started", fb::Payload::RunStarted, ev.Union());
        continue;
      }
      if (l.running && l.finish_at_ms > 0 && now >= l.finish_at_ms) {
        finish_run(l, l.outcome, l.exit_code, "");
        l.finish_at_ms = -1;  // never start again
        done.push_back(id);
      }
    }
    for (uint64_t id : done) release(id, "run ended");
  });
  runtime.every(50, [&] {
    nlohmann::json started = nlohmann::json::object(), granted = nlohmann::json::object();
    for (auto& [job, n] : runs_started) started[std::to_string(job)] = n;
    for (auto& [job, n] : grants) granted[std::to_string(job)] = n;
    write_json_atomic(info_file, {{"allocates", allocates},
                           {"repeats", repeats},
                           {"conflicts", conflicts},
                           {"releases", releases},
                           {"finished", finished},
                           {"leases", leases.size()},
                           {"runs_started", started},
                           {"grants", granted}});
  });
  runtime.commit_now();
  write_ready_file(ready_file, {{"endpoint", server.endpoint()}});
  runtime.run();
  return 0;
}

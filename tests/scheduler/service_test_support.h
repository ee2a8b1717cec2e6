// What the scheduler's integration tests share: a Stack of the real
// trainyard-scheduler, a trainyard-bus and the broker/agent test double
// (trainyard-fake-broker) on loopback, a durable job.* Watcher, and the
// requests they make.
#pragma once

#include <boost/test/unit_test.hpp>

#include <signal.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <atomic>
#include <mutex>
#include <thread>

#include "bus/subscriber.h"
#include "process.h"
#include "rpc/client.h"
#include "storage/store.h"
#include "util/clock.h"
#include "util/runtime.h"

namespace trainyard::fb {
inline std::ostream& operator<<(std::ostream& os, JobState s) { return os << EnumNameJobState(s); }
inline std::ostream& operator<<(std::ostream& os, ErrorCode c) { return os << EnumNameErrorCode(c); }
}  // namespace trainyard::fb

namespace trainyard::scheduler::service_testing {

using namespace ::trainyard::testing;
using namespace std::chrono_literals;

inline fb::JobSpecT make_spec(uint32_t gpus, double duration_s) {
  fb::JobSpecT s;
  s.name = "test";
  s.user = "alice";
  s.account = "vision";
  s.command = {"sleep", "1"};
  s.gpus_per_node = gpus;
  s.time_limit_s = 600;
  s.sim_duration_s = duration_s;
  return s;
}

// Bus + fake broker + scheduler, each a real process.
struct Stack {
  TempDir dir;
  zmq::context_t ctx{1};
  std::unique_ptr<Process> bus, broker, sched;
  std::string frontend, backend, broker_ep, sched_ep;
  std::vector<std::string> sched_sets;
  int restarts = 0;

  explicit Stack(const std::vector<std::string>& nodes, std::vector<std::string> sets = {}) : sched_sets(std::move(sets)) {
    auto started = start_bus(dir.path());
    bus = std::move(started.process);
    frontend = started.frontend;
    backend = started.backend;
    std::vector<std::string> argv{bin("trainyard-fake-broker"), "--data", dir / "broker", "--bus", frontend,
                                  "--ready-file", dir / "broker.ready", "--info", dir / "broker.info"};
    for (auto& n : nodes) {
      argv.push_back("--node");
      argv.push_back(n);
    }
    broker = std::make_unique<Process>(argv, dir / "broker.log");
    broker_ep = wait_json(dir / "broker.ready", 10s)["endpoint"];
    start_scheduler();
  }

  void start_scheduler() {
    std::filesystem::remove(dir / "sched.ready");
    std::vector<std::string> argv{bin("trainyard-scheduler"),
                                  "--set", "scheduler.data=" + dir / "sched",
                                  "--set", "scheduler.endpoint=tcp://127.0.0.1:*",
                                  "--set", "bus.frontend=" + frontend,
                                  "--set", "bus.backend=" + backend,
                                  "--set", "broker.endpoint=" + broker_ep,
                                  "--ready-file", dir / "sched.ready"};
    for (auto& s : sched_sets) {
      argv.push_back("--set");
      argv.push_back(s);
    }
    sched = std::make_unique<Process>(argv, dir / ("sched-" + std::to_string(restarts++) + ".log"));
    auto ready = wait_json(dir / "sched.ready", 20s);
    sched_ep = ready["endpoint"];
    BOOST_REQUIRE_EQUAL(ready["pid"].get<int>(), sched->pid());
  }

  std::unique_ptr<rpc::Client> client(int timeout_ms = 3000) {
    rpc::ClientOptions o;
    o.timeout_ms = timeout_ms;
    o.tries = 1;
    return std::make_unique<rpc::Client>(ctx, "scheduler", sched_ep, o);
  }

  nlohmann::json broker_info() {
    auto j = read_json(dir / "broker.info");
    return j ? *j : nlohmann::json::object();
  }

  // Tells the fake broker something about a node ("fail", "up", a drain).
  void node_event(const std::string& node, const std::string& what) {
    rpc::Client c(ctx, "fake broker", broker_ep);
    auto r = c.call(fb::RequestBody::DrainNode, [&](flatbuffers::FlatBufferBuilder& b) {
      return fb::CreateDrainNodeDirect(b, node.c_str(), true, what.c_str()).Union();
    });
    BOOST_REQUIRE_MESSAGE(r.ok(), r.status().to_string());
  }
};

inline Result<rpc::Reply> submit(rpc::Client& c, const fb::JobSpecT& spec) {
  return c.call(fb::RequestBody::SubmitJob, [&](flatbuffers::FlatBufferBuilder& b) {
    return fb::CreateSubmitJob(b, fb::CreateJobSpec(b, &spec)).Union();
  });
}

inline uint64_t submit_ok(rpc::Client& c, const fb::JobSpecT& spec) {
  auto r = submit(c, spec);
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().to_string());
  return r->body<fb::Submitted>()->job_ids()->Get(0);
}

inline std::optional<fb::JobRecordT> get_job(rpc::Client& c, uint64_t id) {
  auto r = c.call(fb::RequestBody::GetJob,
                  [&](flatbuffers::FlatBufferBuilder& b) { return fb::CreateGetJob(b, id).Union(); });
  if (!r) return std::nullopt;
  fb::JobRecordT rec;
  r->body<fb::JobRecord>()->UnPackTo(&rec);
  return rec;
}

inline bool wait_state(rpc::Client& c, uint64_t id, fb::JobState state, std::chrono::milliseconds timeout) {
  return wait_until(
      [&] {
        auto j = get_job(c, id);
        return j && j->state == state;
      },
      timeout);
}

// A durable subscriber to job.*, as a client watching events would be; it
// runs its own service loop on a thread.
struct Watcher {
  Watcher(zmq::context_t& ctx, const std::string& dir, const std::string& backend) {
    store = std::move(storage::Store::open(dir, storage::Options{bus::Subscriber::column_families(), {}, {}})).value();
    thread = std::thread([this, &ctx, backend] {
      Runtime rt(store.get());
      bus::SubscriberOptions o;
      o.name = "watcher";
      o.bus_endpoints = {backend};
      o.prefixes = {"job."};
      bus::Subscriber sub(ctx, *store, o, [this](const bus::Event& e, storage::Batch&) {
        std::lock_guard lock(mu);
        if (auto* s = e.as<fb::JobStateChanged>()) {
          states[s->job_id()].push_back(s->to());
          log.emplace_back(s->job_id(), s->to());
          accounts[s->job_id()] = s->account() ? s->account()->str() : "";
          when[s->job_id()].push_back(monotonic_ms());
        }
        if (auto* s = e.as<fb::JobSubmitted>()) submitted.insert(s->job_id());
      });
      sub.attach(rt);
      rt.every(20, [&] {
        if (stop) rt.stop();
      });
      rt.run();
    });
  }
  ~Watcher() {
    stop = true;
    thread.join();
  }
  std::vector<fb::JobState> states_of(uint64_t id) {
    std::lock_guard lock(mu);
    return states[id];
  }
  std::vector<int64_t> times_of(uint64_t id) {
    std::lock_guard lock(mu);
    return when[id];
  }
  std::string account_of(uint64_t id) {
    std::lock_guard lock(mu);
    return accounts[id];
  }
  bool was_submitted(uint64_t id) {
    std::lock_guard lock(mu);
    return submitted.count(id) > 0;
  }
  bool saw(uint64_t id, fb::JobState s) {
    auto v = states_of(id);
    return std::find(v.begin(), v.end(), s) != v.end();
  }
  bool wait_for(uint64_t id, fb::JobState s, std::chrono::milliseconds timeout) {
    return wait_until([&] { return saw(id, s); }, timeout);
  }
  std::unique_ptr<storage::Store> store;
  std::thread thread;
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::map<uint64_t, std::vector<fb::JobState>> states;
  std::map<uint64_t, std::vector<int64_t>> when;
  std::map<uint64_t, std::string> accounts;
  std::set<uint64_t> submitted;
  std::vector<std::pair<uint64_t, fb::JobState>> log;  // every transition, in stream order
};

// Waits until the scheduler knows the nodes: a job asking more GPUs per node
// than the largest has is refused (not yet known: taken, and cancelled here).
inline void wait_for_nodes(rpc::Client& c, uint32_t largest) {
  auto probe = make_spec(largest + 1, 0.01);
  BOOST_REQUIRE(wait_until(
      [&] {
        auto r = submit(c, probe);
        if (r.ok()) {
          uint64_t id = r->body<fb::Submitted>()->job_ids()->Get(0);
          (void)c.call(fb::RequestBody::CancelJob, [&](flatbuffers::FlatBufferBuilder& b) {
            return fb::CreateCancelJobDirect(b, id, "probe").Union();
          });
          return false;
        }
        return r.status().message().rfind("gpus_per_node:", 0) == 0;
      },
      10s));
}

}  // namespace trainyard::scheduler::service_testing

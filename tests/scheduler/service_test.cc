// Integration tests of trainyard-scheduler: the real binary with a real
// trainyard-bus and the broker/agent test double (trainyard-fake-broker),
// all on loopback with their own data directories.
#define BOOST_TEST_MODULE scheduler_service
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

using namespace trainyard;
using namespace trainyard::testing;
using namespace std::chrono_literals;

namespace trainyard::fb {
inline std::ostream& operator<<(std::ostream& os, JobState s) { return os << EnumNameJobState(s); }
inline std::ostream& operator<<(std::ostream& os, ErrorCode c) { return os << EnumNameErrorCode(c); }
}  // namespace trainyard::fb

namespace {

fb::JobSpecT make_spec(uint32_t gpus, double duration_s) {
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

Result<rpc::Reply> submit(rpc::Client& c, const fb::JobSpecT& spec) {
  return c.call(fb::RequestBody::SubmitJob, [&](flatbuffers::FlatBufferBuilder& b) {
    return fb::CreateSubmitJob(b, fb::CreateJobSpec(b, &spec)).Union();
  });
}

uint64_t submit_ok(rpc::Client& c, const fb::JobSpecT& spec) {
  auto r = submit(c, spec);
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().to_string());
  return r->body<fb::Submitted>()->job_ids()->Get(0);
}

std::optional<fb::JobRecordT> get_job(rpc::Client& c, uint64_t id) {
  auto r = c.call(fb::RequestBody::GetJob,
                  [&](flatbuffers::FlatBufferBuilder& b) { return fb::CreateGetJob(b, id).Union(); });
  if (!r) return std::nullopt;
  fb::JobRecordT rec;
  r->body<fb::JobRecord>()->UnPackTo(&rec);
  return rec;
}

bool wait_state(rpc::Client& c, uint64_t id, fb::JobState state, std::chrono::milliseconds timeout) {
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
void wait_for_nodes(rpc::Client& c, uint32_t largest) {
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

}  // namespace

BOOST_AUTO_TEST_CASE(help_describes_the_service) {
  auto [rc, out] = run({bin("trainyard-scheduler"), "--help"});
  BOOST_TEST(rc == 0);
  BOOST_TEST(out.find("--ready-file") != std::string::npos);
  BOOST_TEST(out.find("scheduler") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_job_goes_pending_scheduled_running_succeeded_with_events) {
  Stack s({"n1:8", "n2:8"});
  Watcher w(s.ctx, s.dir / "watch", s.backend);
  auto c = s.client();
  // Wait until the scheduler knows the nodes (a job asking 8 GPUs passes validation).
  wait_for_nodes(*c, 8);
  int64_t t0 = monotonic_ms();
  uint64_t id = submit_ok(*c, make_spec(2, 0.2));
  int64_t acked = monotonic_ms();
  BOOST_REQUIRE(w.wait_for(id, fb::JobState::Succeeded, 15s));
  auto seen = w.states_of(id);
  std::vector<fb::JobState> want{fb::JobState::Pending, fb::JobState::Scheduled, fb::JobState::Running,
                                 fb::JobState::Succeeded};
  BOOST_TEST(seen == want, boost::test_tools::per_element());
  BOOST_TEST(w.was_submitted(id));
  BOOST_TEST(w.account_of(id) == "vision");
  auto rec = get_job(*c, id);
  BOOST_REQUIRE(rec);
  BOOST_REQUIRE_EQUAL(rec->history.size(), 4u);
  // Placed at once on an idle cluster, not on the next periodic cycle (1 s):
  // submitted -> Scheduled (the broker's reply included) by the scheduler's clock.
  double to_scheduled_ms = (rec->history[1]->time_ns - rec->history[0]->time_ns) / 1e6;
  BOOST_TEST_MESSAGE("submit->ack " << acked - t0 << " ms, submitted->scheduled " << to_scheduled_ms << " ms");
  BOOST_TEST(to_scheduled_ms < 200);
  BOOST_TEST(rec->state == fb::JobState::Succeeded);
  BOOST_TEST(rec->nodes.size() == 1u);
  BOOST_TEST(rec->gpu_indices.size() == 2u);
  BOOST_TEST(rec->attempt == 1u);
}

BOOST_AUTO_TEST_CASE(bad_specs_are_refused_with_the_field_named) {
  Stack s({"n1:8:A100"});
  auto c = s.client();
  wait_for_nodes(*c, 8);
  struct Case {
    std::string field;
    std::function<void(fb::JobSpecT&)> edit;
  };
  std::vector<Case> cases = {
      {"gpu_type", [](auto& s) { s.gpu_type = "V100"; }},
      {"gpus_per_node", [](auto& s) { s.gpus_per_node = 9; }},
      {"gpus_per_node", [](auto& s) { s.gpu_type = "A100"; s.gpus_per_node = 0; }},
      {"time_limit_s", [](auto& s) { s.time_limit_s = 0; }},
      {"partition", [](auto& s) { s.partition = "nowhere"; }},
      {"nodes", [](auto& s) { s.nodes = 2; }},
      {"array", [](auto& s) { s.array = "9-1"; }},
  };
  for (auto& k : cases) {
    auto spec = make_spec(1, 0.01);
    k.edit(spec);
    auto r = submit(*c, spec);
    BOOST_TEST(!r.ok(), k.field);
    BOOST_TEST(r.status().code() == ErrorCode::InvalidArgument);
    BOOST_TEST(r.status().message().rfind(k.field + ":", 0) == 0u, k.field << " vs " << r.status().message());
  }
}

BOOST_AUTO_TEST_CASE(cancel_of_a_running_job_stops_it_through_the_broker) {
  Stack s({"n1:4"});
  auto c = s.client();
  wait_for_nodes(*c, 4);
  auto spec = make_spec(4, 0);  // runs until stopped
  spec.grace_s = 3;
  uint64_t id = submit_ok(*c, spec);
  uint64_t waiting = submit_ok(*c, spec);  // no room: stays pending
  BOOST_REQUIRE(wait_state(*c, id, fb::JobState::Running, 10s));
  auto r = c->call(fb::RequestBody::CancelJob, [&](flatbuffers::FlatBufferBuilder& b) {
    return fb::CreateCancelJobDirect(b, id, "no longer needed").Union();
  });
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().to_string());
  BOOST_REQUIRE(wait_state(*c, id, fb::JobState::Cancelled, 10s));
  BOOST_TEST(get_job(*c, id)->reason == "no longer needed");
  BOOST_TEST(wait_until([&] { return s.broker_info().value("releases", 0) >= 1; }, 5s));
  // The freed GPUs go to the waiting job; cancelling a pending job is immediate.
  BOOST_REQUIRE(wait_state(*c, waiting, fb::JobState::Running, 10s));
  auto again = c->call(fb::RequestBody::CancelJob, [&](flatbuffers::FlatBufferBuilder& b) {
    return fb::CreateCancelJobDirect(b, id, "").Union();
  });
  BOOST_TEST(again.status().code() == ErrorCode::FailedPrecondition);
  auto hold = c->call(fb::RequestBody::HoldJob,
                      [&](flatbuffers::FlatBufferBuilder& b) { return fb::CreateHoldJob(b, waiting).Union(); });
  BOOST_TEST(hold.status().code() == ErrorCode::FailedPrecondition);
}

BOOST_AUTO_TEST_CASE(a_job_whose_node_dies_is_requeued_onto_another) {
  Stack s({"n1:2", "n2:2"});
  auto c = s.client();
  wait_for_nodes(*c, 2);
  auto spec = make_spec(2, 0);
  spec.max_retries = 1;
  uint64_t id = submit_ok(*c, spec);
  BOOST_REQUIRE(wait_state(*c, id, fb::JobState::Running, 10s));
  std::string first = get_job(*c, id)->nodes.at(0);
  s.node_event(first, "fail");
  BOOST_REQUIRE(wait_until(
      [&] {
        auto j = get_job(*c, id);
        return j && j->state == fb::JobState::Running && j->attempt == 2;
      },
      10s));
  auto j = get_job(*c, id);
  BOOST_TEST(j->nodes.at(0) != first);
  // Its second node dies too: retries are spent, the job ends NodeFailure.
  s.node_event(j->nodes.at(0), "fail");
  BOOST_REQUIRE(wait_state(*c, id, fb::JobState::NodeFailure, 10s));
}

BOOST_AUTO_TEST_CASE(sigkill_amid_200_jobs_loses_none_and_runs_none_twice) {
  Stack s({"n1:8", "n2:8", "n3:8", "n4:8"});
  auto c = s.client(1500);
  wait_for_nodes(*c, 8);
  const int kJobs = 200;
  std::vector<uint64_t> ids(kJobs, 0);
  std::set<int> kill_at{40, 90, 150};
  int kills = 0;
  for (int i = 0; i < kJobs; ++i) {
    auto spec = make_spec(1 + i % 4, 0.05 + (i % 5) * 0.03);
    spec.client_token = "job-" + std::to_string(i);
    // A client that does not know whether its submit was taken retries
    // with the same token until it gets an answer.
    for (int tries = 0; ids[i] == 0; ++tries) {
      BOOST_REQUIRE_LT(tries, 20);
      auto r = submit(*c, spec);
      if (r.ok()) {
        ids[i] = r->body<fb::Submitted>()->job_ids()->Get(0);
      } else {
        BOOST_REQUIRE_EQUAL(r.status().code(), ErrorCode::Unavailable);
        c = s.client(1500);
      }
    }
    if (kill_at.count(i)) {
      s.sched->kill9();
      s.sched->wait(5s);
      ++kills;
      s.start_scheduler();
      c = s.client(1500);
    }
  }
  // Once more while jobs are being placed, started and finished.
  std::this_thread::sleep_for(300ms);  // let work pile up; not a synchronisation
  s.sched->kill9();
  s.sched->wait(5s);
  s.start_scheduler();
  c = s.client(3000);
  std::set<uint64_t> distinct(ids.begin(), ids.end());
  BOOST_TEST(distinct.size() == static_cast<size_t>(kJobs));
  BOOST_REQUIRE(wait_until(
      [&] {
        auto r = c->call(fb::RequestBody::QueryJobs, [&](flatbuffers::FlatBufferBuilder& b) {
          std::vector<fb::JobState> st{fb::JobState::Succeeded};
          return fb::CreateQueryJobsDirect(b, &st, nullptr, nullptr, nullptr, 0, 10000).Union();
        });
        if (!r) return false;
        size_t done = 0;
        for (auto* j : *r->template body<fb::JobList>()->jobs()) done += distinct.count(j->job_id());
        return done == distinct.size();
      },
      45s));
  auto info = s.broker_info();
  for (uint64_t id : ids) {
    auto key = std::to_string(id);
    BOOST_TEST(info["runs_started"].value(key, 0) == 1, "job " << id << " runs");
    BOOST_TEST(info["grants"].value(key, 0) == 1, "job " << id << " grants");
  }
  BOOST_TEST_MESSAGE("kills: " << kills + 1 << ", broker saw " << info["allocates"] << " Allocates, "
                               << info["repeats"] << " repeats, " << info["conflicts"] << " conflicts");
}

BOOST_AUTO_TEST_CASE(arrays_and_dependencies_through_the_service) {
  Stack s({"n1:8", "n2:8"});
  auto c = s.client();
  wait_for_nodes(*c, 8);
  Watcher w(s.ctx, s.dir / "watch", s.backend);
  auto spec = make_spec(1, 0.1);
  spec.array = "0-11%3";
  auto r = submit(*c, spec);
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().to_string());
  auto* sub = r->body<fb::Submitted>();
  BOOST_REQUIRE_EQUAL(sub->job_ids()->size(), 12u);
  uint64_t array_id = sub->array_job_id();
  auto after = make_spec(1, 0.01);
  auto d = std::make_unique<fb::DependencyT>();
  d->kind = fb::DependencyKind::AfterOk;
  d->job_id = array_id;
  after.dependencies.push_back(std::move(d));
  uint64_t dep = submit_ok(*c, after);
  BOOST_TEST(get_job(*c, dep)->reason == "Dependency");
  BOOST_REQUIRE(w.wait_for(dep, fb::JobState::Succeeded, 30s));
  // Replay the transitions in stream order: never more than 3 tasks hold
  // resources at once.
  std::set<uint64_t> tasks(sub->job_ids()->begin(), sub->job_ids()->end());
  std::set<uint64_t> active;
  size_t max_active = 0;
  {
    std::lock_guard lock(w.mu);
    for (auto& [job, to] : w.log) {
      if (!tasks.count(job)) continue;
      if (to == fb::JobState::Scheduled || to == fb::JobState::Running) {
        active.insert(job);
      } else {
        active.erase(job);
      }
      max_active = std::max(max_active, active.size());
    }
  }
  BOOST_TEST(max_active <= 3u);
  BOOST_TEST(max_active == 3u);
  for (auto t : tasks) BOOST_TEST(w.saw(t, fb::JobState::Succeeded));
}

BOOST_AUTO_TEST_CASE(a_higher_tier_preempts_through_the_broker_and_queries_show_priority_factors) {
  Stack s({"n1:4"}, {"scheduler.policy=fairshare+backfill", "scheduler.preemption.tiers=true",
                     "scheduler.fairshare.shares.vision=2"});
  Watcher w(s.ctx, s.dir / "watch", s.backend);
  auto c = s.client();
  wait_for_nodes(*c, 4);
  auto low = make_spec(4, 0);  // runs until stopped
  low.grace_s = 7;
  uint64_t victim = submit_ok(*c, low);
  BOOST_REQUIRE(w.wait_for(victim, fb::JobState::Running, 15s));
  auto high = make_spec(4, 0);
  high.account = "nlp";
  high.priority = 5;
  uint64_t boss = submit_ok(*c, high);
  BOOST_REQUIRE(w.wait_for(boss, fb::JobState::Running, 15s));
  // The victim went Running -> Preempted -> Pending and waits again.
  BOOST_REQUIRE(w.wait_for(victim, fb::JobState::Pending, 15s));
  auto seen = w.states_of(victim);
  std::vector<fb::JobState> want{fb::JobState::Pending, fb::JobState::Scheduled, fb::JobState::Running,
                                 fb::JobState::Preempted, fb::JobState::Pending};
  BOOST_TEST(seen == want, boost::test_tools::per_element());
  auto rec = get_job(*c, victim);
  BOOST_REQUIRE(rec);
  BOOST_TEST(rec->state == fb::JobState::Pending);
  BOOST_TEST(rec->preemptions == 1u);
  BOOST_TEST(rec->attempt == 2u);  // a new attempt, no retry spent
  BOOST_TEST(rec->reason == "Resources");
  BOOST_TEST(rec->priority_tier == 0);
  BOOST_TEST(rec->fairshare_factor > 0.0);
  BOOST_TEST(rec->fairshare_factor <= 1.0);
  BOOST_TEST(rec->age_factor >= 0.0);
  auto running = get_job(*c, boss);
  BOOST_REQUIRE(running);
  BOOST_TEST(running->priority_tier == 5);
  // Its backfill reservation: when the job holding the node reaches its limit.
  BOOST_REQUIRE(wait_until([&] { return get_job(*c, victim)->expected_start_ns > 0; }, 5s));
  int64_t due = running->start_time_ns + int64_t{600} * 1'000'000'000;
  BOOST_TEST(std::llabs(get_job(*c, victim)->expected_start_ns - due) < int64_t{5'000'000'000});
}

BOOST_AUTO_TEST_CASE(a_bad_policy_key_stops_the_scheduler_with_the_key_named) {
  TempDir dir;
  auto [rc, out] = run({bin("trainyard-scheduler"), "--set", "scheduler.data=" + dir / "d", "--set",
                        "scheduler.backfill=sometimes"});
  BOOST_TEST(rc != 0);
  BOOST_TEST(out.find("scheduler.backfill") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_purged_jobs_fair_share_usage_survives_a_sigkill_of_the_scheduler) {
  // No decay (half_life_s = 0), so the factor is the same at any time.
  Stack s({"n1:4"}, {"scheduler.policy=fairshare", "scheduler.fairshare.half_life_s=0", "scheduler.job_retention_s=1"});
  auto c = s.client();
  wait_for_nodes(*c, 4);
  uint64_t ran = submit_ok(*c, make_spec(4, 0.5));  // vision's only run
  BOOST_REQUIRE(wait_state(*c, ran, fb::JobState::Succeeded, 15s));
  // Its record is purged a second after it ended.
  BOOST_REQUIRE(wait_until([&] { return !get_job(*c, ran); }, 15s));
  auto held = [&](const std::string& account) {
    auto spec = make_spec(1, 0.5);
    spec.account = account;
    auto r = c->call(fb::RequestBody::SubmitJob, [&](flatbuffers::FlatBufferBuilder& b) {
      return fb::CreateSubmitJob(b, fb::CreateJobSpec(b, &spec), /*hold=*/true).Union();
    });
    BOOST_REQUIRE_MESSAGE(r.ok(), r.status().to_string());
    return r->body<fb::Submitted>()->job_ids()->Get(0);
  };
  uint64_t vision = held("vision");
  uint64_t nlp = held("nlp");
  double before = 0;
  BOOST_REQUIRE(wait_until(
      [&] {
        auto v = get_job(*c, vision);
        before = v ? v->fairshare_factor : 0;
        return before > 0 && before < 1;  // vision's usage counts against it
      },
      10s));
  s.sched->kill9();
  s.sched->wait(5s);
  s.start_scheduler();
  c = s.client(3000);
  std::optional<fb::JobRecordT> v;
  BOOST_REQUIRE(wait_until([&] { return (v = get_job(*c, vision)).has_value(); }, 15s));
  // The purged job's usage was restored with the rest (before, it was lost
  // with its record and vision's factor came back as 1).
  BOOST_TEST(v->fairshare_factor == before, boost::test_tools::tolerance(1e-9));
  BOOST_TEST(get_job(*c, nlp)->fairshare_factor == 1.0);
}

// Unit tests of the broker's pure core (Cluster) and its stored records:
// free-GPU accounting, gangs all or nothing, idempotent Allocate, drain,
// liveness, revoke, agent reconciliation and restart.
#define BOOST_TEST_MODULE broker_core
#include <boost/test/unit_test.hpp>

#include <algorithm>

#include "core/cluster.h"
#include "print.h"
#include "records.h"

namespace trainyard::broker {
inline std::ostream& operator<<(std::ostream& os, LeaseState s) { return os << to_string(s); }
}  // namespace trainyard::broker

using namespace trainyard;
using namespace trainyard::broker;

namespace {

constexpr int64_t kSecond = 1'000'000'000;

std::shared_ptr<const fb::NodeInfoT> node_info(const std::string& name, int gpus, const std::string& type = "A100",
                                               uint32_t cpus = 64, uint64_t memory_mb = 512 * 1024) {
  auto n = std::make_shared<fb::NodeInfoT>();
  n->name = name;
  for (int i = 0; i < gpus; ++i) {
    auto g = std::make_unique<fb::GpuInfoT>();
    g->index = static_cast<uint32_t>(i);
    g->type = type;
    g->memory_mb = 81920;
    g->uuid = name + "-gpu-" + std::to_string(i);
    n->gpus.push_back(std::move(g));
  }
  n->cpus = cpus;
  n->memory_mb = memory_mb;
  n->agent_endpoint = "tcp://127.0.0.1:7000";
  return n;
}

std::shared_ptr<const fb::JobSpecT> spec(const std::string& gpu_type = "", uint32_t cpus = 4, uint64_t mem = 1024) {
  auto s = std::make_shared<fb::JobSpecT>();
  s->name = "train";
  s->user = "ada";
  s->command = {"python", "train.py"};
  s->gpu_type = gpu_type;
  s->cpus = cpus;
  s->memory_mb = mem;
  s->grace_s = 10;
  return s;
}

AllocateRequest single(uint64_t job, const std::string& node, std::vector<uint32_t> gpus, uint32_t attempt = 0) {
  AllocateRequest r;
  r.job_id = job;
  r.attempt = attempt;
  r.spec = spec();
  r.placements.push_back(PlacementRequest{node, std::move(gpus), 0, 0});
  return r;
}

size_t count(const Effects& fx, EventKind k) {
  return static_cast<size_t>(std::count_if(fx.events.begin(), fx.events.end(), [k](const Event& e) { return e.kind == k; }));
}

struct Fixture {
  Cluster cluster{ClusterOptions{5 * kSecond}};
  Now now{1'700'000'000 * kSecond, 100 * kSecond};

  void advance(int64_t ns) {
    now.wall_ns += ns;
    now.mono_ns += ns;
  }
  void add_node(const std::string& name, int gpus, const std::string& type = "A100") {
    Effects fx;
    BOOST_REQUIRE(cluster.register_node(node_info(name, gpus, type), {}, now, fx));
  }
  uint64_t grant(uint64_t job, const std::string& node, std::vector<uint32_t> gpus) {
    Effects fx;
    auto r = cluster.allocate(single(job, node, std::move(gpus)), now, fx);
    BOOST_REQUIRE_MESSAGE(r.ok(), r.status().to_string());
    return r->front();
  }
};

}  // namespace

BOOST_FIXTURE_TEST_CASE(allocate_grants_only_free_gpus_and_release_frees_them, Fixture) {
  add_node("gpu-1", 4);
  BOOST_TEST(cluster.free_gpus() == 4u);
  Effects fx;
  auto a = cluster.allocate(single(1, "gpu-1", {0, 1}), now, fx);
  BOOST_REQUIRE(a.ok());
  BOOST_TEST(count(fx, EventKind::kLeaseGranted) == 1u);
  BOOST_TEST(fx.events[0].lease.gpus == std::vector<uint32_t>({0, 1}));
  BOOST_TEST(fx.events[0].lease.gpu_type == "A100");
  BOOST_TEST(fx.events[0].lease.spec->command.size() == 2u);
  BOOST_TEST(fx.leases.count(a->front()) == 1u);
  BOOST_TEST(fx.lease_counter);
  BOOST_TEST(cluster.free_gpus() == 2u);

  // Overlapping GPUs: refused, naming the node and the GPU.
  Effects fx2;
  auto b = cluster.allocate(single(2, "gpu-1", {1, 2}), now, fx2);
  BOOST_REQUIRE(!b.ok());
  BOOST_TEST(b.status().code() == ErrorCode::Conflict);
  BOOST_TEST(b.status().message().find("gpu-1") != std::string::npos);
  BOOST_TEST(b.status().message().find("GPUs 1 ") != std::string::npos);
  BOOST_TEST(fx2.empty());
  BOOST_TEST(cluster.free_gpus() == 2u);

  // Disjoint GPUs: granted.
  BOOST_TEST(grant(3, "gpu-1", {2, 3}) != a->front());
  BOOST_TEST(cluster.free_gpus() == 0u);

  Effects fx3;
  BOOST_REQUIRE(cluster.release(a->front(), false, "job done", 0, now, fx3));
  BOOST_TEST(count(fx3, EventKind::kLeaseReleased) == 1u);
  BOOST_TEST(cluster.free_gpus() == 2u);
  BOOST_TEST(cluster.lease(a->front())->state == LeaseState::kReleased);
  BOOST_TEST(!cluster.lease(a->front())->spec);  // ended leases stay slim
  // Now job 2 fits.
  BOOST_TEST(grant(2, "gpu-1", {1, 0}) > 0u);
  // Releasing an ended lease again is a no-op; an unknown one is NotFound.
  Effects fx4;
  BOOST_TEST(cluster.release(a->front(), false, "", 0, now, fx4).ok());
  BOOST_TEST(fx4.events.empty());
  BOOST_TEST(cluster.release(999, false, "", 0, now, fx4).code() == ErrorCode::NotFound);
}

BOOST_FIXTURE_TEST_CASE(unknown_gpu_node_and_malformed_requests_are_refused, Fixture) {
  add_node("gpu-1", 2);
  Effects fx;
  auto r = cluster.allocate(single(1, "gpu-1", {2}), now, fx);
  BOOST_TEST(r.status().code() == ErrorCode::Conflict);
  BOOST_TEST(r.status().message().find("no GPU 2") != std::string::npos);
  r = cluster.allocate(single(1, "gpu-9", {0}), now, fx);
  BOOST_TEST(r.status().code() == ErrorCode::Conflict);
  BOOST_TEST(r.status().message().find("gpu-9") != std::string::npos);
  r = cluster.allocate(single(0, "gpu-1", {0}), now, fx);
  BOOST_TEST(r.status().code() == ErrorCode::InvalidArgument);
  BOOST_TEST(r.status().message().find("job_id") != std::string::npos);
  r = cluster.allocate(single(1, "gpu-1", {0, 0}), now, fx);
  BOOST_TEST(r.status().code() == ErrorCode::InvalidArgument);
  AllocateRequest none;
  none.job_id = 1;
  BOOST_TEST(cluster.allocate(none, now, fx).status().code() == ErrorCode::InvalidArgument);
  BOOST_TEST(fx.empty());
  // Node names become topics: no dots.
  BOOST_TEST(cluster.register_node(node_info("gpu-1.lab", 1), {}, now, fx).code() == ErrorCode::InvalidArgument);
}

BOOST_FIXTURE_TEST_CASE(gpu_type_cpus_and_memory_are_respected, Fixture) {
  Effects fx;
  BOOST_REQUIRE(cluster.register_node(node_info("small", 4, "H100", 8, 4096), {}, now, fx));
  auto r = single(1, "small", {0});
  r.spec = spec("A100");
  BOOST_TEST(cluster.allocate(r, now, fx).status().code() == ErrorCode::Conflict);
  r.spec = spec("h100", 6, 1024);  // type matches regardless of case
  BOOST_REQUIRE(cluster.allocate(r, now, fx).ok());
  auto r2 = single(2, "small", {1});
  r2.spec = spec("", 4, 1024);  // 6 + 4 CPUs > 8
  auto c = cluster.allocate(r2, now, fx);
  BOOST_TEST(c.status().code() == ErrorCode::Conflict);
  BOOST_TEST(c.status().message().find("CPUs") != std::string::npos);
  r2.spec = spec("", 2, 4000);  // 1024 + 4000 MiB > 4096
  c = cluster.allocate(r2, now, fx);
  BOOST_TEST(c.status().code() == ErrorCode::Conflict);
  BOOST_TEST(c.status().message().find("memory") != std::string::npos);
  // Asks so large that used + asked wraps (6 + 2^32 - 2 is 4 in 32 bits,
  // 1024 + 2^64 - 512 is 512 in 64): refused, not squeezed in.
  r2.spec = spec("", UINT32_MAX - 1, 1024);
  BOOST_TEST(cluster.allocate(r2, now, fx).status().code() == ErrorCode::Conflict);
  r2.spec = spec("", 2, UINT64_MAX - 511);
  BOOST_TEST(cluster.allocate(r2, now, fx).status().code() == ErrorCode::Conflict);
  r2.spec = spec("", 2, 3072);
  BOOST_TEST(cluster.allocate(r2, now, fx).ok());
}

BOOST_FIXTURE_TEST_CASE(gang_is_granted_all_or_nothing, Fixture) {
  add_node("a", 4);
  add_node("b", 4);
  add_node("c", 4);
  grant(1, "b", {0});
  AllocateRequest gang;
  gang.job_id = 7;
  gang.spec = spec();
  gang.placements = {{"a", {0, 1}, 0, 0}, {"b", {0, 1}, 0, 0}};
  Effects fx;
  auto r = cluster.allocate(gang, now, fx);
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.status().code() == ErrorCode::Conflict);
  BOOST_TEST(r.status().message().find("node b") != std::string::npos);
  BOOST_TEST(fx.empty());
  BOOST_TEST(cluster.node("a")->gpu_holder.empty());  // nothing taken on a

  gang.placements = {{"c", {2, 3}, 0, 0}, {"a", {0, 1}, 0, 0}, {"b", {1, 2}, 0, 0}};
  r = cluster.allocate(gang, now, fx);
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().to_string());
  BOOST_TEST(r->size() == 3u);
  BOOST_TEST(count(fx, EventKind::kLeaseGranted) == 3u);
  for (uint32_t rank = 0; rank < 3; ++rank) {
    const Lease* l = cluster.lease((*r)[rank]);
    BOOST_TEST(l->node_rank == rank);
    BOOST_TEST(l->nodes == std::vector<std::string>({"c", "a", "b"}));
    BOOST_TEST(l->node == l->nodes[rank]);
  }
  BOOST_TEST(cluster.free_gpus() == 12u - 1u - 6u);
  // A node twice in one gang is malformed.
  gang.job_id = 8;
  gang.placements = {{"c", {0}, 0, 0}, {"c", {1}, 0, 0}};
  BOOST_TEST(cluster.allocate(gang, now, fx).status().code() == ErrorCode::InvalidArgument);
}

BOOST_FIXTURE_TEST_CASE(allocate_is_idempotent_for_a_job_attempt, Fixture) {
  add_node("a", 4);
  add_node("b", 4);
  uint64_t first = grant(5, "a", {0, 1});
  // The scheduler crashed and asks again (even for other GPUs): same lease.
  Effects fx;
  auto again = cluster.allocate(single(5, "a", {2, 3}), now, fx);
  BOOST_REQUIRE(again.ok());
  BOOST_TEST(again->front() == first);
  BOOST_TEST(fx.empty());
  BOOST_TEST(cluster.free_gpus() == 6u);

  AllocateRequest gang;
  gang.job_id = 6;
  gang.spec = spec();
  gang.placements = {{"a", {2}, 0, 0}, {"b", {0}, 0, 0}};
  auto g1 = cluster.allocate(gang, now, fx);
  BOOST_REQUIRE(g1.ok());
  Effects fx2;
  auto g2 = cluster.allocate(gang, now, fx2);
  BOOST_REQUIRE(g2.ok());
  BOOST_TEST(*g1 == *g2);
  BOOST_TEST(fx2.empty());

  // Once that attempt's lease has ended, the same attempt is refused; the
  // next attempt gets a new lease.
  BOOST_REQUIRE(cluster.release(first, false, "", 0, now, fx2));
  BOOST_TEST(cluster.allocate(single(5, "a", {0}), now, fx2).status().code() == ErrorCode::FailedPrecondition);
  auto next = cluster.allocate(single(5, "a", {0}, 1), now, fx2);
  BOOST_REQUIRE(next.ok());
  BOOST_TEST(next->front() != first);
}

BOOST_FIXTURE_TEST_CASE(drained_node_takes_no_new_leases, Fixture) {
  add_node("a", 2);
  uint64_t running = grant(1, "a", {0});
  Effects fx;
  BOOST_REQUIRE(cluster.drain("a", true, "disk swap", fx));
  BOOST_TEST(count(fx, EventKind::kNodeDrain) == 1u);
  BOOST_TEST(fx.events[0].drained);
  BOOST_TEST(fx.events[0].reason == "disk swap");
  BOOST_TEST(fx.nodes.count("a") == 1u);
  auto r = cluster.allocate(single(2, "a", {1}), now, fx);
  BOOST_TEST(r.status().code() == ErrorCode::Conflict);
  BOOST_TEST(r.status().message().find("drained (disk swap)") != std::string::npos);
  BOOST_TEST(cluster.lease(running)->live());  // running work carries on
  BOOST_TEST(cluster.free_gpus() == 0u);     // a drained node offers nothing
  // Draining again with the same reason changes nothing.
  Effects same;
  BOOST_REQUIRE(cluster.drain("a", true, "disk swap", same));
  BOOST_TEST(same.empty());
  Effects undo;
  BOOST_REQUIRE(cluster.drain("a", false, "", undo));
  BOOST_TEST(count(undo, EventKind::kNodeDrain) == 1u);
  BOOST_TEST(cluster.allocate(single(2, "a", {1}), now, undo).ok());
  BOOST_TEST(cluster.drain("zz", true, "", undo).code() == ErrorCode::NotFound);
}

BOOST_FIXTURE_TEST_CASE(silent_node_goes_down_and_its_leases_are_lost, Fixture) {
  add_node("a", 4);
  add_node("b", 4);
  uint64_t l1 = grant(1, "a", {0});
  uint64_t l2 = grant(2, "a", {1, 2});
  uint64_t l3 = grant(3, "b", {0});
  Effects rv;
  BOOST_REQUIRE(cluster.release(l2, true, "cancel", 0, now, rv));  // revoking leases are lost too

  advance(3 * kSecond);
  Effects hb;
  BOOST_REQUIRE(cluster.heartbeat("b", {l3}, now, hb));
  BOOST_TEST(hb.events.empty());
  Effects fx;
  cluster.check_liveness(now, fx);
  BOOST_TEST(fx.events.empty());

  advance(3 * kSecond);  // a: 6 s silent, b: 3 s
  cluster.check_liveness(now, fx);
  BOOST_REQUIRE(count(fx, EventKind::kNodeDown) == 1u);
  BOOST_TEST(fx.events[0].node == "a");
  BOOST_TEST(count(fx, EventKind::kLeaseLost) == 2u);
  for (auto& e : fx.events) {
    if (e.kind == EventKind::kLeaseLost) BOOST_TEST((e.lease.id == l1 || e.lease.id == l2));
  }
  BOOST_TEST(cluster.lease(l1)->state == LeaseState::kLost);
  BOOST_TEST(cluster.lease(l3)->live());
  BOOST_TEST(!cluster.node("a")->up);
  BOOST_TEST(cluster.node("a")->gpu_holder.empty());

  // Its GPUs are not granted until it registers again; its heartbeat is
  // told to register.
  Effects fx2;
  BOOST_TEST(cluster.allocate(single(4, "a", {3}), now, fx2).status().code() == ErrorCode::Conflict);
  BOOST_TEST(cluster.heartbeat("a", {l1}, now, fx2).code() == ErrorCode::NotFound);
  BOOST_TEST(cluster.heartbeat("nobody", {}, now, fx2).code() == ErrorCode::NotFound);

  // It comes back still running l1: the broker declared it lost, so the
  // agent must kill it.
  Effects back;
  BOOST_REQUIRE(cluster.register_node(node_info("a", 4), {l1}, now, back));
  BOOST_TEST(count(back, EventKind::kNodeUp) == 1u);
  BOOST_REQUIRE(count(back, EventKind::kLeaseRevoked) == 1u);
  BOOST_TEST(back.events[1].lease.id == l1);
  BOOST_TEST(back.events[1].node == "a");
  BOOST_TEST(cluster.allocate(single(4, "a", {0, 1, 2, 3}), now, back).ok());
  // A run.finished of the lost lease arriving late changes nothing.
  Effects late;
  cluster.run_finished(l1, "a", "done", now, late);
  BOOST_TEST(late.empty());
}

BOOST_FIXTURE_TEST_CASE(a_node_back_with_a_new_data_directory_loses_its_leases_one_restarted_keeps_them, Fixture) {
  auto with = [](uint64_t incarnation) {
    auto n = std::make_shared<fb::NodeInfoT>(*node_info("a", 2));
    n->incarnation = incarnation;
    return std::shared_ptr<const fb::NodeInfoT>(n);
  };
  Effects fx;
  BOOST_REQUIRE(cluster.register_node(with(7), {}, now, fx));
  uint64_t l = grant(1, "a", {0});
  // Restarted on the same directory (or an agent that sends none): kept.
  for (uint64_t again : {0ull, 7ull}) {
    Effects same;
    BOOST_REQUIRE(cluster.register_node(with(again), {l}, now, same));
    BOOST_TEST(count(same, EventKind::kLeaseLost) == 0u);
  }
  // A new directory: its agent will never report the lease; it is lost.
  Effects wiped;
  BOOST_REQUIRE(cluster.register_node(with(8), {}, now, wiped));
  BOOST_REQUIRE(count(wiped, EventKind::kLeaseLost) == 1u);
  BOOST_TEST(cluster.lease(l)->state == LeaseState::kLost);
  BOOST_TEST(cluster.lease(l)->end_reason.find("new data directory") != std::string::npos);
  BOOST_TEST(cluster.node("a")->up);
  BOOST_TEST(cluster.free_gpus() == 2u);
}

BOOST_FIXTURE_TEST_CASE(revoke_keeps_gpus_until_run_finished, Fixture) {
  add_node("a", 2);
  uint64_t l = grant(1, "a", {0, 1});
  Effects fx;
  BOOST_REQUIRE(cluster.release(l, true, "cancelled by ada", 5, now, fx));
  BOOST_REQUIRE(count(fx, EventKind::kLeaseRevoked) == 1u);
  BOOST_TEST(fx.events[0].reason == "cancelled by ada");
  BOOST_TEST(fx.events[0].grace_s == 5u);
  BOOST_TEST(cluster.lease(l)->state == LeaseState::kRevoking);
  BOOST_TEST(cluster.allocate(single(2, "a", {0}), now, fx).status().code() == ErrorCode::Conflict);
  Effects again;
  BOOST_REQUIRE(cluster.release(l, true, "cancelled by ada", 5, now, again));
  BOOST_TEST(again.events.empty());  // asked once is enough
  Effects wrong;
  cluster.run_finished(l, "b", "done", now, wrong);  // another node cannot end it
  BOOST_TEST(wrong.empty());
  Effects done;
  cluster.run_finished(l, "a", "run finished: Cancelled", now, done);
  BOOST_REQUIRE(count(done, EventKind::kLeaseReleased) == 1u);
  BOOST_TEST(cluster.free_gpus() == 2u);
  BOOST_TEST(cluster.allocate(single(2, "a", {0}), now, done).ok());
}

BOOST_FIXTURE_TEST_CASE(revoked_lease_the_agent_no_longer_runs_is_freed_after_grace, Fixture) {
  add_node("a", 1);
  uint64_t l = grant(1, "a", {0});
  Effects fx;
  BOOST_REQUIRE(cluster.release(l, true, "cancel", 2, now, fx));
  advance(1 * kSecond);
  Effects hb;
  BOOST_REQUIRE(cluster.heartbeat("a", {}, now, hb));
  BOOST_TEST(hb.events.empty());  // within grace + timeout: run.finished may still come
  advance(7 * kSecond);
  BOOST_REQUIRE(cluster.heartbeat("a", {}, now, hb));
  BOOST_TEST(count(hb, EventKind::kLeaseReleased) == 1u);
  BOOST_TEST(cluster.free_gpus() == 1u);
}

BOOST_FIXTURE_TEST_CASE(heartbeat_revokes_leases_the_broker_never_granted_or_lost, Fixture) {
  add_node("a", 2);
  add_node("b", 2);
  uint64_t on_b = grant(1, "b", {0});
  Effects fx;
  BOOST_REQUIRE(cluster.heartbeat("a", {on_b, 777}, now, fx));
  BOOST_TEST(count(fx, EventKind::kLeaseRevoked) == 2u);
  for (auto& e : fx.events) BOOST_TEST(e.node == "a");
  Effects again;
  BOOST_REQUIRE(cluster.heartbeat("a", {on_b, 777}, now, again));
  BOOST_TEST(again.events.empty());  // said once
  BOOST_TEST(cluster.lease(on_b)->live());  // b's lease is untouched
}

BOOST_FIXTURE_TEST_CASE(restart_restores_leases_and_gives_nodes_a_grace_period, Fixture) {
  add_node("a", 4);
  uint64_t l1 = grant(1, "a", {0, 1});
  uint64_t l2 = grant(2, "a", {2});
  Effects fx;
  BOOST_REQUIRE(cluster.release(l2, false, "", 0, now, fx));

  // What the shell would persist, through the record encoding.
  Cluster restarted(ClusterOptions{5 * kSecond});
  auto n = decode_node(encode_node(*cluster.node("a")));
  BOOST_REQUIRE(n.ok());
  restarted.restore_node(std::move(n).value());
  for (uint64_t id : {l1, l2}) {
    auto l = decode_lease(encode_lease(*cluster.lease(id)));
    BOOST_REQUIRE(l.ok());
    BOOST_REQUIRE(restarted.restore_lease(std::move(l).value()));
  }
  restarted.restore_next_lease_id(cluster.next_lease_id());
  advance(60 * kSecond);  // the broker was down a minute
  restarted.resume(now);

  Effects none;
  restarted.check_liveness(now, none);
  BOOST_TEST(none.events.empty());  // grace: nodes get a full timeout
  const Lease* l = restarted.lease(l1);
  BOOST_REQUIRE(l);
  BOOST_TEST(l->live());
  BOOST_TEST(l->gpus == std::vector<uint32_t>({0, 1}));
  BOOST_TEST(l->spec->command == std::vector<std::string>({"python", "train.py"}));
  BOOST_TEST(restarted.lease(l2)->state == LeaseState::kReleased);
  BOOST_TEST(restarted.free_gpus() == 2u);
  BOOST_TEST(restarted.allocate(single(9, "a", {1}), now, none).status().code() == ErrorCode::Conflict);
  auto same = restarted.allocate(single(1, "a", {3}), now, none);
  BOOST_REQUIRE(same.ok());
  BOOST_TEST(same->front() == l1);
  auto fresh = restarted.allocate(single(9, "a", {2, 3}), now, none);
  BOOST_REQUIRE(fresh.ok());
  BOOST_TEST(fresh->front() > l2);  // lease ids are never reused

  advance(6 * kSecond);
  Effects down;
  restarted.check_liveness(now, down);
  BOOST_TEST(count(down, EventKind::kNodeDown) == 1u);
  BOOST_TEST(count(down, EventKind::kLeaseLost) == 2u);
}

BOOST_AUTO_TEST_CASE(corrupt_records_are_reported_not_read) {
  BOOST_TEST(decode_node("not a flatbuffer at all").status().code() == ErrorCode::Internal);
  BOOST_TEST(decode_lease(std::string(3, '\0')).status().code() == ErrorCode::Internal);
  // Verifiable, but an enum no schema names: refused before anything reads it.
  Lease l;
  l.id = 7;
  l.job_id = 1;
  l.node = "a";
  auto spec = std::make_shared<fb::JobSpecT>();
  spec->command = {"true"};
  auto dep = std::make_unique<fb::DependencyT>();
  dep->kind = static_cast<fb::DependencyKind>(9);
  spec->dependencies.push_back(std::move(dep));
  l.spec = spec;
  auto bad = decode_lease(encode_lease(l));
  BOOST_TEST((bad.status().code() == ErrorCode::Internal));
  BOOST_TEST(bad.status().message().find("dependencies[0].kind") != std::string::npos, bad.status().message());
  spec->dependencies.clear();
  BOOST_TEST(decode_lease(encode_lease(l)).ok());
  l.spec = nullptr;  // an ended lease keeps no spec: still readable
  BOOST_TEST(decode_lease(encode_lease(l)).ok());
}

BOOST_FIXTURE_TEST_CASE(ended_leases_are_forgotten_after_a_while_but_live_ones_never, Fixture) {
  add_node("a", 4);
  add_node("b", 4);
  uint64_t done = grant(1, "a", {0});
  uint64_t running = grant(2, "a", {1});
  AllocateRequest gang;
  gang.job_id = 3;
  gang.spec = spec();
  gang.placements = {{"a", {2}, 0, 0}, {"b", {0}, 0, 0}};
  Effects fx;
  auto g = cluster.allocate(gang, now, fx);
  BOOST_REQUIRE(g.ok());
  BOOST_REQUIRE(cluster.release(done, false, "", 0, now, fx));
  BOOST_REQUIRE(cluster.release((*g)[0], false, "", 0, now, fx));  // half the gang ended
  advance(100 * kSecond);

  Effects forget;
  cluster.forget_ended_before(now.wall_ns - 50 * kSecond, 1000, forget);
  BOOST_TEST(forget.forgotten == std::set<uint64_t>({done}));
  BOOST_TEST(!cluster.lease(done));
  BOOST_TEST(cluster.lease(running));
  BOOST_TEST(cluster.lease((*g)[0]));  // kept while its gang partner lives
  // A forgotten attempt is granted afresh.
  auto again = cluster.allocate(single(1, "a", {0}), now, forget);
  BOOST_REQUIRE(again.ok());
  BOOST_TEST(again->front() != done);

  Effects end;
  BOOST_REQUIRE(cluster.release((*g)[1], false, "", 0, now, end));
  advance(100 * kSecond);
  cluster.forget_ended_before(now.wall_ns - 50 * kSecond, 1000, end);
  BOOST_TEST(end.forgotten == std::set<uint64_t>({(*g)[0], (*g)[1]}));
  BOOST_TEST(cluster.lease_count() == 2u);  // the two live ones
}

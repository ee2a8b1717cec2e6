// Unit tests of the broker's pure core (Cluster) over a node's life: a
// silent node going down, an agent back with a new data directory, revoke
// and grace, agent reconciliation, restart, corrupt and ended records.
#include <boost/test/unit_test.hpp>

#include "core_test_support.h"

using namespace trainyard;
using namespace trainyard::broker;
using namespace trainyard::broker::core_testing;

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

// Unit tests of the broker's pure core (Cluster): free-GPU accounting, GPU
// types, CPUs and memory, gangs all or nothing, idempotent Allocate, drain.
// Liveness, revocation, restart and stored records: node_lifecycle_test.cc.
#define BOOST_TEST_MODULE broker_core
#include <boost/test/unit_test.hpp>

#include "core_test_support.h"

using namespace trainyard;
using namespace trainyard::broker;
using namespace trainyard::broker::core_testing;

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

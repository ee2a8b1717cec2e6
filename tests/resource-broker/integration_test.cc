// Integration tests: the real trainyard-resource-broker and trainyard-bus on
// loopback, driven by rpc clients acting as agents and schedulers, with a
// durable subscriber checking the node.* and lease.<node>.* events.
#define BOOST_TEST_MODULE broker_integration
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <barrier>
#include <cstdio>
#include <map>
#include <set>
#include <thread>

#include "harness.h"
#include "print.h"

using namespace trainyard;
using namespace trainyard::broker_test;
using namespace std::chrono_literals;
using trainyard::testing::wait_until;

BOOST_AUTO_TEST_CASE(two_schedulers_racing_for_the_same_gpus_one_wins) {
  Stack stack;
  Agent agent(stack, "node-a", 8);
  BOOST_REQUIRE(agent.start());
  Watcher watcher(stack, {"lease.node-a."});
  auto s1 = stack.client();
  auto s2 = stack.client();
  constexpr int kRounds = 20;
  std::vector<uint64_t> winners;
  for (int round = 0; round < kRounds; ++round) {
    // Both ask for GPUs 2-5, or (odd rounds) the second asks 4-7 and overlaps on 4-5 only.
    std::vector<uint32_t> a{2, 3, 4, 5};
    std::vector<uint32_t> b = round % 2 ? std::vector<uint32_t>{4, 5, 6, 7} : a;
    std::barrier go(2);
    std::optional<Result<std::vector<uint64_t>>> r1, r2;
    std::thread t1([&] {
      go.arrive_and_wait();
      r1 = allocate(*s1, 1000 + round * 2, "node-a", a);
    });
    std::thread t2([&] {
      go.arrive_and_wait();
      r2 = allocate(*s2, 1001 + round * 2, "node-a", b);
    });
    t1.join();
    t2.join();
    BOOST_REQUIRE_MESSAGE(r1->ok() != r2->ok(), "round " << round << ": exactly one scheduler must win ("
                                                         << r1->status().to_string() << " / "
                                                         << r2->status().to_string() << ")");
    auto& won = r1->ok() ? *r1 : *r2;
    auto& lost = r1->ok() ? *r2 : *r1;
    BOOST_TEST(lost.status().code() == ErrorCode::Conflict);
    BOOST_TEST(lost.status().message().find("node-a") != std::string::npos);
    // The refusal names the node and exactly the GPUs in the way.
    std::string overlap = round % 2 ? "GPUs 4,5 " : "GPUs 2,3,4,5 ";
    BOOST_TEST(lost.status().message().find(overlap) != std::string::npos, lost.status().message());
    winners.push_back(won->front());
    BOOST_REQUIRE(release(*s1, won->front(), false, "round over"));
  }
  // Every winner's lease was published once, with its GPUs and spec, then released.
  BOOST_REQUIRE(watcher.wait_for(".released", kRounds));
  BOOST_TEST(watcher.count(".granted") == static_cast<size_t>(kRounds));
  for (auto id : winners) {
    auto g = watcher.matching(".granted", id);
    BOOST_REQUIRE(g.size() == 1u);
    BOOST_TEST(g[0].node == "node-a");
    BOOST_TEST(g[0].gpus.size() == 4u);
    BOOST_TEST(g[0].has_spec);
    BOOST_TEST(watcher.count(".released", id) == 1u);
  }
}

BOOST_AUTO_TEST_CASE(a_gang_is_granted_on_every_node_or_on_none) {
  Stack stack;
  Agent a(stack, "node-a", 4), b(stack, "node-b", 4);
  BOOST_REQUIRE(a.start());
  BOOST_REQUIRE(b.start());
  Watcher watcher(stack, {"lease."});
  auto sched = stack.client();
  BOOST_REQUIRE(allocate(*sched, 1, "node-b", {3}).ok());
  auto refused = allocate_gang(*sched, 2, {{"node-a", {0, 1}}, {"node-b", {2, 3}}});
  BOOST_TEST(refused.status().code() == ErrorCode::Conflict);
  auto rows = list_nodes(*sched);
  BOOST_REQUIRE(rows.ok());
  BOOST_TEST(find(*rows, "node-a")->allocated_gpus.empty());  // nothing half-granted
  auto gang = allocate_gang(*sched, 2, {{"node-a", {0, 1}}, {"node-b", {0, 1}}});
  BOOST_REQUIRE_MESSAGE(gang.ok(), gang.status().to_string());
  BOOST_REQUIRE(gang->size() == 2u);
  BOOST_REQUIRE(watcher.wait_for(".granted", 3));
  for (uint32_t rank = 0; rank < 2; ++rank) {
    auto g = watcher.matching(".granted", (*gang)[rank]);
    BOOST_REQUIRE(g.size() == 1u);
    BOOST_TEST(g[0].node_rank == rank);
    BOOST_TEST(g[0].nodes == std::vector<std::string>({"node-a", "node-b"}));
    BOOST_TEST(g[0].topic == "lease." + g[0].node + ".granted");
  }
  // The scheduler, restarted, asks again: the same leases.
  auto again = allocate_gang(*sched, 2, {{"node-a", {2, 3}}, {"node-b", {0, 1}}});
  BOOST_REQUIRE(again.ok());
  BOOST_TEST(*again == *gang);
}

BOOST_AUTO_TEST_CASE(a_node_that_stops_heartbeating_goes_down_and_its_leases_are_lost) {
  Stack stack(1000);
  Agent a(stack, "node-a", 4), b(stack, "node-b", 4);
  BOOST_REQUIRE(a.start());
  BOOST_REQUIRE(b.start());
  Watcher watcher(stack);
  auto sched = stack.client();
  auto l1 = allocate(*sched, 1, "node-a", {0, 1});
  auto l2 = allocate(*sched, 2, "node-b", {0});
  BOOST_REQUIRE(l1.ok());
  BOOST_REQUIRE(l2.ok());
  a.set_running(*l1);

  a.silence(true);
  BOOST_REQUIRE(watcher.wait_for("node.down", 1, 0, 8000));
  BOOST_REQUIRE(watcher.wait_for("lease.node-a.lost", 1, l1->front(), 5000));
  BOOST_TEST(watcher.matching("node.down")[0].node == "node-a");
  auto rows = list_nodes(*sched);
  BOOST_REQUIRE(rows.ok());
  BOOST_TEST(!find(*rows, "node-a")->up);
  BOOST_TEST(find(*rows, "node-a")->leases.empty());
  BOOST_TEST(find(*rows, "node-b")->up);  // b kept heartbeating
  BOOST_TEST(find(*rows, "node-b")->leases == *l2);
  BOOST_TEST(watcher.count(".lost", l2->front()) == 0u);
  BOOST_TEST(heartbeat(*sched, "node-ghost").code() == ErrorCode::NotFound);  // never registered
  // Its GPUs are not granted while it is down.
  auto refused = allocate(*sched, 3, "node-a", {2});
  BOOST_TEST(refused.status().code() == ErrorCode::Conflict);
  BOOST_TEST(refused.status().message().find("down") != std::string::npos);

  // It comes back: its heartbeat is answered NotFound, it registers again
  // still running the lost lease, which the broker tells it to kill.
  a.silence(false);
  BOOST_REQUIRE(wait_until([&] { return a.registrations() >= 2; }, 5s));
  BOOST_REQUIRE(watcher.wait_for("lease.node-a.revoked", 1, l1->front()));
  BOOST_TEST(watcher.count("node.up") >= 3u);
  a.set_running({});
  BOOST_TEST(allocate(*sched, 3, "node-a", {0, 1, 2, 3}).ok());
}

BOOST_AUTO_TEST_CASE(drain_refuses_new_leases_and_list_nodes_shows_it) {
  Stack stack;
  Agent a(stack, "node-a", 2);
  BOOST_REQUIRE(a.start());
  Watcher watcher(stack, {"node."});
  auto admin = stack.client();
  auto running = allocate(*admin, 1, "node-a", {0});
  BOOST_REQUIRE(running.ok());
  BOOST_REQUIRE(drain(*admin, "node-a", true, "replacing a fan"));
  BOOST_REQUIRE(watcher.wait_for("node.drain", 1));
  BOOST_TEST(watcher.matching("node.drain")[0].drained);
  BOOST_TEST(watcher.matching("node.drain")[0].reason == "replacing a fan");

  auto refused = allocate(*admin, 2, "node-a", {1});
  BOOST_TEST(refused.status().code() == ErrorCode::Conflict);
  BOOST_TEST(refused.status().message().find("drained (replacing a fan)") != std::string::npos);
  auto rows = list_nodes(*admin);
  BOOST_REQUIRE(rows.ok());
  const NodeRow* row = find(*rows, "node-a");
  BOOST_REQUIRE(row);
  BOOST_TEST(row->drained);
  BOOST_TEST(row->up);
  BOOST_TEST(row->reason == "replacing a fan");
  BOOST_TEST(row->leases == *running);  // running work carries on
  BOOST_TEST(row->allocated_gpus == std::vector<uint32_t>({0}));
  BOOST_TEST(row->gpus == 2u);
  BOOST_TEST(row->agent_endpoint == "tcp://127.0.0.1:1/node-a");
  BOOST_TEST(row->last_heartbeat_ns > 0);
  BOOST_TEST(drain(*admin, "node-zz", true).code() == ErrorCode::NotFound);
  auto pong = admin->call(fb::RequestBody::Ping,
                          [](flatbuffers::FlatBufferBuilder& b) { return fb::CreatePing(b).Union(); });
  BOOST_REQUIRE(pong.ok());
  BOOST_REQUIRE(pong->body<fb::Pong>());
  BOOST_TEST(pong->body<fb::Pong>()->service()->str() == "resource-broker");

  BOOST_REQUIRE(drain(*admin, "node-a", false));
  BOOST_REQUIRE(watcher.wait_for("node.drain", 2));
  BOOST_TEST(!watcher.matching("node.drain")[1].drained);
  BOOST_TEST(allocate(*admin, 2, "node-a", {1}).ok());
}

BOOST_AUTO_TEST_CASE(list_nodes_comes_in_pages_that_cover_every_node_once) {
  Stack stack;
  auto admin = stack.client();
  std::vector<std::string> names;
  for (int i = 0; i < 120; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "rack%02d-node%03d", i % 7, i);
    names.push_back(name);
    BOOST_REQUIRE(register_node(*admin, name, 8));
  }
  std::sort(names.begin(), names.end());
  size_t pages = 0;
  auto paged = list_nodes(*admin, 4096, &pages);  // about ten nodes a page
  BOOST_REQUIRE_MESSAGE(paged.ok(), paged.status().to_string());
  BOOST_TEST(pages > 5u);
  std::vector<std::string> seen;
  for (auto& r : *paged) seen.push_back(r.name);
  BOOST_TEST(seen == names, "every node once, in name order");
  // The default page holds all of them; a one-byte budget still moves on.
  auto whole = list_nodes(*admin, 0, &pages);
  BOOST_REQUIRE(whole.ok());
  BOOST_TEST(pages == 1u);
  BOOST_TEST(whole->size() == names.size());
  auto single = list_nodes(*admin, 1, &pages);
  BOOST_REQUIRE(single.ok());
  BOOST_TEST(pages == names.size());
}

BOOST_AUTO_TEST_CASE(revoke_then_run_finished_releases_the_lease) {
  Stack stack;
  Agent a(stack, "node-a", 2);
  BOOST_REQUIRE(a.start());
  Watcher watcher(stack, {"lease.node-a."});
  RunPublisher runs(stack, "node-a");
  auto sched = stack.client();
  auto lease = allocate(*sched, 7, "node-a", {0, 1});
  BOOST_REQUIRE(lease.ok());
  uint64_t id = lease->front();
  a.set_running({id});
  runs.started(id, 7);

  BOOST_REQUIRE(release(*sched, id, true, "cancelled by ada"));
  BOOST_REQUIRE(watcher.wait_for(".revoked", 1, id));
  BOOST_TEST(watcher.matching(".revoked", id)[0].reason == "cancelled by ada");
  // Still held until the run has really stopped.
  auto early = allocate(*sched, 8, "node-a", {1});
  BOOST_TEST(early.status().code() == ErrorCode::Conflict);
  BOOST_TEST(watcher.count(".released", id) == 0u);

  runs.finished(id, 7, fb::RunOutcome::Cancelled, 143);
  a.set_running({});
  BOOST_REQUIRE(watcher.wait_for(".released", 1, id));
  BOOST_TEST(watcher.matching(".released", id)[0].reason.find("Cancelled") != std::string::npos);
  BOOST_TEST(allocate(*sched, 8, "node-a", {0, 1}).ok());
  // Releasing it again is harmless.
  BOOST_TEST(release(*sched, id, true).ok());
}

BOOST_AUTO_TEST_CASE(sigkill_of_the_broker_loses_no_lease_and_double_grants_no_gpu) {
  Stack stack(2000);
  Agent a(stack, "node-a", 4), b(stack, "node-b", 4);
  BOOST_REQUIRE(a.start());
  BOOST_REQUIRE(b.start());
  Watcher watcher(stack, {"lease."});

  // A scheduler cycling leases over the 8 GPUs: each step frees the GPU it
  // wants (if it holds it) then leases it to a new job. It stops at the
  // first request the dead broker does not answer: that one is in doubt.
  struct Held {
    uint64_t lease;
    uint64_t job;
  };
  std::map<std::pair<std::string, uint32_t>, Held> held;  // (node, gpu) -> lease
  std::set<uint64_t> acked;
  std::atomic<int> grants{0};
  enum class Doubt { kNone, kRelease, kAllocate } doubt = Doubt::kNone;
  uint64_t doubt_job = 0, doubt_lease = 0;
  std::pair<std::string, uint32_t> doubt_slot;
  std::thread scheduler([&] {
    auto c = stack.client(1000, 1);
    for (uint64_t job = 1;; ++job) {
      std::pair<std::string, uint32_t> slot{job % 2 ? "node-a" : "node-b", static_cast<uint32_t>((job / 2) % 4)};
      if (auto it = held.find(slot); it != held.end()) {
        auto s = release(*c, it->second.lease, false, "done");
        if (!s) {
          BOOST_REQUIRE(s.code() == ErrorCode::Unavailable);
          doubt = Doubt::kRelease;
          doubt_lease = it->second.lease;
          doubt_slot = slot;
          return;
        }
        held.erase(it);
      }
      auto r = allocate(*c, job, slot.first, {slot.second});
      if (!r.ok()) {
        BOOST_REQUIRE_MESSAGE(r.status().code() == ErrorCode::Unavailable, r.status().to_string());
        doubt = Doubt::kAllocate;
        doubt_job = job;
        doubt_slot = slot;
        return;
      }
      held[slot] = Held{r->front(), job};
      acked.insert(r->front());
      ++grants;
    }
  });
  BOOST_REQUIRE(wait_until([&] { return grants >= 40; }, 20s));
  stack.kill_broker();
  scheduler.join();
  BOOST_REQUIRE(doubt != Doubt::kNone);

  stack.start_broker();
  auto c = stack.client(2000, 2);
  // The scheduler, back, repeats its request in doubt: idempotent both ways.
  if (doubt == Doubt::kRelease) {
    BOOST_REQUIRE(release(*c, doubt_lease, false, "done"));
    held.erase(doubt_slot);
  } else {
    auto r = allocate(*c, doubt_job, doubt_slot.first, {doubt_slot.second});
    BOOST_REQUIRE_MESSAGE(r.ok(), r.status().to_string());
    held[doubt_slot] = Held{r->front(), doubt_job};
    acked.insert(r->front());
  }

  // Every lease the scheduler holds is there, on the GPUs it was granted,
  // and nothing else is: no lease lost, none granted twice.
  auto rows = list_nodes(*c);
  BOOST_REQUIRE(rows.ok());
  for (const std::string node : {"node-a", "node-b"}) {
    const NodeRow* row = find(*rows, node);
    BOOST_REQUIRE(row);
    BOOST_TEST(row->up);  // the restarted broker gave the nodes their grace
    std::set<uint64_t> want;
    std::set<uint32_t> gpus;
    for (auto& [slot, h] : held) {
      if (slot.first == node) {
        want.insert(h.lease);
        gpus.insert(slot.second);
      }
    }
    BOOST_TEST(std::set<uint64_t>(row->leases.begin(), row->leases.end()) == want);
    BOOST_TEST(std::set<uint32_t>(row->allocated_gpus.begin(), row->allocated_gpus.end()) == gpus);
  }
  for (auto& [slot, h] : held) {
    auto r = allocate(*c, 100000 + h.job, slot.first, {slot.second});
    BOOST_TEST(r.status().code() == ErrorCode::Conflict, "GPU " << slot.second << " of " << slot.first);
  }
  // It carries on: a new lease gets an id never used before.
  uint64_t max_acked = *acked.rbegin();
  BOOST_REQUIRE(release(*c, held.begin()->second.lease, false));
  auto fresh = allocate(*c, 999999, held.begin()->first.first, {held.begin()->first.second});
  BOOST_REQUIRE_MESSAGE(fresh.ok(), fresh.status().to_string());
  BOOST_TEST(fresh->front() > max_acked);
  // Every acked grant was published, exactly once, crash or not.
  BOOST_REQUIRE(watcher.wait_for(".granted", acked.size() + 1, 0, 15000));
  for (auto id : acked) BOOST_TEST(watcher.count(".granted", id) == 1u, "lease " << id);
}

BOOST_AUTO_TEST_CASE(a_subscriber_too_far_behind_gets_a_snapshot_of_nodes_and_live_leases) {
  // Outboxes keep two events per stream, trimmed every 100 ms.
  Stack stack(5000, {"broker.outbox_keep_events=2", "broker.outbox_trim_ms=100"});
  Agent a(stack, "node-a", 2), b(stack, "node-b", 2);
  BOOST_REQUIRE(a.start());
  BOOST_REQUIRE(b.start());
  auto c = stack.client();
  BOOST_REQUIRE(drain(*c, "node-b", true, "bad DIMM"));
  auto l1 = allocate(*c, 1, "node-a", {0});
  auto l2 = allocate(*c, 2, "node-a", {1});
  BOOST_REQUIRE(l1.ok());
  BOOST_REQUIRE(l2.ok());
  BOOST_REQUIRE(release(*c, l1->front(), false));
  auto l3 = allocate(*c, 3, "node-a", {0});
  BOOST_REQUIRE(l3.ok());
  BOOST_REQUIRE(release(*c, l2->front(), true, "preempted"));
  // node.@broker: up, up, drain; lease.node-a.@broker: 5 events.
  BOOST_REQUIRE(wait_trimmed(stack, "node.@broker", 2));
  BOOST_REQUIRE(wait_trimmed(stack, "lease.node-a.@broker", 4));

  Watcher late(stack, {"node.", "lease.node-a."});
  BOOST_REQUIRE(late.wait_for(".granted", 2));
  BOOST_REQUIRE(late.wait_for("node.drain", 1));
  BOOST_TEST(late.count(".granted", l2->front()) == 1u);
  BOOST_TEST(late.count(".granted", l3->front()) == 1u);
  BOOST_TEST(late.count(".granted", l1->front()) == 0u);  // released: not in the state
  BOOST_TEST(late.count(".revoked", l2->front()) == 1u);  // still revoking
  BOOST_TEST(late.count("node.up") == 2u);
  BOOST_TEST(late.matching("node.drain")[0].node == "node-b");
  BOOST_TEST(late.matching("node.drain")[0].reason == "bad DIMM");
  // Live events follow the snapshot.
  auto l4 = allocate(*c, 4, "node-a", {1});
  BOOST_TEST(l4.status().code() == ErrorCode::Conflict);  // GPU 1 still held by the revoking lease
  BOOST_REQUIRE(release(*c, l3->front(), false));
  BOOST_REQUIRE(late.wait_for(".released", 1, l3->front()));
}

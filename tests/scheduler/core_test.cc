// Unit tests of the scheduler's pure core: each rule driven directly, with
// a tiny in-test "broker" that grants what the core asks for. This file:
// placement (priority, best fit, GPU type, CPUs and memory, gangs, node
// lists and constraints, exclusive nodes, partitions); the other rules are in
// core_*_test.cc beside it, the shared helpers in core_test_support.h.
#define BOOST_TEST_MODULE scheduler_core
#include <boost/test/unit_test.hpp>

#include "core_test_support.h"

using namespace trainyard;
using namespace trainyard::scheduler;
using namespace trainyard::scheduler::testing;

BOOST_AUTO_TEST_CASE(higher_priority_tier_goes_first_then_submission_order) {
  Sim sim;
  sim.s.node_up(make_node("n1", 1));
  // Fill the node so that the three jobs queue up behind it.
  JobId blocker = sim.submit(make_spec(1));
  sim.cycle();
  JobId a = sim.submit(make_spec(1, "", 0));
  JobId b = sim.submit(make_spec(1, "", 0));
  JobId c = sim.submit(make_spec(1, "", 5));
  BOOST_TEST(sim.cycle().empty());
  sim.finish(blocker);
  BOOST_TEST((placed_ids(sim.cycle()) == std::set<JobId>{c}));
  sim.finish(c);
  BOOST_TEST((placed_ids(sim.cycle()) == std::set<JobId>{a}));
  sim.finish(a);
  BOOST_TEST((placed_ids(sim.cycle()) == std::set<JobId>{b}));
}

BOOST_AUTO_TEST_CASE(best_fit_packs_small_jobs_and_keeps_whole_nodes_for_large_ones) {
  Sim sim;
  sim.s.node_up(make_node("n1", 8));
  sim.s.node_up(make_node("n2", 8));
  JobId six = sim.submit(make_spec(6));
  sim.cycle();
  std::string busy = sim.nodes_of(six).at(0);
  JobId two = sim.submit(make_spec(2));
  sim.cycle();
  BOOST_TEST(sim.nodes_of(two).at(0) == busy);  // the fuller node, not the empty one
  JobId eight = sim.submit(make_spec(8));
  sim.cycle();
  BOOST_TEST(sim.state(eight) == JobState::Scheduled);
  BOOST_TEST(sim.nodes_of(eight).at(0) != busy);
  // No GPU is handed out twice.
  std::set<std::pair<std::string, uint32_t>> used;
  for (JobId id : {six, two, eight}) {
    auto* j = sim.s.job(id);
    for (auto g : j->gpu_indices) BOOST_TEST(used.insert({j->nodes[0], g}).second);
  }
}

BOOST_AUTO_TEST_CASE(gpu_type_is_respected_and_empty_type_takes_any) {
  Sim sim;
  sim.s.node_up(make_node("a100-1", 4, "A100"));
  sim.s.node_up(make_node("h100-1", 4, "H100"));
  JobId h = sim.submit(make_spec(4, "H100"));
  JobId a = sim.submit(make_spec(2, "A100"));
  JobId any = sim.submit(make_spec(2, ""));
  sim.cycle();
  BOOST_TEST(sim.nodes_of(h).at(0) == "h100-1");
  BOOST_TEST(sim.nodes_of(a).at(0) == "a100-1");
  BOOST_TEST(sim.nodes_of(any).at(0) == "a100-1");  // the only node with room left
  JobId more = sim.submit(make_spec(1, "H100"));
  sim.cycle();
  BOOST_TEST(sim.state(more) == JobState::Pending);
  BOOST_TEST(sim.s.reason_of(*sim.s.job(more)) == "Resources");
}

BOOST_AUTO_TEST_CASE(cpus_and_memory_are_respected) {
  Sim sim;
  sim.s.node_up(make_node("small", 8, "A100", 4, 32'000));
  sim.s.node_up(make_node("big", 8, "A100", 64, 512'000));
  auto cpu_heavy = make_spec(1);
  cpu_heavy.cpus = 16;
  JobId c = sim.submit(cpu_heavy);
  auto mem_heavy = make_spec(1);
  mem_heavy.memory_mb = 100'000;
  JobId m = sim.submit(mem_heavy);
  sim.cycle();
  BOOST_TEST(sim.nodes_of(c).at(0) == "big");
  BOOST_TEST(sim.nodes_of(m).at(0) == "big");
  // Four 1-CPU jobs fill "small"'s CPUs: the fifth has GPUs but no CPU there.
  for (int i = 0; i < 4; ++i) {
    auto s = make_spec(1);
    s.cpus = 1;
    sim.submit(s);
  }
  auto cpu16 = make_spec(0);
  cpu16.cpus = 49;  // big has 64 - 16 - 1(mem job) = 47 free: fits nowhere
  JobId none = sim.submit(cpu16);
  sim.cycle();
  BOOST_TEST(sim.state(none) == JobState::Pending);
}

BOOST_AUTO_TEST_CASE(multi_node_jobs_are_gang_scheduled_all_or_nothing) {
  Sim sim;
  sim.s.node_up(make_node("n1", 8));
  sim.s.node_up(make_node("n2", 8));
  sim.s.node_up(make_node("n3", 8));
  JobId filler = sim.submit(make_spec(8));
  sim.cycle();
  auto three = make_spec(8);
  three.nodes = 3;
  JobId gang3 = sim.submit(three);
  BOOST_TEST(sim.cycle().empty());
  BOOST_TEST(sim.state(gang3) == JobState::Pending);
  // Nothing is held for the gang that did not fit: a 2-node gang still fits.
  BOOST_TEST(sim.s.cluster().free_gpus() == 16u);
  auto two = make_spec(8);
  two.nodes = 2;
  two.priority = -1;
  JobId gang2 = sim.submit(two);
  auto allocs = sim.cycle();
  BOOST_REQUIRE_EQUAL(allocs.size(), 1u);
  BOOST_TEST(allocs[0].nodes.size() == 2u);
  BOOST_TEST(allocs[0].nodes[0].node != allocs[0].nodes[1].node);
  BOOST_TEST(sim.state(gang2) == JobState::Scheduled);
  BOOST_TEST(sim.s.job(gang2)->lease_ids.size() == 2u);
  // When everything ends, the 3-node gang gets all three nodes at once.
  sim.finish(filler);
  sim.finish(gang2);
  allocs = sim.cycle();
  BOOST_REQUIRE_EQUAL(allocs.size(), 1u);
  BOOST_TEST(allocs[0].job == gang3);
  BOOST_TEST(allocs[0].nodes.size() == 3u);
}

// Two 8-GPU nodes and a job of 4 GPUs on each: started, its leases by rank.
struct TwoNodeGang {
  Sim sim;
  fb::JobSpecT spec = [] {
    auto s = make_spec(4);
    s.nodes = 2;
    return s;
  }();
  TwoNodeGang() {
    sim.s.node_up(make_node("n1", 8));
    sim.s.node_up(make_node("n2", 8));
  }
  // Submits and starts one more; the earlier ones' output is dropped.
  JobId start() {
    JobId id = sim.submit(spec);
    sim.s.take_output();
    sim.cycle();
    sim.start(id);
    sim.s.take_output();
    return id;
  }
  void end(JobId id, size_t rank, fb::RunOutcome outcome = fb::RunOutcome::Succeeded, int32_t code = 0) {
    sim.s.run_finished(RunEnd{id, sim.s.job(id)->attempt, sim.leases[id][rank], outcome, code, 0, ""}, sim.now);
  }
  // The broker frees its leases.
  void release(JobId id) {
    for (uint64_t l : sim.leases[id]) sim.s.lease_released(l, id, sim.now);
  }
};

BOOST_AUTO_TEST_CASE(a_gang_ends_when_every_node_has_ended_and_a_failing_rank_ends_it) {
  TwoNodeGang t;
  JobId g = t.start();
  // Rank 1 succeeding alone does not end the job.
  t.end(g, 1);
  BOOST_TEST(t.sim.state(g) == JobState::Running);
  t.end(g, 0);
  BOOST_TEST(t.sim.state(g) == JobState::Succeeded);
  t.release(g);

  // Nor does rank 0 alone (its script can end before the other node's
  // ranks, as srun on a batch node waits for them): nothing is stopped.
  JobId r0 = t.start();
  t.end(r0, 0);
  t.end(r0, 0);  // told twice
  BOOST_TEST(t.sim.state(r0) == JobState::Running);
  BOOST_TEST(t.sim.s.take_output().releases.empty());
  t.end(r0, 1);
  BOOST_TEST(t.sim.state(r0) == JobState::Succeeded);
  t.release(r0);

  JobId f = t.start();
  t.end(f, 1, fb::RunOutcome::Failed, 3);
  BOOST_TEST(t.sim.state(f) == JobState::Failed);
  auto out = t.sim.s.take_output();
  BOOST_REQUIRE_EQUAL(out.releases.size(), 1u);  // rank 0 is stopped
  BOOST_TEST(out.releases[0].lease_id == t.sim.leases[f][0]);
  BOOST_TEST(out.releases[0].kill);
}

BOOST_AUTO_TEST_CASE(a_requeued_gang_counts_only_its_new_attempts_nodes) {
  TwoNodeGang t;
  JobId g = t.start();
  t.end(g, 0);  // node 0 is done; node 1 is preempted: the job is requeued
  t.end(g, 1, fb::RunOutcome::Preempted);
  t.release(g);
  BOOST_TEST(t.sim.state(g) == JobState::Pending);
  t.sim.cycle();
  t.sim.start(g);
  BOOST_TEST(t.sim.state(g) == JobState::Running);
  t.end(g, 0);  // the new attempt's node 0 alone does not end it
  BOOST_TEST(t.sim.state(g) == JobState::Running);
  t.end(g, 1);
  BOOST_TEST(t.sim.state(g) == JobState::Succeeded);
}

BOOST_AUTO_TEST_CASE(a_gangs_ended_nodes_survive_a_restart) {
  TwoNodeGang t;
  JobId g = t.start();
  auto ls = t.sim.leases[g];
  t.end(g, 0);
  // The scheduler restarts from its stored records; then node 1 ends.
  const Job* j = t.sim.s.job(g);
  fb::JobRecordT rec;
  to_record(*j, j->reason, 0, &rec);
  BOOST_TEST(rec.ranks_ended == std::vector<uint64_t>{ls[0]});
  Scheduler restored{SchedulerConfig{}};
  restored.restore_node(make_node("n1", 8), true, false);
  restored.restore_node(make_node("n2", 8), true, false);
  for (uint32_t r = 0; r < 2; ++r) {
    restored.restore_lease(Grant{ls[r], g, 1, j->nodes[r], {0, 1, 2, 3}, 1, 0, r});
  }
  restored.restore_job(from_record(rec));
  restored.finish_restore(t.sim.now);
  restored.run_finished(RunEnd{g, 1, ls[1], fb::RunOutcome::Succeeded, 0, 0, ""}, t.sim.now);
  BOOST_TEST(restored.job(g)->state == JobState::Succeeded);
}

BOOST_AUTO_TEST_CASE(node_lists_exclusions_and_constraints_choose_the_nodes) {
  Sim sim;
  sim.s.node_up(make_node("a", 8, "A100", 64, 512'000, {{"ib", "yes"}, {"rack", "r1"}}));
  sim.s.node_up(make_node("b", 8, "A100", 64, 512'000, {{"rack", "r2"}}));
  sim.s.node_up(make_node("c", 8));
  auto with = [&](std::function<void(fb::JobSpecT&)> edit) {
    auto spec = make_spec(1);
    edit(spec);
    return sim.submit(spec);
  };
  JobId listed = with([](auto& s) { s.nodelist = {"c"}; });
  JobId not_a_or_b = with([](auto& s) { s.exclude = {"a", "b"}; });
  JobId ib = with([](auto& s) { s.constraint = "ib"; });
  JobId rack = with([](auto& s) { s.constraint = "rack=r2|rack=r9"; });
  JobId both = with([](auto& s) { s.constraint = "ib&rack=r1"; });
  JobId none = with([](auto& s) { s.constraint = "ib&rack=r2"; });  // no node has both
  JobId gang = with([](auto& s) {
    s.nodelist = {"b", "a"};
    s.nodes = 2;
  });
  auto placed = placed_ids(sim.cycle());
  BOOST_TEST(placed.count(none) == 0u);
  BOOST_TEST(sim.nodes_of(listed) == std::vector<std::string>{"c"}, boost::test_tools::per_element());
  BOOST_TEST(sim.nodes_of(not_a_or_b) == std::vector<std::string>{"c"}, boost::test_tools::per_element());
  BOOST_TEST(sim.nodes_of(ib) == std::vector<std::string>{"a"}, boost::test_tools::per_element());
  BOOST_TEST(sim.nodes_of(rack) == std::vector<std::string>{"b"}, boost::test_tools::per_element());
  BOOST_TEST(sim.nodes_of(both) == std::vector<std::string>{"a"}, boost::test_tools::per_element());
  auto gang_nodes = sim.nodes_of(gang);
  std::sort(gang_nodes.begin(), gang_nodes.end());
  BOOST_TEST(gang_nodes == (std::vector<std::string>{"a", "b"}), boost::test_tools::per_element());
  BOOST_TEST(sim.state(none) == JobState::Pending);
  BOOST_TEST(sim.s.reason_of(*sim.s.job(none)) == "Resources");
}

BOOST_AUTO_TEST_CASE(an_exclusive_job_waits_for_a_free_node_and_keeps_it_to_itself) {
  Sim sim;
  sim.s.node_up(make_node("a", 8));
  sim.s.node_up(make_node("b", 8));
  JobId small = sim.submit(make_spec(1));
  sim.cycle();
  sim.start(small);
  std::string busy = sim.nodes_of(small).at(0);
  std::string free_node = busy == "a" ? "b" : "a";
  auto spec = make_spec(1);
  spec.exclusive = true;
  JobId alone = sim.submit(spec);
  sim.cycle();
  BOOST_TEST(sim.nodes_of(alone) == std::vector<std::string>{free_node}, boost::test_tools::per_element());
  sim.start(alone);
  // Seven GPUs of its node are idle, yet the next jobs go to the other node.
  std::vector<JobId> others;
  for (int i = 0; i < 8; ++i) others.push_back(sim.submit(make_spec(1)));
  sim.cycle();
  for (int i = 0; i < 7; ++i) BOOST_TEST(sim.nodes_of(others[i]) == std::vector<std::string>{busy});
  BOOST_TEST(sim.state(others[7]) == JobState::Pending);
  // A second exclusive job finds no node without other jobs.
  JobId second = sim.submit(spec);
  sim.cycle();
  BOOST_TEST(sim.state(second) == JobState::Pending);
  // Once it ends, its node takes the waiting jobs again.
  sim.finish(alone);
  auto next = placed_ids(sim.cycle());
  BOOST_TEST(next.count(others[7]) + next.count(second) >= 1u);
}

BOOST_AUTO_TEST_CASE(a_job_for_several_partitions_starts_wherever_it_can_first) {
  SchedulerConfig cfg;
  cfg.partitions = {PartitionConfig{"a", {{"pool", "a"}}, 0, 0}, PartitionConfig{"b", {{"pool", "b"}}, 0, 0},
                    PartitionConfig{"short", {{"pool", "b"}}, 0, 600}};
  Sim sim(cfg);
  sim.s.node_up(make_node("na", 1, "A100", 64, 512'000, {{"pool", "a"}}));
  sim.s.node_up(make_node("nb", 1, "A100", 64, 512'000, {{"pool", "b"}}));
  auto spec = make_spec(1);
  spec.partition = "a";
  JobId fill = sim.submit(spec);
  spec.partition = "a,b";
  JobId either = sim.submit(spec);
  auto allocs = sim.cycle();
  BOOST_TEST((placed_ids(allocs) == std::set<JobId>{fill, either}));
  BOOST_TEST(sim.nodes_of(either) == std::vector<std::string>{"nb"}, boost::test_tools::per_element());
  for (auto& a : allocs) {
    if (a.job == either) BOOST_TEST(a.partition == "b");  // what its run is told
    if (a.job == fill) BOOST_TEST(a.partition.empty());
  }
  // Its record says where it runs (squeue's %P, scontrol's Partition=), kept across a restart.
  fb::JobRecordT rec;
  to_record(*sim.s.job(either), "", 0, &rec);
  BOOST_TEST(rec.partition == "b");
  BOOST_TEST(from_record(rec).run_partition == "b");
  rec = {};
  to_record(*sim.s.job(fill), "", 0, &rec);
  BOOST_TEST(rec.partition.empty());
  // A partition of the list that refuses the job is dropped; all refusing, the first one's reason.
  spec.partition = "b,short";  // short's limit is 600 s, the job asks 3600
  JobId kept = sim.submit(spec);
  BOOST_TEST(sim.s.job(kept)->spec->partition == "b");
  spec.partition = "a,nope";
  BOOST_TEST(sim.s.submit(spec, sim.now).status().message().find("unknown partition 'nope'") != std::string::npos);
  spec.partition = "short";
  BOOST_TEST(sim.s.submit(spec, sim.now).status().message().find("maximum of partition 'short'") != std::string::npos);
}

// Unit tests of the scheduler's pure core: each rule driven directly, with
// a tiny in-test "broker" that grants what the core asks for.
#define BOOST_TEST_MODULE scheduler_core
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <map>
#include <set>

#include "core/array_spec.h"
#include "core/notify.h"
#include "core/scheduler.h"

namespace trainyard::fb {
inline std::ostream& operator<<(std::ostream& os, JobState s) { return os << EnumNameJobState(s); }
inline std::ostream& operator<<(std::ostream& os, ErrorCode c) { return os << EnumNameErrorCode(c); }
}  // namespace trainyard::fb

using namespace trainyard;
using namespace trainyard::scheduler;

namespace {

fb::NodeInfoT make_node(const std::string& name, uint32_t gpus, const std::string& type = "A100", uint32_t cpus = 64,
                        uint64_t memory_mb = 512'000, std::map<std::string, std::string> labels = {}) {
  fb::NodeInfoT n;
  n.name = name;
  for (uint32_t i = 0; i < gpus; ++i) {
    auto g = std::make_unique<fb::GpuInfoT>();
    g->index = i;
    g->type = type;
    g->memory_mb = 80'000;
    n.gpus.push_back(std::move(g));
  }
  n.cpus = cpus;
  n.memory_mb = memory_mb;
  for (auto& [k, v] : labels) {
    auto kv = std::make_unique<fb::KeyValueT>();
    kv->key = k;
    kv->value = v;
    n.labels.push_back(std::move(kv));
  }
  return n;
}

fb::JobSpecT make_spec(uint32_t gpus = 1, const std::string& type = "", int32_t priority = 0) {
  fb::JobSpecT s;
  s.name = "train";
  s.user = "alice";
  s.account = "vision";
  s.command = {"python", "train.py"};
  s.gpus_per_node = gpus;
  s.gpu_type = type;
  s.priority = priority;
  s.time_limit_s = 3600;
  return s;
}

// The core plus a broker that grants every Allocate at once.
struct Sim {
  explicit Sim(SchedulerConfig c = {}) : s(std::move(c)) {}
  Scheduler s;
  int64_t now = 1'000'000'000;
  uint64_t next_lease = 100;
  std::map<JobId, std::vector<uint64_t>> leases;  // current attempt's leases by rank
  std::map<uint64_t, JobId> lease_job;
  std::vector<ReleaseRequest> releases;

  JobId submit(const fb::JobSpecT& spec) {
    auto r = s.submit(spec, now);
    BOOST_REQUIRE_MESSAGE(r.ok(), r.status().to_string());
    return r->job_ids.at(0);
  }
  // Runs a cycle; grants each allocation (reply, then lease.granted).
  std::vector<AllocateRequest> cycle() {
    now += 1'000'000;
    s.cycle(now);
    auto out = s.take_output();
    for (auto& r : out.releases) releases.push_back(r);
    for (auto& a : out.allocations) {
      std::vector<uint64_t> ids;
      for (size_t i = 0; i < a.nodes.size(); ++i) ids.push_back(next_lease++);
      s.allocated(a.job, a.attempt, ids, now);
      for (size_t r = 0; r < a.nodes.size(); ++r) {
        Grant g{ids[r], a.job, a.attempt, a.nodes[r].node, a.nodes[r].gpus, a.nodes[r].cpus, a.nodes[r].memory_mb,
                static_cast<uint32_t>(r)};
        s.lease_granted(g, now);
        lease_job[ids[r]] = a.job;
      }
      leases[a.job] = ids;
    }
    auto rest = s.take_output();
    for (auto& r : rest.releases) releases.push_back(r);
    return out.allocations;
  }
  void start(JobId id) {
    s.run_started(id, s.job(id)->attempt, leases[id].at(0), now, now);
  }
  // The run ends; the broker frees its leases.
  void finish(JobId id, fb::RunOutcome outcome = fb::RunOutcome::Succeeded, int32_t exit_code = 0) {
    const Job* j = s.job(id);
    RunEnd e{id, j->attempt, leases[id].at(0), outcome, exit_code, 0, ""};
    s.run_finished(e, now);
    for (uint64_t l : leases[id]) s.lease_released(l, id, now);
    leases.erase(id);
  }
  JobState state(JobId id) const { return s.job(id)->state; }
  const std::vector<std::string>& nodes_of(JobId id) const { return s.job(id)->nodes; }
};

std::set<JobId> placed_ids(const std::vector<AllocateRequest>& allocs) {
  std::set<JobId> out;
  for (auto& a : allocs) out.insert(a.job);
  return out;
}

}  // namespace

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

BOOST_AUTO_TEST_CASE(array_throttle_never_exceeds_its_limit) {
  Sim sim;
  for (int i = 0; i < 4; ++i) sim.s.node_up(make_node("n" + std::to_string(i), 8));
  auto spec = make_spec(1);
  spec.array = "0-19%4";
  auto r = sim.s.submit(spec, sim.now);
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(r->job_ids.size() == 20u);
  BOOST_TEST(r->array_job_id != 0u);
  std::set<int32_t> indices;
  size_t max_active = 0, done = 0;
  for (int round = 0; round < 100 && done < 20; ++round) {
    sim.cycle();
    size_t active = 0;
    std::vector<JobId> running;
    for (JobId id : r->job_ids) {
      auto* j = sim.s.job(id);
      if (j->state == JobState::Scheduled || j->state == JobState::Running || j->allocating) {
        ++active;
        running.push_back(id);
      }
    }
    max_active = std::max(max_active, active);
    BOOST_REQUIRE_LE(active, 4u);
    // End one task per round.
    if (!running.empty()) {
      indices.insert(sim.s.job(running[0])->array_index);
      sim.start(running[0]);
      sim.finish(running[0]);
      ++done;
    }
  }
  BOOST_TEST(done == 20u);
  BOOST_TEST(max_active == 4u);
  BOOST_TEST(indices.size() == 20u);
}

BOOST_AUTO_TEST_CASE(array_specs_parse_like_slurm) {
  auto a = parse_array("0-99%8", 10000);
  BOOST_REQUIRE(a.ok());
  BOOST_TEST(a->indices.size() == 100u);
  BOOST_TEST(a->max_running == 8u);
  auto b = parse_array("1,3,5", 10000);
  BOOST_REQUIRE(b.ok());
  BOOST_TEST((b->indices == std::vector<int32_t>{1, 3, 5}));
  auto c = parse_array("0-15:4", 10000);
  BOOST_REQUIRE(c.ok());
  BOOST_TEST((c->indices == std::vector<int32_t>{0, 4, 8, 12}));
  for (const char* bad : {"", "5-1", "a-b", "1,,2", "0-9%0", "0-3:0", "-1"}) {
    auto r = parse_array(bad, 10000);
    BOOST_TEST(!r.ok(), bad);
    BOOST_TEST(r.status().message().rfind("array:", 0) == 0u, r.status().message());
  }
  BOOST_TEST(!parse_array("0-20000", 10000).ok());
}

BOOST_AUTO_TEST_CASE(dependencies_wait_and_start_when_met) {
  Sim sim;
  sim.s.node_up(make_node("n1", 8));
  JobId first = sim.submit(make_spec(1));
  auto after = make_spec(1);
  auto dep = std::make_unique<fb::DependencyT>();
  dep->kind = fb::DependencyKind::AfterOk;
  dep->job_id = first;
  after.dependencies.push_back(std::move(dep));
  JobId second = sim.submit(after);
  auto allocs = sim.cycle();
  BOOST_TEST((placed_ids(allocs) == std::set<JobId>{first}));
  BOOST_TEST(sim.s.reason_of(*sim.s.job(second)) == "Dependency");
  sim.start(first);
  sim.finish(first);
  BOOST_TEST((placed_ids(sim.cycle()) == std::set<JobId>{second}));
}

BOOST_AUTO_TEST_CASE(a_job_with_a_begin_time_waits_for_it_then_starts) {
  Sim sim;
  sim.s.node_up(make_node("n1", 8));
  auto spec = make_spec(1);
  spec.begin_ns = sim.now + 60'000'000'000;  // --begin=now+60
  JobId later = sim.submit(spec);
  JobId at_once = sim.submit(make_spec(1));
  sim.s.tick(sim.now);
  BOOST_TEST((placed_ids(sim.cycle()) == std::set<JobId>{at_once}));  // free GPUs do not start it early
  BOOST_TEST(sim.state(later) == JobState::Pending);
  BOOST_TEST(sim.s.reason_of(*sim.s.job(later)) == "BeginTime");
  sim.now += 59'000'000'000;
  sim.s.tick(sim.now);
  BOOST_TEST(sim.cycle().empty());
  sim.now += 1'000'000'000;
  sim.s.tick(sim.now);
  BOOST_TEST((placed_ids(sim.cycle()) == std::set<JobId>{later}));
  // Held while it waits, released after its time: it starts at the release.
  spec.begin_ns = sim.now + 5'000'000'000;
  JobId held = sim.submit(spec);
  BOOST_TEST(sim.s.hold(held, sim.now).ok());
  sim.now += 10'000'000'000;
  sim.s.tick(sim.now);
  BOOST_TEST(sim.cycle().empty());
  BOOST_TEST(sim.s.release(held, sim.now).ok());
  BOOST_TEST((placed_ids(sim.cycle()) == std::set<JobId>{held}));
}

BOOST_AUTO_TEST_CASE(dependency_that_can_never_be_met_cancels_with_a_reason) {
  Sim sim;
  sim.s.node_up(make_node("n1", 8));
  JobId first = sim.submit(make_spec(1));
  auto with = [&](fb::DependencyKind k) {
    auto s = make_spec(1);
    auto d = std::make_unique<fb::DependencyT>();
    d->kind = k;
    d->job_id = first;
    s.dependencies.push_back(std::move(d));
    return sim.submit(s);
  };
  JobId ok = with(fb::DependencyKind::AfterOk);
  JobId notok = with(fb::DependencyKind::AfterNotOk);
  JobId any = with(fb::DependencyKind::AfterAny);
  sim.cycle();
  sim.start(first);
  sim.finish(first, fb::RunOutcome::Failed, 2);  // max_retries 0: Failed for good
  BOOST_TEST(sim.state(first) == JobState::Failed);
  BOOST_TEST(sim.state(ok) == JobState::Cancelled);
  BOOST_TEST(sim.s.job(ok)->reason.find("DependencyNeverSatisfied") == 0u, sim.s.job(ok)->reason);
  BOOST_TEST(sim.s.job(ok)->reason.find("Failed") != std::string::npos);
  auto placed = placed_ids(sim.cycle());
  BOOST_TEST(placed.count(notok) == 1u);
  BOOST_TEST(placed.count(any) == 1u);
  // A chain: a job waiting on the cancelled one is cancelled in turn.
  auto chained = make_spec(1);
  auto d = std::make_unique<fb::DependencyT>();
  d->job_id = ok;
  chained.dependencies.push_back(std::move(d));
  JobId c = sim.submit(chained);
  BOOST_TEST(sim.state(c) == JobState::Cancelled);
}

BOOST_AUTO_TEST_CASE(validation_errors_name_the_field) {
  SchedulerConfig cfg;
  cfg.accounts = {"vision", "nlp"};
  PartitionConfig gpu{"gpu", {}, 0, 86400};
  PartitionConfig cpu{"cpu", {{"pool", "cpu"}}, 600, 0};
  cfg.partitions = {gpu, cpu};
  Sim sim(cfg);
  sim.s.node_up(make_node("n1", 8, "A100", 32, 256'000));
  struct Case {
    std::string field;
    std::function<void(fb::JobSpecT&)> edit;
  };
  std::vector<Case> cases = {
      {"gpu_type", [](auto& s) { s.gpu_type = "V100"; }},
      {"gpus_per_node", [](auto& s) { s.gpu_type = "A100"; s.gpus_per_node = 0; }},
      {"gpus_per_node", [](auto& s) { s.gpus_per_node = 16; }},
      {"gpus_per_node", [](auto& s) { s.gpus_per_node = static_cast<uint32_t>(-1); }},
      {"time_limit_s", [](auto& s) { s.time_limit_s = 0; }},
      {"time_limit_s", [](auto& s) { s.time_limit_s = 100'000; }},
      {"partition", [](auto& s) { s.partition = "nope"; }},
      {"account", [](auto& s) { s.account = "physics"; }},
      {"account", [](auto& s) { s.account = ""; }},
      {"user", [](auto& s) { s.user = ""; }},
      {"command", [](auto& s) { s.command.clear(); }},
      {"nodes", [](auto& s) { s.nodes = 0; }},
      {"nodes", [](auto& s) { s.nodes = 2; }},
      {"cpus", [](auto& s) { s.cpus = 33; }},
      {"memory_mb", [](auto& s) { s.memory_mb = 300'000; }},
      {"array", [](auto& s) { s.array = "1-"; }},
      {"dependencies[0].job_id", [](auto& s) {
         auto d = std::make_unique<fb::DependencyT>();
         d->job_id = 999;
         s.dependencies.push_back(std::move(d));
       }},
      {"nodelist", [](auto& s) { s.nodelist = {"n9"}; }},            // no such node
      {"nodelist", [](auto& s) { s.nodelist = {"n1", "n1"}; }},  // two names for a one-node job
      {"nodelist", [](auto& s) {
         s.nodelist = {"n1"};
         s.exclude = {"n1"};
       }},
      {"constraint", [](auto& s) { s.constraint = "[rack1|rack2]"; }},
      {"constraint", [](auto& s) { s.constraint = "ib&&x"; }},
      {"signal", [](auto& s) { s.signal = 99; }},
  };
  for (auto& c : cases) {
    auto spec = make_spec(1);
    c.edit(spec);
    auto r = sim.s.submit(spec, sim.now);
    BOOST_TEST(!r.ok(), c.field);
    BOOST_TEST(r.status().code() == ErrorCode::InvalidArgument);
    BOOST_TEST(r.status().message().rfind(c.field + ":", 0) == 0u, c.field << " vs " << r.status().message());
  }
  BOOST_TEST(sim.s.job_count() == 0u);
  // The partition's default time limit fills a missing one.
  auto s = make_spec(0);
  s.partition = "cpu";
  s.time_limit_s = 0;
  auto r = sim.s.submit(s, sim.now);
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().to_string());
  BOOST_TEST(sim.s.job(r->job_ids[0])->spec->time_limit_s == 600u);
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

BOOST_AUTO_TEST_CASE(a_qos_raises_priority_caps_the_time_and_counts_jobs_per_user) {
  SchedulerConfig cfg;
  cfg.qos["high"] = QosConfig{100, 3600, 2};
  cfg.qos["normal"] = QosConfig{};
  cfg.default_qos = "normal";
  Sim sim(cfg);
  sim.s.node_up(make_node("n1", 1));
  auto high = make_spec(1);
  high.qos = "high";
  high.time_limit_s = 7200;
  auto over = sim.s.submit(high, sim.now);
  BOOST_TEST(over.status().code() == ErrorCode::InvalidArgument);
  BOOST_TEST(over.status().message().find("maximum of QOS 'high' (3600 s)") != std::string::npos,
             over.status().message());
  auto gold = make_spec(1);
  gold.qos = "gold";
  BOOST_TEST(sim.s.submit(gold, sim.now).status().message() == "qos: unknown QOS 'gold'; QOSes: high, normal");
  // Submitted after a normal job, the high one starts first; with no limit
  // given it gets the QOS's.
  JobId normal = sim.submit(make_spec(1));
  high.time_limit_s = 0;
  JobId first = sim.submit(high);
  BOOST_TEST(sim.s.job(normal)->spec->qos == "normal");  // the default QOS
  BOOST_TEST(sim.s.job(first)->spec->time_limit_s == 3600u);
  BOOST_TEST((placed_ids(sim.cycle()) == std::set<JobId>{first}));
  // Two unfinished jobs per user in "high": a third is refused, in other
  // QOSes and for other users it is not.
  sim.submit(high);
  auto third = sim.s.submit(high, sim.now);
  BOOST_TEST(third.status().code() == ErrorCode::ResourceExhausted);
  BOOST_TEST(third.status().message().find("scheduler.qos.high.max_jobs_per_user") != std::string::npos);
  high.user = "bob";
  BOOST_TEST(sim.s.submit(high, sim.now).ok());
  BOOST_TEST(sim.s.submit(make_spec(1), sim.now).ok());
  // One ends: room again.
  sim.start(first);
  sim.finish(first);
  high.user = "alice";
  BOOST_TEST(sim.s.submit(high, sim.now).ok());
}

BOOST_AUTO_TEST_CASE(notices_follow_the_asked_types_and_read_as_slurms_mail) {
  Sim sim;
  sim.s.node_up(make_node("n1", 8));
  auto spec = make_spec(1);
  spec.name = "train\r\nBcc: x@y.z";  // a name never breaks a mail header
  spec.notify = {"ada@lab.org"};
  spec.notify_on = fb::NotifyOn::Begin | fb::NotifyOn::Fail;
  JobId id = sim.submit(spec);
  const Job& j = *sim.s.job(id);
  BOOST_TEST(!notice_for(j, JobState::Pending, JobState::Scheduled, "", 0, sim.now));
  sim.now += 3'000'000'000;
  auto begin = notice_for(j, JobState::Scheduled, JobState::Running, "", 0, sim.now);
  BOOST_REQUIRE(begin);
  BOOST_TEST(begin->event == "begin");
  BOOST_TEST(begin->subject == "Trainyard Job_id=" + std::to_string(id) + " Name=train  Bcc: x@y.z Began, Queued time 00:00:03");
  BOOST_TEST(begin->to == std::vector<std::string>{"ada@lab.org"}, boost::test_tools::per_element());
  BOOST_TEST(!notice_for(j, JobState::Running, JobState::Succeeded, "", 0, sim.now));  // END not asked
  auto failed = notice_for(j, JobState::Running, JobState::Failed, "exit code 3", 3, sim.now);
  BOOST_REQUIRE(failed);
  BOOST_TEST(failed->event == "fail");
  BOOST_TEST(failed->state == "FAILED");
  BOOST_TEST(failed->subject.find("Failed, Run time") != std::string::npos);
  BOOST_TEST(failed->subject.find(", FAILED, ExitCode 3") != std::string::npos);
  // Where notices may go: mail, user names, and webhooks to listed hosts only.
  std::vector<std::string> hosts = {"hooks.slack.com", "127.0.0.1"};
  bool allowed =
      check_notify({"ada@lab.org", "ada", "https://hooks.slack.com/services/T/B/x", "http://127.0.0.1:9/h"}, hosts)
          .ok();
  BOOST_TEST(allowed);
  for (std::string bad : {"https://evil.example/x", "http://user@hooks.slack.com.evil/x", "a@b@c", "ada lovelace",
                          "x@y.z\r\nRCPT TO:<z@z>", "ftp://hooks.slack.com/x"}) {
    auto st = check_notify({bad}, hosts);
    BOOST_TEST(!st.ok(), bad);
    BOOST_TEST(st.message().rfind("notify[0]: ", 0) == 0u, st.message());
  }
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

BOOST_AUTO_TEST_CASE(a_requeued_job_stops_its_run_and_waits_again_as_a_new_attempt) {
  Sim sim;
  sim.s.node_up(make_node("n1", 8));
  JobId id = sim.submit(make_spec(1));
  BOOST_TEST(sim.s.requeue(id, "requeued by alice").code() == ErrorCode::FailedPrecondition);  // not started
  sim.cycle();
  sim.start(id);
  sim.releases.clear();
  BOOST_TEST(sim.s.requeue(id, "requeued by alice").ok());
  sim.cycle();
  BOOST_REQUIRE(sim.releases.size() == 1u);  // its run is stopped: SIGTERM, grace, SIGKILL
  BOOST_TEST(sim.releases[0].kill);
  BOOST_TEST(sim.s.requeue(id, "again").code() == ErrorCode::FailedPrecondition);  // being stopped
  // The run ends (killed); the job waits again, attempt 2, no retry spent.
  sim.finish(id, fb::RunOutcome::Cancelled, 143);
  BOOST_TEST(sim.state(id) == JobState::Pending);
  BOOST_TEST(sim.s.job(id)->attempt == 2u);
  BOOST_TEST(sim.s.job(id)->reason.find("requeued by alice") == 0u);
  BOOST_TEST((placed_ids(sim.cycle()) == std::set<JobId>{id}));
}

BOOST_AUTO_TEST_CASE(lost_lease_requeues_up_to_max_retries_then_node_failure) {
  Sim sim;
  sim.s.node_up(make_node("n1", 8));
  sim.s.node_up(make_node("n2", 8));
  auto spec = make_spec(8);
  spec.max_retries = 1;
  JobId id = sim.submit(spec);
  sim.cycle();
  sim.start(id);
  std::string first = sim.nodes_of(id).at(0);
  uint64_t lease = sim.leases[id][0];
  sim.s.node_down(first);
  sim.s.lease_lost(lease, id, 1, "node missed its heartbeats", sim.now);
  BOOST_TEST(sim.state(id) == JobState::Pending);
  BOOST_TEST(sim.s.job(id)->attempt == 2u);
  auto allocs = sim.cycle();
  BOOST_REQUIRE_EQUAL(allocs.size(), 1u);
  BOOST_TEST(allocs[0].attempt == 2u);
  BOOST_TEST(allocs[0].nodes[0].node != first);  // runs again elsewhere
  // A late event of attempt 1 changes nothing.
  sim.s.run_finished(RunEnd{id, 1, lease, fb::RunOutcome::Succeeded, 0, 0, ""}, sim.now);
  BOOST_TEST(sim.state(id) == JobState::Scheduled);
  sim.start(id);
  sim.s.lease_lost(sim.leases[id][0], id, 2, "", sim.now);
  BOOST_TEST(sim.state(id) == JobState::NodeFailure);
  BOOST_TEST(sim.s.job(id)->reason.find("lost") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(failed_runs_are_retried_while_attempts_remain) {
  Sim sim;
  sim.s.node_up(make_node("n1", 8));
  auto spec = make_spec(1);
  spec.max_retries = 2;
  JobId id = sim.submit(spec);
  for (uint32_t attempt = 1; attempt <= 3; ++attempt) {
    auto allocs = sim.cycle();
    BOOST_REQUIRE_EQUAL(allocs.size(), 1u);
    BOOST_TEST(allocs[0].attempt == attempt);
    sim.start(id);
    sim.finish(id, fb::RunOutcome::Failed, 7);
  }
  BOOST_TEST(sim.state(id) == JobState::Failed);
  BOOST_TEST(sim.s.job(id)->exit_code == 7);
  BOOST_TEST(sim.cycle().empty());

  JobId ok = sim.submit(spec);
  sim.cycle();
  sim.start(ok);
  sim.finish(ok, fb::RunOutcome::Failed, 1);
  sim.cycle();
  sim.start(ok);
  sim.finish(ok);
  BOOST_TEST(sim.state(ok) == JobState::Succeeded);
  BOOST_TEST(sim.s.job(ok)->attempt == 2u);
}

BOOST_AUTO_TEST_CASE(cancel_pending_at_once_and_running_through_the_broker) {
  Sim sim;
  sim.s.node_up(make_node("n1", 1));
  auto spec = make_spec(1);
  spec.grace_s = 12;
  JobId run = sim.submit(spec);
  JobId wait = sim.submit(spec);
  sim.cycle();
  sim.start(run);
  BOOST_TEST(sim.s.cancel(wait, "", sim.now).ok());
  BOOST_TEST(sim.state(wait) == JobState::Cancelled);
  BOOST_TEST(sim.s.cancel(run, "not needed", sim.now).ok());
  auto out = sim.s.take_output();
  BOOST_REQUIRE_EQUAL(out.releases.size(), 1u);
  BOOST_TEST(out.releases[0].lease_id == sim.leases[run][0]);
  BOOST_TEST(out.releases[0].kill);
  BOOST_TEST(out.releases[0].grace_s == 12u);
  BOOST_TEST(sim.state(run) == JobState::Running);  // until the run ends
  sim.finish(run, fb::RunOutcome::Cancelled, 143);
  BOOST_TEST(sim.state(run) == JobState::Cancelled);
  BOOST_TEST(sim.s.job(run)->reason == "not needed");
  BOOST_TEST(sim.s.cancel(run, "", sim.now).code() == ErrorCode::FailedPrecondition);
  BOOST_TEST(sim.s.cancel(12345, "", sim.now).code() == ErrorCode::NotFound);
}

BOOST_AUTO_TEST_CASE(cancel_while_allocating_releases_the_late_lease) {
  Sim sim;
  sim.s.node_up(make_node("n1", 8));
  JobId id = sim.submit(make_spec(1));
  sim.s.cycle(sim.now);
  auto out = sim.s.take_output();
  BOOST_REQUIRE_EQUAL(out.allocations.size(), 1u);
  BOOST_TEST(sim.s.cancel(id, "", sim.now).ok());
  BOOST_TEST(sim.state(id) == JobState::Cancelled);
  BOOST_TEST(sim.s.cluster().free_gpus() == 8u);  // the placement's hold is gone
  sim.s.take_output();
  sim.s.allocated(id, 1, {77}, sim.now);
  sim.s.lease_granted(Grant{77, id, 1, "n1", {0}, 1, 0, 0}, sim.now);
  out = sim.s.take_output();
  BOOST_TEST(!out.releases.empty());
  for (auto& r : out.releases) BOOST_TEST(r.lease_id == 77u);
}

BOOST_AUTO_TEST_CASE(grant_event_before_or_instead_of_the_reply_schedules_the_job) {
  Sim sim;
  sim.s.node_up(make_node("n1", 8));
  JobId id = sim.submit(make_spec(2));
  sim.s.cycle(sim.now);
  auto out = sim.s.take_output();
  BOOST_REQUIRE_EQUAL(out.allocations.size(), 1u);
  // The broker picked other GPUs than the scheduler thought (its truth wins).
  sim.s.lease_granted(Grant{5, id, 1, "n1", {6, 7}, 1, 0, 0}, sim.now);
  BOOST_TEST(sim.state(id) == JobState::Scheduled);
  BOOST_TEST((sim.s.job(id)->gpu_indices == std::vector<uint32_t>{6, 7}));
  BOOST_TEST(sim.s.cluster().free_gpus() == 6u);  // placement hold replaced by the lease
  sim.s.allocated(id, 1, {5}, sim.now);  // the reply, late: nothing changes
  BOOST_TEST(sim.state(id) == JobState::Scheduled);
  BOOST_TEST(sim.s.cluster().free_gpus() == 6u);
  // A broker refusal puts a job back, and it is tried again after a pause.
  JobId other = sim.submit(make_spec(1));
  sim.s.cycle(sim.now);
  out = sim.s.take_output();
  BOOST_REQUIRE_EQUAL(out.allocations.size(), 1u);
  sim.s.allocate_failed(other, 1, Status::conflict("GPUs taken"), sim.now);
  BOOST_TEST(sim.s.cluster().free_gpus() == 6u);
  sim.s.tick(sim.now);
  sim.s.cycle(sim.now);
  BOOST_TEST(sim.s.take_output().allocations.empty());
  sim.s.tick(sim.now + 200'000'000);
  sim.s.cycle(sim.now + 200'000'000);
  BOOST_TEST(sim.s.take_output().allocations.size() == 1u);
}

BOOST_AUTO_TEST_CASE(client_token_makes_a_retried_submit_return_the_same_ids) {
  Sim sim;
  auto spec = make_spec(0);
  spec.client_token = "tok-1";
  auto a = sim.s.submit(spec, sim.now);
  auto b = sim.s.submit(spec, sim.now);
  BOOST_REQUIRE(a.ok() && b.ok());
  BOOST_TEST(a->job_ids == b->job_ids);
  BOOST_TEST(b->duplicate);
  BOOST_TEST(sim.s.job_count() == 1u);
  spec.user = "bob";  // tokens are per user
  auto c = sim.s.submit(spec, sim.now);
  BOOST_TEST(c->job_ids != a->job_ids);
}

BOOST_AUTO_TEST_CASE(hold_and_release) {
  Sim sim;
  sim.s.node_up(make_node("n1", 8));
  JobId id = sim.submit(make_spec(1));
  BOOST_TEST(sim.s.hold(id, sim.now).ok());
  BOOST_TEST(sim.cycle().empty());
  BOOST_TEST(sim.state(id) == JobState::Held);
  BOOST_TEST(sim.s.release(id, sim.now).ok());
  BOOST_TEST(sim.cycle().size() == 1u);
  BOOST_TEST(sim.s.hold(id, sim.now).code() == ErrorCode::FailedPrecondition);
}

BOOST_AUTO_TEST_CASE(a_job_or_array_submitted_held_waits_for_release) {
  Sim sim;
  sim.s.node_up(make_node("n1", 8));
  auto spec = make_spec(1);
  auto one = sim.s.submit(spec, sim.now, /*held=*/true);
  BOOST_REQUIRE(one.ok());
  spec.array = "0-2";
  auto arr = sim.s.submit(spec, sim.now, /*held=*/true);
  BOOST_REQUIRE(arr.ok());
  BOOST_TEST(sim.cycle().empty());
  BOOST_TEST(sim.state(one->job_ids[0]) == JobState::Held);
  for (JobId t : arr->job_ids) BOOST_TEST(sim.state(t) == JobState::Held);
  BOOST_TEST(sim.s.release(arr->array_job_id, sim.now).ok());
  BOOST_TEST(sim.cycle().size() == 3u);
  BOOST_TEST(sim.state(one->job_ids[0]) == JobState::Held);
  BOOST_TEST(sim.s.release(one->job_ids[0], sim.now).ok());
  BOOST_TEST(sim.cycle().size() == 1u);
}

BOOST_AUTO_TEST_CASE(blocked_account_starts_nothing_and_says_why) {
  Sim sim;
  sim.s.node_up(make_node("n1", 8));
  sim.s.account_blocked("vision", true, false, sim.now);
  JobId id = sim.submit(make_spec(1));
  BOOST_TEST(sim.cycle().empty());
  BOOST_TEST(sim.s.reason_of(*sim.s.job(id)).find("AccountBlocked") == 0u);
  auto other = make_spec(1);
  other.account = "nlp";
  sim.submit(other);
  BOOST_TEST(sim.cycle().size() == 1u);
  sim.s.account_blocked("vision", false, false, sim.now);
  BOOST_TEST((placed_ids(sim.cycle()) == std::set<JobId>{id}));
}

BOOST_AUTO_TEST_CASE(after_submissions_only_the_new_jobs_are_tried) {
  Sim sim;
  sim.s.node_up(make_node("n1", 1));
  sim.submit(make_spec(1));
  sim.cycle();
  for (int i = 0; i < 50; ++i) sim.submit(make_spec(1));
  sim.cycle();
  auto tried = sim.s.stats().tried;
  sim.submit(make_spec(0));  // fits: a CPU job
  sim.cycle();
  BOOST_TEST(sim.s.stats().tried - tried == 1u);
}

BOOST_AUTO_TEST_CASE(restore_from_records_rebuilds_queue_arrays_and_tokens) {
  Sim sim;
  sim.s.node_up(make_node("n1", 2));
  auto spec = make_spec(1);
  spec.array = "0-5%2";
  spec.client_token = "t";
  auto r = sim.s.submit(spec, sim.now);
  BOOST_REQUIRE(r.ok());
  sim.cycle();
  // Round-trip every job through its stored record.
  Scheduler restored{SchedulerConfig{}};
  restored.restore_node(make_node("n1", 2), true, false);
  for (auto& [lease_job, id] : std::map<uint64_t, JobId>(sim.lease_job.begin(), sim.lease_job.end())) {
    const Job* j = sim.s.job(id);
    restored.restore_lease(Grant{lease_job, id, j->attempt, j->nodes[0], j->gpu_indices, 1, 0, 0});
  }
  sim.s.for_each_job(0, [&](const Job& j) {
    fb::JobRecordT rec;
    to_record(j, j.reason, 0, &rec);
    restored.restore_job(from_record(rec));
    return true;
  });
  restored.finish_restore(sim.now);
  BOOST_TEST(restored.next_job_id() == sim.s.next_job_id());
  BOOST_TEST(restored.queued() == 4u);
  BOOST_TEST(restored.cluster().free_gpus() == 0u);
  auto again = restored.submit(spec, sim.now);
  BOOST_REQUIRE(again.ok());
  BOOST_TEST(again->job_ids == r->job_ids);
  BOOST_TEST(again->array_job_id == r->array_job_id);
  restored.cycle(sim.now);
  BOOST_TEST(restored.take_output().allocations.empty());  // "%2" and the node are both full
}

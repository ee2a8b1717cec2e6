// Unit tests of PreemptionPlanner: which running jobs a waiting job may
// preempt and which nodes it frees, from the cluster and the active jobs
// alone (no Scheduler; the planner changes nothing).
#define BOOST_TEST_MODULE scheduler_preemption
#include <boost/test/unit_test.hpp>

#include <deque>

#include "core/preemption.h"
#include "test_nodes.h"

using namespace trainyard;
using namespace trainyard::scheduler;
using namespace trainyard::scheduler::testing;

namespace {

// Two 4-GPU nodes and the jobs running on them (each also a lease, so the
// cluster sees its GPUs taken).
struct Fixture {
  Cluster cluster{std::vector<PartitionConfig>{}};
  std::map<std::string, AccountQuota> quotas;
  PreemptionConfig config;
  std::deque<Job> jobs;
  std::vector<Job*> active;
  uint64_t next_lease = 1;
  Fixture() {
    cluster.upsert(make_node("n1", 4));
    cluster.upsert(make_node("n2", 4));
    config.tiers = true;
    config.reclaim = false;
  }
  Job& run(JobId id, const std::string& node, std::vector<uint32_t> gpus, int64_t tier, int64_t start_s,
           uint32_t account = 0, bool preemptible = true) {
    auto spec = std::make_shared<fb::JobSpecT>();
    spec->preemptible = preemptible;
    Job& j = jobs.emplace_back();
    j.id = id;
    j.spec = spec;
    j.state = JobState::Running;
    j.tier = tier;
    j.account = account;
    j.start_time_ns = start_s * kSecond;
    j.shape.gpus = static_cast<uint32_t>(gpus.size());
    j.nodes = {node};
    j.gpu_indices = gpus;
    cluster.add_lease(next_lease++, node, gpus, 1, 0, id, 1);
    active.push_back(&j);
    return j;
  }
  static QueueEntry waiting(JobId id, uint32_t gpus, int64_t tier, uint32_t nodes = 1, uint32_t account = 0) {
    QueueEntry e;
    e.id = id;
    e.tier = tier;
    e.account = account;
    e.shape.gpus = gpus;
    e.shape.nodes = nodes;
    return e;
  }
};

}  // namespace

BOOST_FIXTURE_TEST_CASE(lower_tier_jobs_go_latest_started_first_on_the_cheapest_node, Fixture) {
  run(1, "n1", {0, 1}, 0, 10);
  run(2, "n1", {2, 3}, 0, 20);
  run(3, "n2", {0, 1, 2, 3}, 0, 5);
  AccountUsage usage(quotas, cluster);
  PreemptionPlanner planner(cluster, usage, config);
  auto plan = planner.plan(waiting(9, 2, 5), active, 100 * kSecond);
  BOOST_REQUIRE(plan.has_value());
  BOOST_TEST((plan->victims == std::vector<JobId>{2}));  // n1 frees 2 GPUs with one victim, the later one
  BOOST_TEST((plan->nodes == std::vector<NodeIdx>{*cluster.find_node("n1")}));
  // Four GPUs: n2 costs one victim of 4 GPUs, n1 two of 2 each; fewest
  // victim GPUs tie, then the node order decides.
  plan = planner.plan(waiting(9, 4, 5), active, 100 * kSecond);
  BOOST_REQUIRE(plan.has_value());
  BOOST_TEST((plan->victims == std::vector<JobId>{2, 1}));
  // Nothing was changed: the planner only reads.
  for (auto& j : jobs) BOOST_TEST(!j.preempt_requested);
  BOOST_TEST(cluster.free_gpus() == 0u);
}

BOOST_FIXTURE_TEST_CASE(jobs_of_the_same_or_a_higher_tier_are_never_victims, Fixture) {
  run(1, "n1", {0, 1, 2, 3}, 5, 10);
  run(2, "n2", {0, 1, 2, 3}, 7, 10);
  AccountUsage usage(quotas, cluster);
  PreemptionPlanner planner(cluster, usage, config);
  BOOST_TEST(!planner.plan(waiting(9, 1, 5), active, 100 * kSecond).has_value());
  config.tiers = false;
  BOOST_TEST(!planner.plan(waiting(9, 1, 9), active, 100 * kSecond).has_value());  // tiers off
  config.tiers = true;
  auto plan = planner.plan(waiting(9, 1, 6), active, 100 * kSecond);
  BOOST_REQUIRE(plan.has_value());
  BOOST_TEST((plan->victims == std::vector<JobId>{1}));
}

BOOST_FIXTURE_TEST_CASE(young_runs_and_jobs_not_preemptible_are_spared, Fixture) {
  run(1, "n1", {0, 1, 2, 3}, 0, 90);
  run(2, "n2", {0, 1, 2, 3}, 0, 10, 0, /*preemptible=*/false);
  config.min_runtime_s = 30;
  AccountUsage usage(quotas, cluster);
  PreemptionPlanner planner(cluster, usage, config);
  BOOST_TEST(!planner.plan(waiting(9, 4, 5), active, 100 * kSecond).has_value());  // job 1 ran 10 s
  auto plan = planner.plan(waiting(9, 4, 5), active, 130 * kSecond);
  BOOST_REQUIRE(plan.has_value());
  BOOST_TEST((plan->victims == std::vector<JobId>{1}));
}

BOOST_FIXTURE_TEST_CASE(an_account_under_its_guarantee_reclaims_from_borrowers_only, Fixture) {
  quotas["vision"] = AccountQuota{{}, {{"", 4}}};
  quotas["nlp"] = AccountQuota{{}, {{"", 4}}};
  config.tiers = false;
  config.reclaim = true;
  AccountUsage usage(quotas, cluster);
  uint32_t vision = usage.index("vision"), nlp = usage.index("nlp"), speech = usage.index("speech");
  run(1, "n1", {0, 1, 2, 3}, 0, 10, nlp);
  run(2, "n2", {0, 1, 2, 3}, 0, 20, speech);
  usage.hold(nlp, 0, 4);
  usage.hold(speech, 0, 4);
  PreemptionPlanner planner(cluster, usage, config);
  QueueEntry e = waiting(9, 4, 0, 1, vision);
  BOOST_TEST(planner.reclaims(e));
  auto plan = planner.plan(e, active, 100 * kSecond);
  BOOST_REQUIRE(plan.has_value());
  BOOST_TEST((plan->victims == std::vector<JobId>{2}));  // nlp holds only its guarantee; speech borrows
  BOOST_TEST(!planner.reclaims(waiting(9, 5, 0, 1, vision)));  // beyond its own guarantee
  BOOST_TEST(!planner.reclaims(waiting(9, 1, 0, 1, speech)));  // nothing guaranteed
}

BOOST_FIXTURE_TEST_CASE(a_gang_takes_free_nodes_and_a_plan_may_need_no_victim, Fixture) {
  run(1, "n1", {0, 1, 2, 3}, 0, 10);
  AccountUsage usage(quotas, cluster);
  PreemptionPlanner planner(cluster, usage, config);
  auto plan = planner.plan(waiting(9, 4, 5, 2), active, 100 * kSecond);
  BOOST_REQUIRE(plan.has_value());
  BOOST_TEST(plan->nodes.size() == 2u);
  BOOST_TEST((plan->victims == std::vector<JobId>{1}));
  BOOST_TEST(!planner.plan(waiting(9, 4, 5, 3), active, 100 * kSecond).has_value());  // 3 nodes: no
  // Nothing to preempt for a gang that fits already: a plan without victims.
  std::vector<Job*> none;
  plan = planner.plan(waiting(9, 4, 5, 1), none, 100 * kSecond);
  BOOST_TEST(!plan.has_value());  // a single node is not taken free: the cycle places it
  Cluster empty{std::vector<PartitionConfig>{}};
  empty.upsert(make_node("m1", 4));
  empty.upsert(make_node("m2", 4));
  AccountUsage usage2(quotas, empty);
  PreemptionPlanner planner2(empty, usage2, config);
  plan = planner2.plan(waiting(9, 4, 5, 2), none, 100 * kSecond);
  BOOST_REQUIRE(plan.has_value());
  BOOST_TEST(plan->victims.empty());
}

// Unit tests of AccountUsage: per-account GPUs held, quotas, guarantees and
// the reclaim rules, without a Scheduler.
#define BOOST_TEST_MODULE scheduler_quotas
#include <boost/test/unit_test.hpp>

#include "core/quotas.h"
#include "test_nodes.h"

using namespace trainyard;
using namespace trainyard::scheduler;
using namespace trainyard::scheduler::testing;

namespace {

// A cluster with A100 and H100 nodes.
struct Fixture {
  Cluster cluster{std::vector<PartitionConfig>{}};
  uint16_t a100, h100;
  Fixture() {
    cluster.upsert(make_node("a1", 8, "A100"));
    cluster.upsert(make_node("h1", 8, "H100"));
    a100 = *cluster.gpu_type_index("A100");
    h100 = *cluster.gpu_type_index("H100");
  }
};

std::map<std::string, AccountQuota> quota(const std::string& account, std::map<std::string, uint32_t> max,
                                          std::map<std::string, uint32_t> guaranteed = {}) {
  return {{account, AccountQuota{std::move(max), std::move(guaranteed)}}};
}

}  // namespace

BOOST_FIXTURE_TEST_CASE(each_account_keeps_the_index_it_was_first_given, Fixture) {
  AccountUsage usage({}, cluster);
  BOOST_TEST(usage.index("vision") == 0u);
  BOOST_TEST(usage.index("nlp") == 1u);
  BOOST_TEST(usage.index("vision") == 0u);
  BOOST_TEST(usage.names().size() == 2u);
  BOOST_TEST(usage.names()[1] == "nlp");
  BOOST_TEST(*usage.find("nlp") == 1u);
  BOOST_TEST(!usage.find("speech").has_value());
  BOOST_TEST(!usage.blocked(1));
  usage.set_blocked(1, true);
  BOOST_TEST(usage.blocked(1));
  BOOST_TEST(!usage.blocked(0));
  BOOST_TEST(!usage.blocked(7));  // unknown: not blocked
}

BOOST_FIXTURE_TEST_CASE(gpus_held_count_by_type_and_in_total_and_never_go_below_zero, Fixture) {
  AccountUsage usage({}, cluster);
  uint32_t a = usage.index("vision");
  usage.hold(a, a100, 4);
  usage.hold(a, 0, 2);  // a job of no particular type
  usage.hold(a, h100, 1);
  BOOST_TEST(usage.used(a, 0) == 7u);
  BOOST_TEST(usage.used(a, a100) == 4u);
  BOOST_TEST(usage.used(a, h100) == 1u);
  usage.release(a, a100, 3);
  BOOST_TEST(usage.used(a, 0) == 4u);
  BOOST_TEST(usage.used(a, a100) == 1u);
  usage.release(a, a100, 10);
  BOOST_TEST(usage.used(a, a100) == 0u);
  BOOST_TEST(usage.used(a, 0) == 0u);
  BOOST_TEST(usage.used(5, 0) == 0u);  // an account never seen
}

BOOST_FIXTURE_TEST_CASE(a_quota_caps_the_total_and_each_type_it_names, Fixture) {
  AccountUsage usage(quota("vision", {{"", 8}, {"A100", 4}}), cluster);
  uint32_t v = usage.index("vision");
  uint32_t free = usage.index("nlp");
  BOOST_TEST(usage.any_quota());
  usage.hold(v, a100, 3);
  BOOST_TEST(!usage.over_quota(v, 1, a100));
  BOOST_TEST(usage.over_quota(v, 2, a100));   // 5 A100 > 4
  BOOST_TEST(!usage.over_quota(v, 2, h100));  // no H100 quota, 5 in all <= 8
  usage.hold(v, h100, 4);
  BOOST_TEST(usage.over_quota(v, 2, h100));   // 9 in all > 8
  BOOST_TEST(!usage.over_quota(v, 1, 0));
  usage.hold(free, a100, 100);
  BOOST_TEST(!usage.over_quota(free, 100, a100));  // no quota: never over
}

BOOST_FIXTURE_TEST_CASE(limits_follow_gpu_types_that_appear_after_the_first_look, Fixture) {
  Cluster bare{std::vector<PartitionConfig>{}};
  AccountUsage usage(quota("vision", {{"B200", 2}}), bare);
  uint32_t v = usage.index("vision");
  BOOST_TEST(!usage.over_quota(v, 3, 0));  // B200 unknown yet: nothing capped
  uint16_t b200 = bare.intern_gpu_type("B200");
  BOOST_TEST(usage.limits(v).max.at(b200) == 2u);
  BOOST_TEST(usage.over_quota(v, 3, b200));
  BOOST_TEST(!usage.over_quota(v, 2, b200));
}

BOOST_FIXTURE_TEST_CASE(an_account_above_its_guarantee_borrows_and_one_below_may_reclaim, Fixture) {
  auto quotas = quota("vision", {}, {{"", 4}});
  quotas["nlp"] = AccountQuota{{}, {{"A100", 2}}};
  AccountUsage usage(quotas, cluster);
  uint32_t v = usage.index("vision"), n = usage.index("nlp"), s = usage.index("speech");
  BOOST_TEST(usage.any_guarantee());
  BOOST_TEST(!usage.any_quota());
  usage.hold(s, a100, 1);
  BOOST_TEST(usage.borrowing(s, 0));  // no guarantee: everything it holds is borrowed
  usage.hold(n, a100, 2);
  BOOST_TEST(!usage.borrowing(n, a100));  // exactly its A100 guarantee
  usage.hold(n, a100, 1);
  BOOST_TEST(usage.borrowing(n, a100));
  usage.hold(v, a100, 2);
  BOOST_TEST(usage.within_guarantee(v, 2, 0));
  BOOST_TEST(!usage.within_guarantee(v, 3, 0));
  BOOST_TEST(usage.within_guarantee(n, 0, a100) == false);  // 3 of its 2 A100 already
  BOOST_TEST(!usage.within_guarantee(s, 1, 0));             // nothing guaranteed
  BOOST_TEST(usage.under_guarantee(v));
  usage.hold(v, a100, 2);
  BOOST_TEST(!usage.under_guarantee(v));
}

BOOST_FIXTURE_TEST_CASE(reclaimers_are_accounts_under_their_guarantee_with_jobs_waiting, Fixture) {
  auto quotas = quota("vision", {}, {{"", 4}});
  quotas["nlp"] = AccountQuota{{}, {{"", 2}}};
  AccountUsage usage(quotas, cluster);
  uint32_t v = usage.index("vision"), n = usage.index("nlp"), s = usage.index("speech");
  usage.queued(v);
  usage.queued(v);
  usage.queued(n);
  usage.queued(s);
  usage.hold(n, a100, 2);  // nlp has its guarantee
  std::vector<bool> who;
  BOOST_TEST(usage.reclaimers(&who) == 2u);
  BOOST_TEST((who == std::vector<bool>{true, false, false}));
  usage.unqueued(v);
  usage.unqueued(v);
  usage.unqueued(v);  // no further than zero
  BOOST_TEST(usage.reclaimers(&who) == 0u);
  BOOST_TEST(!who[v]);
}

BOOST_FIXTURE_TEST_CASE(preemptions_are_counted_per_account, Fixture) {
  AccountUsage usage({}, cluster);
  uint32_t v = usage.index("vision"), n = usage.index("nlp");
  usage.preempted(n);
  usage.preempted(n);
  BOOST_TEST(usage.preemptions(n) == 2u);
  BOOST_TEST(usage.preemptions(v) == 0u);
}

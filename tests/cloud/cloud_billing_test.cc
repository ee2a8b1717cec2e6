// Unit tests of billing's cloud metering (billing/core/cloud_meter.h): a
// rented node costs its price from launch request to confirmed release; job
// time on it goes to the job's account, the rest by the overhead rule, and
// the two add up to the node's cost exactly.
#define BOOST_TEST_MODULE cloud_billing
#include <boost/test/unit_test.hpp>

#include "core/cloud_meter.h"
#include "core/ledger.h"

using namespace trainyard::billing;

namespace {

constexpr int64_t kH = 3600LL * 1'000'000'000;
constexpr int64_t kT0 = 1'800'000'000LL * 1'000'000'000;

CloudNode node(int64_t ended_ns = 0) {
  CloudNode n;
  n.lease = 7;
  n.pool = "burst";
  n.node = "burst-7";
  n.account = "vision";
  n.price_micros_per_hour = 36'000'000;  // 36.00 per node-hour, 4 GPUs: 9.00 per GPU-hour
  n.gpus = 4;
  n.requested_ns = kT0;
  n.ended_ns = ended_ns;
  return n;
}

}  // namespace

BOOST_AUTO_TEST_CASE(job_time_and_overhead_add_up_to_the_node_time_exactly) {
  CloudMeter m(OverheadRule::kTrigger, "platform");
  BOOST_TEST(!m.lease_changed(node(), false));
  BOOST_TEST(!m.usage("owned-a", "vision", "alice", 1, 2, kT0, kT0 + kH));  // an owned node: the rate card's
  auto job = m.usage("burst-7", "vision", "alice", 1, 2, kT0 + kH / 4, kT0 + kH / 4 + kH);
  BOOST_REQUIRE(job);
  BOOST_TEST(job->micros == 18'000'000);  // 2 of 4 GPUs for an hour
  BOOST_TEST(job->line_type == "cloud:burst");
  BOOST_TEST(job->account == "vision");
  auto overhead = m.lease_changed(node(kT0 + 2 * kH + 7), true);
  BOOST_REQUIRE(overhead);
  int64_t total = node_cost_micros(2 * kH + 7, 36'000'000);
  BOOST_TEST(total == 72'000'000);
  BOOST_TEST(overhead->micros + job->micros == total);
  BOOST_TEST(overhead->account == "vision");
  BOOST_TEST(overhead->line_type == "cloud:burst:overhead");
  BOOST_TEST(!m.lease_changed(node(kT0 + 2 * kH + 7), true));  // a replayed release charges nothing more
}

BOOST_AUTO_TEST_CASE(the_platform_rule_charges_overhead_to_the_platform_account) {
  CloudMeter m(OverheadRule::kPlatform, "it-cloud");
  m.lease_changed(node(), false);
  auto overhead = m.lease_changed(node(kT0 + kH / 2), true);
  BOOST_REQUIRE(overhead);
  BOOST_TEST(overhead->account == "it-cloud");
  BOOST_TEST(overhead->micros == 18'000'000);
}

BOOST_AUTO_TEST_CASE(rounding_never_bills_more_than_the_node_costs) {
  CloudMeter m(OverheadRule::kTrigger, "platform");
  auto n = node();
  n.price_micros_per_hour = 1'000'003;  // does not divide evenly
  n.gpus = 3;
  m.lease_changed(n, false);
  int64_t jobs = 0;
  for (int i = 0; i < 1000; ++i) {
    auto c = m.usage("burst-7", "vision", "alice", 1, 1, kT0 + i * 1'000'000'007LL, kT0 + (i + 1) * 1'000'000'007LL);
    BOOST_REQUIRE(c);
    jobs += c->micros;
  }
  n.ended_ns = kT0 + 1000 * 1'000'000'007LL + 12345;
  auto overhead = m.lease_changed(n, true);
  BOOST_REQUIRE(overhead);
  BOOST_TEST(jobs + overhead->micros == node_cost_micros(n.ended_ns - n.requested_ns, n.price_micros_per_hour));
}

BOOST_AUTO_TEST_CASE(a_stored_cloud_node_reads_back) {
  auto n = node(kT0 + kH);
  n.job_micros = 5;
  n.overhead_charged = true;
  auto back = CloudNode::decode(n.encode());
  BOOST_REQUIRE(back);
  BOOST_TEST(back->encode() == n.encode());
  BOOST_TEST(!CloudNode::decode("not json"));
}

BOOST_AUTO_TEST_CASE(booked_amounts_reach_the_line_and_the_month_spend) {
  Ledger l([](std::string_view) { return std::nullopt; }, [](std::string_view) { return std::nullopt; });
  BOOST_REQUIRE(l.book("vision", 20000, "alice", 1, "cloud:burst", 100, 18'000'000));
  BOOST_REQUIRE(l.book("vision", 20000, "", 0, "cloud:burst:overhead", 100, 54'000'000));
  BOOST_TEST(!l.book("vision", 20000, "", 0, "x", 1, -1));
  auto changes = l.drain();
  BOOST_TEST(changes.lines.size() == 2u);
  BOOST_REQUIRE_EQUAL(changes.spends.size(), 1u);
  BOOST_TEST(changes.spends[0].second == 72'000'000);
}

BOOST_AUTO_TEST_CASE(a_reused_node_name_charges_each_tick_to_the_lease_it_ran_under) {
  // burst-7 is a slot: lease 7 ran there first, lease 9 (a new instance)
  // after it ended. A late tick of lease 7's time, and a replay of lease 7's
  // events after lease 9 began, still go to lease 7.
  CloudMeter m(OverheadRule::kTrigger, "platform");
  m.lease_changed(node(), false);
  auto second = node();
  second.lease = 9;
  second.account = "nlp";
  second.requested_ns = kT0 + 2 * kH;
  m.lease_changed(second, false);
  m.lease_changed(node(), false);  // replayed: burst-7 stays lease 9's
  BOOST_REQUIRE(m.by_node("burst-7"));
  BOOST_TEST(m.by_node("burst-7")->lease == 9u);
  auto late = m.usage("burst-7", "vision", "alice", 1, 4, kT0 + kH, kT0 + kH + kH / 2);
  BOOST_REQUIRE(late);
  BOOST_TEST(late->lease == 7u);
  BOOST_TEST(late->micros == 18'000'000);
  auto now = m.usage("burst-7", "nlp", "bob", 2, 4, kT0 + 2 * kH, kT0 + 3 * kH);
  BOOST_REQUIRE(now);
  BOOST_TEST(now->lease == 9u);
  BOOST_TEST(m.lease(7)->job_micros == 18'000'000);
  BOOST_TEST(m.lease(9)->job_micros == 36'000'000);
}

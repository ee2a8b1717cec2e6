// Tests of ty-sim's cloud pools: the resource broker's cloud core decides
// when to rent and release, the simulator boots nodes after the pool's
// delay. Small traces whose figures are worked out by hand, the threshold
// rule, idle release, exact cost, and the committed synthetic trace.
#define BOOST_TEST_MODULE scheduler_sim_cloud
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <sstream>

#include "sim/cloud.h"
#include "sim/simulator.h"
#include "sim/trace.h"

using namespace trainyard;
using namespace trainyard::scheduler::sim;

namespace {

std::vector<TraceJob> parse(const std::string& csv) {
  std::istringstream in(csv);
  auto t = parse_trace(in);
  BOOST_REQUIRE_MESSAGE(t.ok(), t.status().to_string());
  return std::move(t).value();
}

struct Run {
  std::string nodes = "1x8:A100";
  std::vector<std::string> pools = {"cloud:4x8:A100,boot=180s,price=10,idle=300s"};
  std::string policy = "fairshare+backfill";
  BurstPolicy burst = BurstPolicy{300, 0, false};
};

SimResult run(const std::vector<TraceJob>& trace, const Run& r) {
  SimOptions o;
  auto n = parse_nodes(r.nodes);
  BOOST_REQUIRE(n.ok());
  o.nodes = *n;
  o.policy = r.policy;
  for (auto& text : r.pools) {
    auto p = parse_pool(text);
    BOOST_REQUIRE_MESSAGE(p.ok(), p.status().to_string());
    o.pools.push_back(*p);
  }
  o.burst = r.burst;
  auto res = simulate(trace, o);
  BOOST_REQUIRE_MESSAGE(res.ok(), res.status().to_string());
  BOOST_REQUIRE(res->cloud);
  return std::move(res).value();
}

const JobOutcome& outcome(const SimResult& r, const std::string& id) {
  for (auto& o : r.outcomes) {
    if (o.id == id) return o;
  }
  BOOST_FAIL("no job " + id);
  return r.outcomes.front();
}

// The owned node is busy for an hour; j2 would wait 3590 s for it.
const char* kBusy =
    "job_id,submit_time_s,num_gpus,duration_s,user,gpu_type\n"
    "j1,0,8,3600,alice,\n"
    "j2,10,8,600,bob,\n";

// The owned node frees after 200 s: j2 waits 190 s, under the threshold.
const char* kSoonFree =
    "job_id,submit_time_s,num_gpus,duration_s,user,gpu_type\n"
    "j1,0,8,200,alice,\n"
    "j2,10,8,600,bob,\n";

// Six whole-node jobs on one owned node: a queue that bursting drains.
const char* kQueue =
    "job_id,submit_time_s,num_gpus,duration_s,user,gpu_type\n"
    "j1,0,8,1000,alice,\n"
    "j2,10,8,1000,bob,\n"
    "j3,20,8,1000,carol,\n"
    "j4,30,8,1000,alice,\n"
    "j5,40,8,1000,bob,\n"
    "j6,50,8,1000,carol,\n";

}  // namespace

BOOST_AUTO_TEST_CASE(a_job_rents_when_owned_nodes_are_busy_past_the_threshold) {
  auto r = run(parse(kBusy), Run{});
  // Rented at 10 (the reservation says 3600), ready at 190, j2 runs 190-790 on it,
  // idle 790-1090, released at 1090: 1080 s metered.
  BOOST_TEST(outcome(r, "j2").start_s == 190.0);
  BOOST_TEST(outcome(r, "j2").cloud);
  BOOST_TEST(!outcome(r, "j1").cloud);
  BOOST_TEST(outcome(r, "j2").end_s - outcome(r, "j2").submit_s == 780.0);
  const CloudStats& c = r.cloud_stats;
  BOOST_TEST(c.launches == 1u);
  BOOST_TEST(c.released == 1u);
  BOOST_TEST(std::abs(c.node_hours - 1080.0 / 3600) < 1e-9);
  BOOST_TEST(std::abs(c.boot_node_hours - 180.0 / 3600) < 1e-9);
  BOOST_TEST(std::abs(c.busy_node_hours - 600.0 / 3600) < 1e-9);
  BOOST_TEST(std::abs(c.idle_node_hours - 300.0 / 3600) < 1e-9);
  BOOST_TEST(std::abs(c.cost - 3.0) < 1e-9);
}

BOOST_AUTO_TEST_CASE(a_job_never_rents_when_an_owned_node_frees_before_the_threshold) {
  // With a reservation (backfill) the expected wait is 190 s; without one
  // (fifo) j2 starts at 200, before it has waited the 300 s.
  for (std::string policy : {"fairshare+backfill", "fifo"}) {
    Run cfg;
    cfg.policy = policy;
    auto r = run(parse(kSoonFree), cfg);
    BOOST_TEST_INFO(policy);
    BOOST_TEST(r.cloud_stats.launches == 0u);
    BOOST_TEST(r.cloud_stats.cost == 0.0);
    BOOST_TEST(outcome(r, "j2").start_s == 200.0);
  }
  // The same trace with always-burst rents (and pays) for 10 s of saved wait... not even that:
  // the node is ready at 190, j2 starts there 10 s before the owned node frees.
  Run always;
  always.burst.after_s = 0;
  auto r = run(parse(kSoonFree), always);
  BOOST_TEST(r.cloud_stats.launches == 1u);
  BOOST_TEST(outcome(r, "j2").start_s == 190.0);
}

BOOST_AUTO_TEST_CASE(a_large_job_waits_burst_large_wait_for_owned_nodes_then_rents) {
  // j2 asks 8 GPUs x 600 s = 1.33 GPU-hours: large over 1 GPU-hour.
  Run cfg;
  cfg.burst.large_gpu_hours = 1;
  cfg.burst.large_wait_s = 4000;  // longer than its expected wait (3590 s): it waits for the owned node
  auto r = run(parse(kBusy), cfg);
  BOOST_TEST(r.cloud_stats.launches == 0u);
  BOOST_TEST(outcome(r, "j2").start_s == 3600.0);
  cfg.burst.large_wait_s = 3000;  // its reservation starts later than that: it rents at once
  r = run(parse(kBusy), cfg);
  BOOST_TEST(r.cloud_stats.launches == 1u);
  BOOST_TEST(outcome(r, "j2").start_s == 190.0);
  cfg.burst.large_gpu_hours = 2;  // not large: the threshold (300 s) alone
  cfg.burst.large_wait_s = 4000;
  r = run(parse(kBusy), cfg);
  BOOST_TEST(r.cloud_stats.launches == 1u);
}

BOOST_AUTO_TEST_CASE(a_job_without_a_reservation_rents_once_it_has_waited_the_threshold) {
  Run cfg;
  cfg.policy = "fairshare";  // no backfill, no expected start: the wait so far counts
  auto r = run(parse(kBusy), cfg);
  BOOST_TEST(r.cloud_stats.launches == 1u);
  BOOST_TEST(outcome(r, "j2").start_s == 10.0 + 300 + 180);
}

BOOST_AUTO_TEST_CASE(estimate_owned_start_rents_a_job_without_a_reservation_at_once) {
  // No backfill, so no reservation: the broker places the queue on the owned
  // GPUs itself (j1 holds them to its limit, 3600) and j2's estimated wait,
  // 3590 s, is past the threshold now, not only after it has waited 300 s.
  Run cfg;
  cfg.policy = "fairshare";
  cfg.burst.estimate_owned = true;
  auto r = run(parse(kBusy), cfg);
  BOOST_TEST(r.cloud_stats.launches == 1u);
  BOOST_TEST(outcome(r, "j2").start_s == 10.0 + 180);
  // Large over 1 GPU-hour with 4000 s to wait: the estimate (3590 s) says it gets the owned node in time.
  cfg.burst.large_gpu_hours = 1;
  cfg.burst.large_wait_s = 4000;
  r = run(parse(kBusy), cfg);
  BOOST_TEST(r.cloud_stats.launches == 0u);
  BOOST_TEST(outcome(r, "j2").start_s == 3600.0);
}

BOOST_AUTO_TEST_CASE(a_compute_weighted_budget_lets_big_long_jobs_wait_for_owned_nodes) {
  // j2 asks 8 GPUs x 600 s = 1.33 GPU-hours; its expected wait is 3590 s.
  Run cfg;
  cfg.burst.per_gpu_hour_s = 3600;  // budget 4800 s: it waits for the owned node
  auto r = run(parse(kBusy), cfg);
  BOOST_TEST(r.cloud_stats.launches == 0u);
  BOOST_TEST(outcome(r, "j2").start_s == 3600.0);
  cfg.burst.per_gpu_hour_s = 1000;  // budget 1333 s: it rents at once
  r = run(parse(kBusy), cfg);
  BOOST_TEST(r.cloud_stats.launches == 1u);
  BOOST_TEST(outcome(r, "j2").start_s == 190.0);
}

BOOST_AUTO_TEST_CASE(always_burst_costs_more_than_never_burst_and_finishes_sooner) {
  auto trace = parse(kQueue);
  Run always, never;
  always.burst.after_s = 0;
  never.burst.after_s = kBurstNever;
  auto a = run(trace, always);
  auto n = run(trace, never);
  BOOST_TEST(a.finished == 6u);
  BOOST_TEST(n.finished == 6u);
  BOOST_TEST(n.cloud_stats.launches == 0u);
  BOOST_TEST(n.cloud_stats.cost == 0.0);
  BOOST_TEST(a.cloud_stats.launches == 4u);  // the pool's four nodes, j1 on the owned node
  BOOST_TEST(a.cloud_stats.cost > n.cloud_stats.cost);
  BOOST_TEST(a.jct.avg < n.jct.avg);
  // Never: the jobs run one after another on the owned node.
  BOOST_TEST(n.makespan_s == 6000.0);
  // Always: j6 waits for a rented node to free (the pool has four) or the owned one.
  BOOST_TEST(a.makespan_s < 2500.0);
}

BOOST_AUTO_TEST_CASE(idle_nodes_are_released_and_idle_time_is_bounded_by_launches) {
  auto trace = parse(kQueue);
  Run cfg;
  cfg.burst.after_s = 0;
  auto r = run(trace, cfg);
  const CloudStats& c = r.cloud_stats;
  BOOST_TEST(c.launches > 0u);
  BOOST_TEST(c.released == c.launches);  // nothing left rented at the end
  BOOST_TEST(c.idle_node_hours > 0.0);
  BOOST_TEST(c.idle_node_hours <= c.launches * 300.0 / 3600 + 1e-9);
  // Metered time is boot + busy + idle, nothing unaccounted.
  BOOST_TEST(std::abs(c.node_hours - (c.boot_node_hours + c.busy_node_hours + c.idle_node_hours)) < 1e-9);

  // A shorter idle time releases sooner: less idle, less cost.
  Run quick = cfg;
  quick.pools = {"cloud:4x8:A100,boot=180s,price=10,idle=0"};
  auto q = run(trace, quick);
  BOOST_TEST(q.cloud_stats.idle_node_hours < c.idle_node_hours);
  BOOST_TEST(q.cloud_stats.cost < c.cost);
}

BOOST_AUTO_TEST_CASE(moving_back_takes_a_long_run_off_its_rented_node_once_the_owned_one_frees_up) {
  // j2 (10 h) rents at 10 behind j1 (1 h) and starts at 190 on cloud-0.
  auto trace = parse(
      "job_id,submit_time_s,num_gpus,duration_s,user,gpu_type\n"
      "j1,0,8,3600,alice,\n"
      "j2,10,8,36000,bob,\n");
  Run cfg;
  auto stay = run(trace, cfg);
  BOOST_TEST(outcome(stay, "j2").cloud);
  BOOST_TEST(outcome(stay, "j2").end_s == 190.0 + 36000);
  BOOST_TEST(std::abs(stay.cloud_stats.node_hours - (190.0 + 36000 + 300 - 10) / 3600) < 1e-9);
  BOOST_TEST(stay.cloud_stats.moves == 0u);

  cfg.burst.move_min_left_s = 3600;
  cfg.burst.move_loss_s = 600;
  auto moved = run(trace, cfg);
  // At 3600 the owned node frees: j2 gets its 30 s grace, is requeued and
  // starts there at 3630 with what it had left (36000 - 3440 s) plus the
  // 600 s a move loses; cloud-0 is released when its run ends, at 3630.
  const JobOutcome& j2 = outcome(moved, "j2");
  BOOST_TEST(!j2.cloud);
  BOOST_TEST(j2.preemptions == 1u);
  BOOST_TEST(j2.state == "Succeeded");
  BOOST_TEST(j2.end_s == 3630.0 + (36000 - 3440) + 600);
  BOOST_TEST(outcome(moved, "j1").end_s == 3600.0);
  const CloudStats& c = moved.cloud_stats;
  BOOST_TEST(c.moves == 1u);
  BOOST_TEST(c.launches == 1u);
  BOOST_TEST(std::abs(c.node_hours - (3630.0 - 10) / 3600) < 1e-9);
  BOOST_TEST(std::abs(c.cost - 10 * (3630.0 - 10) / 3600) < 1e-9);
}

BOOST_AUTO_TEST_CASE(cost_is_node_hours_times_the_price) {
  auto trace = parse(kQueue);
  Run cfg;
  cfg.burst.after_s = 0;
  cfg.pools = {"cloud:4x8:A100,boot=180s,price=29.39"};
  auto r = run(trace, cfg);
  const CloudStats& c = r.cloud_stats;
  BOOST_TEST(c.node_hours > 0.0);
  BOOST_TEST(std::abs(c.cost - c.node_hours * 29.39) < 1e-9 * c.cost);
  BOOST_TEST(std::abs(c.gpu_hours - c.node_hours * 8) < 1e-9);
  // Spot: the same node time at 37 % of the price.
  cfg.pools = {"cloud:4x8:A100,boot=180s,price=29.39,spot=0.37"};
  auto s = run(trace, cfg);
  BOOST_TEST(std::abs(s.cloud_stats.node_hours - c.node_hours) < 1e-9);
  BOOST_TEST(std::abs(s.cloud_stats.cost - c.node_hours * 29.39 * 0.37) < 1e-6);
}

BOOST_AUTO_TEST_CASE(the_cheapest_pool_that_fits_is_rented) {
  Run cfg;
  cfg.pools = {"dear:2x8:A100,price=40", "cheap:2x8:A100,price=20", "small:2x4:A100,price=5"};
  auto r = run(parse(kBusy), cfg);
  BOOST_TEST(r.cloud_stats.launches == 1u);
  BOOST_TEST(std::abs(r.cloud_stats.cost - r.cloud_stats.node_hours * 20) < 1e-9);
}

BOOST_AUTO_TEST_CASE(rented_nodes_take_only_eligible_jobs_when_asked) {
  // A 16-GPU rented node for j2; j3 (1 GPU) arrives at 600 with the owned
  // node still busy. Without the gate it starts on the rented node at
  // once; with it, only once it has waited the threshold (600 + 300).
  const char* csv =
      "job_id,submit_time_s,num_gpus,duration_s,user,gpu_type\n"
      "j1,0,8,3600,alice,\n"
      "j2,10,8,1200,bob,\n"
      "j3,600,1,60,carol,\n";
  Run cfg;
  cfg.policy = "fairshare";
  cfg.pools = {"cloud:2x16:A100,boot=180s,price=10"};
  auto open = run(parse(csv), cfg);
  BOOST_TEST(outcome(open, "j3").start_s == 600.0);
  cfg.burst.eligible_only = true;
  auto gated = run(parse(csv), cfg);
  BOOST_TEST(outcome(gated, "j3").start_s == 900.0);
  BOOST_TEST(outcome(gated, "j3").cloud);
  BOOST_TEST(gated.cloud_stats.launches == 1u);
}

BOOST_AUTO_TEST_CASE(the_committed_trace_with_a_pool_is_deterministic_and_bounded) {
  auto t = read_trace(std::string(TY_TRACES_DIR) + "/dl_small_2k.csv");
  BOOST_REQUIRE(t.ok());
  Run cfg;
  cfg.nodes = "4x8:V100,4x8:A100";
  cfg.pools = {"burst:16x8:A100,boot=180s,price=29.39"};
  cfg.policy = "fairshare+backfill";
  auto a = run(*t, cfg);
  auto b = run(*t, cfg);
  BOOST_TEST(a.finished == t->size());
  BOOST_TEST(a.cloud_stats.cost == b.cloud_stats.cost);
  BOOST_TEST(a.jct.avg == b.jct.avg);
  const CloudStats& c = a.cloud_stats;
  BOOST_TEST(c.peak_nodes <= 16u);
  BOOST_TEST(c.released == c.launches);
  // Idle time is not bounded by launches x idle_release_s here: the broker
  // keeps an idle node while any waiting job fits its pool (hysteresis),
  // and a gang or a job held back by a reservation can wait beside it.
  BOOST_TEST(c.idle_node_hours < 0.05 * c.node_hours);
  BOOST_TEST(std::abs(c.boot_node_hours - c.launches * 180.0 / 3600) < 1e-9);
  // V100 jobs never rent an A100 pool; every job that ran on a rented node asked A100 or any type.
  for (size_t i = 0; i < t->size(); ++i) {
    if (a.outcomes[i].cloud) BOOST_TEST((*t)[i].gpu_type != "V100");
  }
  // Bursting shortens the wait against the same owned cluster alone.
  Run never = cfg;
  never.burst.after_s = kBurstNever;
  auto n = run(*t, never);
  BOOST_TEST(n.cloud_stats.launches == 0u);
  BOOST_TEST(a.jct.avg < n.jct.avg);
}

BOOST_AUTO_TEST_CASE(pool_and_threshold_flags_are_checked) {
  auto p = parse_pool("aws:16x8:A100,boot=3m,price=29.39,spot=0.37,min=1,idle=10m,launches=2");
  BOOST_REQUIRE_MESSAGE(p.ok(), p.status().to_string());
  BOOST_TEST(p->name == "aws");
  BOOST_TEST(p->max_nodes == 16u);
  BOOST_TEST(p->gpus == 8u);
  BOOST_TEST(p->gpu_type == "A100");
  BOOST_TEST(p->boot_s == 180);
  BOOST_TEST(p->idle_s == 600);
  BOOST_TEST(p->min_nodes == 1u);
  BOOST_TEST(p->launches == 2u);
  BOOST_TEST(std::abs(p->node_price() - 29.39 * 0.37) < 1e-12);
  BOOST_TEST(parse_pool("aws:16x8:A100,max=4")->max_nodes == 4u);
  auto bad = [](const std::string& text, const std::string& says) {
    auto r = parse_pool(text);
    BOOST_TEST_INFO(text);
    BOOST_REQUIRE(!r.ok());
    BOOST_TEST(r.status().message().find(says) != std::string::npos, r.status().message());
  };
  bad("aws", "NAME:NODESxGPUS:TYPE");
  bad("aws:0x8:A100", "'0x8' is not NODESxGPUS");
  bad("aws:2x8:", "TYPE is empty");
  bad("aws:2x8:A100,boot=soon", "boot='soon' is not valid");
  bad("aws:2x8:A100,price=-1", "price='-1' is not valid");
  bad("aws:2x8:A100,colour=red", "unknown key 'colour'");
  bad("aws:2x8:A100,min=3", "min is above");
  BOOST_TEST(*parse_burst_after("never") == kBurstNever);
  BOOST_TEST(*parse_burst_after("0") == 0);
  BOOST_TEST(*parse_burst_after("90s") == 90);
  BOOST_TEST(*parse_burst_after("1.5h") == 5400);
  auto neg = parse_burst_after("-5m");
  BOOST_REQUIRE(!neg.ok());
  BOOST_TEST(neg.status().message().find("--burst-after") != std::string::npos);
  auto sweep = parse_burst_sweep("0,5m,1h,never");
  BOOST_REQUIRE(sweep.ok());
  BOOST_TEST((*sweep == std::vector<int64_t>{0, 300, 3600, kBurstNever}));
  BOOST_TEST(!parse_burst_sweep("0,soon").ok());
  auto with_always = parse_burst_sweep("always,2m,never");
  BOOST_REQUIRE(with_always.ok());
  BOOST_TEST((*with_always == std::vector<int64_t>{kBurstAlways, 120, kBurstNever}));
  BOOST_TEST(format_burst_after(kBurstAlways) == "always");
  BOOST_TEST(*parse_burst_large_wait("12h") == 43200);
  BOOST_TEST(!parse_burst_large_wait("31d").ok());
  BOOST_TEST(!parse_burst_large_wait("never").ok());
}

BOOST_AUTO_TEST_CASE(a_pool_named_like_owned_nodes_is_refused) {
  SimOptions o;
  o.nodes = *parse_nodes("1x8:A100");
  o.pools = {*parse_pool("a100:2x8:A100")};
  auto r = simulate(parse(kBusy), o);
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.status().message().find("--pool a100") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(spot_reclaims_preempt_runs_which_start_over_and_every_job_still_finishes) {
  // Long jobs on spot nodes reclaimed about every 20 minutes: runs are cut,
  // requeued (no retry spent) and start over; after two reclaims a job
  // rents on-demand (the broker's default spot_fallback_after), so all end.
  std::string csv = "job_id,submit_time_s,num_gpus,duration_s,user,gpu_type\n";
  for (int i = 0; i < 6; ++i) csv += "j" + std::to_string(i) + "," + std::to_string(i) + ",8,7200,u" + std::to_string(i % 3) + ",\n";
  auto trace = parse(csv);
  Run cfg;
  cfg.burst.after_s = 0;
  cfg.pools = {"cloud:6x8:A100,boot=180s,price=30,spot=0.4,interrupt=3"};
  auto r = run(trace, cfg);
  const CloudStats& c = r.cloud_stats;
  BOOST_TEST(c.interruptions > 0u);
  BOOST_TEST(c.runs_interrupted > 0u);
  BOOST_TEST(r.finished == trace.size());
  for (auto& o : r.outcomes) BOOST_TEST(o.state == "Succeeded", o.id << " " << o.state);
  uint32_t preempted = 0;
  for (auto& o : r.outcomes) preempted += o.preemptions;
  BOOST_TEST(preempted == c.runs_interrupted);
  // Cut runs cost time: the average JCT is above the uninterrupted one.
  Run calm = cfg;
  calm.pools = {"cloud:6x8:A100,boot=180s,price=30,spot=0.4"};
  auto quiet = run(trace, calm);
  BOOST_TEST(quiet.cloud_stats.interruptions == 0u);
  BOOST_TEST(r.jct.avg > quiet.jct.avg);
  // Falling back to on-demand costs more per node-hour than spot alone.
  BOOST_TEST(c.cost > c.node_hours * 30 * 0.4 + 1e-6);
  // The same seed gives the same run.
  auto again = run(trace, cfg);
  BOOST_TEST(again.jct.avg == r.jct.avg);
  BOOST_TEST(again.cloud_stats.interruptions == c.interruptions);
}

BOOST_AUTO_TEST_CASE(boot_failures_time_out_back_off_and_boot_times_follow_their_range) {
  auto trace = parse(kQueue);
  Run cfg;
  cfg.burst.after_s = 0;
  cfg.pools = {"cloud:4x8:A100,boot=60s-600s,bootfail=0.5,price=10"};
  auto r = run(trace, cfg);
  const CloudStats& c = r.cloud_stats;
  BOOST_TEST(c.boot_failures > 0u);
  BOOST_TEST(r.finished == trace.size());
  // A node that never registers is metered from its launch to its boot
  // timeout (1800 s here: three times the slowest boot) and bills nothing
  // but boot time.
  BOOST_TEST(c.boot_node_hours >= c.boot_failures * 1800.0 / 3600 - 1e-9);
  BOOST_TEST(std::abs(c.node_hours - (c.boot_node_hours + c.busy_node_hours + c.idle_node_hours)) < 1e-6);
  auto bad = parse_pool("aws:2x8:A100,boot=300s-60s");
  BOOST_TEST(!bad.ok());
  auto interrupt_on_demand = parse_pool("aws:2x8:A100,interrupt=1");
  BOOST_REQUIRE(!interrupt_on_demand.ok());
  BOOST_TEST(interrupt_on_demand.status().message().find("interrupt= needs spot=") != std::string::npos);
}

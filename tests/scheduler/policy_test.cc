// Unit tests of the scheduling policy in the core: fair share (decayed,
// dominant-resource usage; shares; age), EASY backfill and its
// reservations, strict FIFO, gangs, quotas with borrowing and reclaim,
// preemption by tier (grace, non-preemptible jobs), "any" GPU type, and
// NUMA-aware packing. Time is virtual: each test drives the core directly.
#define BOOST_TEST_MODULE scheduler_policy
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <map>
#include <random>
#include <set>

#include "core/scheduler.h"

namespace trainyard::fb {
inline std::ostream& operator<<(std::ostream& os, JobState s) { return os << EnumNameJobState(s); }
}  // namespace trainyard::fb

using namespace trainyard;
using namespace trainyard::scheduler;

namespace {

constexpr int64_t kS = 1'000'000'000;

fb::NodeInfoT make_node(const std::string& name, uint32_t gpus, const std::string& type = "A100",
                        std::vector<int> numa = {}) {
  fb::NodeInfoT n;
  n.name = name;
  for (uint32_t i = 0; i < gpus; ++i) {
    auto g = std::make_unique<fb::GpuInfoT>();
    g->index = i;
    g->type = type;
    g->memory_mb = 80'000;
    if (i < numa.size()) g->numa_node = numa[i];
    n.gpus.push_back(std::move(g));
  }
  n.cpus = 64;
  n.memory_mb = 512'000;
  return n;
}

fb::JobSpecT make_spec(uint32_t gpus, const std::string& account = "vision", uint64_t limit_s = 3600,
                       int32_t priority = 0, const std::string& type = "") {
  fb::JobSpecT s;
  s.name = "train";
  s.user = account + "-user";
  s.account = account;
  s.command = {"python", "train.py"};
  s.gpus_per_node = gpus;
  s.gpu_type = type;
  s.priority = priority;
  s.time_limit_s = limit_s;
  return s;
}

SchedulerConfig with(Backfill b) {
  SchedulerConfig c;
  c.backfill = b;
  return c;
}

// The core, a broker that grants every Allocate at once, and agents whose
// runs start at once and end when the test says.
struct Sim {
  explicit Sim(SchedulerConfig c = {}, std::string policy = "priority")
      : s(c, make_policy(policy, c.fairshare)) {}
  Scheduler s;
  int64_t now = 1'000 * kS;
  uint64_t next_lease = 100;
  std::map<JobId, std::vector<uint64_t>> leases;
  std::vector<ReleaseRequest> releases;
  std::vector<StateChange> changes;

  JobId submit(const fb::JobSpecT& spec) {
    auto r = s.submit(spec, now);
    BOOST_REQUIRE_MESSAGE(r.ok(), r.status().to_string());
    return r->job_ids.at(0);
  }
  void collect() {
    auto out = s.take_output();
    for (auto& r : out.releases) releases.push_back(r);
    for (auto& c : out.changes) changes.push_back(c);
  }
  // A cycle at `now`; every allocation is granted and its run starts.
  std::set<JobId> cycle() {
    s.tick(now);
    s.cycle(now);
    auto out = s.take_output();
    for (auto& r : out.releases) releases.push_back(r);
    for (auto& c : out.changes) changes.push_back(c);
    std::set<JobId> started;
    for (auto& a : out.allocations) {
      std::vector<uint64_t> ids;
      for (size_t i = 0; i < a.nodes.size(); ++i) ids.push_back(next_lease++);
      s.allocated(a.job, a.attempt, ids, now);
      for (size_t r = 0; r < a.nodes.size(); ++r) {
        s.lease_granted(Grant{ids[r], a.job, a.attempt, a.nodes[r].node, a.nodes[r].gpus, a.nodes[r].cpus,
                              a.nodes[r].memory_mb, static_cast<uint32_t>(r)},
                        now);
      }
      s.run_started(a.job, a.attempt, ids[0], now, now);
      leases[a.job] = ids;
      started.insert(a.job);
    }
    collect();
    return started;
  }
  void finish(JobId id, fb::RunOutcome outcome = fb::RunOutcome::Succeeded) {
    uint32_t attempt = s.job(id)->attempt;
    for (uint64_t l : leases[id]) s.run_finished(RunEnd{id, attempt, l, outcome, 0, 0, ""}, now);  // every node
    for (uint64_t l : leases[id]) s.lease_released(l, id, now);
    leases.erase(id);
    collect();
  }
  void advance(int64_t seconds) { now += seconds * kS; }
  JobState state(JobId id) const { return s.job(id)->state; }
  std::string reason(JobId id) const { return s.reason_of(*s.job(id)); }
};

}  // namespace

// --- fair share ----------------------------------------------------------------

BOOST_AUTO_TEST_CASE(fair_share_puts_the_account_that_used_less_first) {
  Sim sim({}, "fairshare");
  sim.s.node_up(make_node("n1", 1));
  JobId used = sim.submit(make_spec(1, "vision"));
  sim.cycle();
  sim.advance(1000);
  JobId a = sim.submit(make_spec(1, "vision"));  // submitted first...
  sim.advance(1);
  JobId b = sim.submit(make_spec(1, "nlp"));     // ...but nlp used nothing
  sim.finish(used);
  sim.s.tick(sim.now);  // factors are refreshed on the periodic tick
  BOOST_TEST(sim.s.factors(*sim.s.job(a)).fairshare < sim.s.factors(*sim.s.job(b)).fairshare);
  BOOST_TEST(sim.s.factors(*sim.s.job(b)).fairshare == 1.0);
  BOOST_TEST((sim.cycle() == std::set<JobId>{b}));
  BOOST_TEST(sim.reason(a) == "Resources");
}

BOOST_AUTO_TEST_CASE(fair_share_usage_decays_with_its_half_life) {
  SchedulerConfig c;
  c.fairshare.half_life_s = 100;
  c.fairshare.weight_age = 0;
  Sim sim(c, "fairshare");
  sim.s.node_up(make_node("n1", 1));
  // vision used the GPU for 500 s long ago, nlp for 200 s just now.
  JobId old_run = sim.submit(make_spec(1, "vision"));
  sim.cycle();
  sim.advance(500);
  sim.finish(old_run);
  sim.advance(2000);  // 20 half-lives
  JobId recent = sim.submit(make_spec(1, "nlp"));
  sim.cycle();
  sim.advance(200);
  JobId b = sim.submit(make_spec(1, "nlp"));
  JobId a = sim.submit(make_spec(1, "vision"));
  sim.finish(recent);
  sim.s.tick(sim.now);
  BOOST_TEST(sim.s.factors(*sim.s.job(a)).fairshare > sim.s.factors(*sim.s.job(b)).fairshare);
  BOOST_TEST((sim.cycle() == std::set<JobId>{a}));
}

BOOST_AUTO_TEST_CASE(fair_share_weighs_the_dominant_gpu_type_and_the_shares) {
  // vision used both A100s (all of that type); nlp used more GPU-seconds
  // but only half of the V100s: vision's dominant share is the larger.
  Sim sim({}, "fairshare");
  sim.s.node_up(make_node("a100", 2, "A100"));
  sim.s.node_up(make_node("v100", 8, "V100"));
  JobId va = sim.submit(make_spec(2, "vision", 3600, 0, "A100"));
  JobId nv = sim.submit(make_spec(4, "nlp", 3600, 0, "V100"));
  sim.cycle();
  sim.advance(1000);
  sim.finish(va);
  sim.finish(nv);
  JobId a = sim.submit(make_spec(1, "vision"));
  JobId b = sim.submit(make_spec(1, "nlp"));
  sim.s.tick(sim.now);
  BOOST_TEST(sim.s.factors(*sim.s.job(a)).fairshare < sim.s.factors(*sim.s.job(b)).fairshare);

  // The same usage with vision holding 4 times nlp's share turns it round.
  SchedulerConfig c;
  c.fairshare.shares = {{"vision", 4}, {"nlp", 1}};
  Sim weighted(c, "fairshare");
  weighted.s.node_up(make_node("a100", 2, "A100"));
  weighted.s.node_up(make_node("v100", 8, "V100"));
  va = weighted.submit(make_spec(2, "vision", 3600, 0, "A100"));
  nv = weighted.submit(make_spec(4, "nlp", 3600, 0, "V100"));
  weighted.cycle();
  weighted.advance(1000);
  weighted.finish(va);
  weighted.finish(nv);
  a = weighted.submit(make_spec(1, "vision"));
  b = weighted.submit(make_spec(1, "nlp"));
  weighted.s.tick(weighted.now);
  BOOST_TEST(weighted.s.factors(*weighted.s.job(a)).fairshare > weighted.s.factors(*weighted.s.job(b)).fairshare);
}

BOOST_AUTO_TEST_CASE(age_lets_a_long_waiting_job_pass_a_lighter_account) {
  SchedulerConfig c;
  c.fairshare.weight_fairshare = 1000;
  c.fairshare.weight_age = 2000;
  c.fairshare.max_age_s = 3600;
  Sim sim(c, "fairshare");
  sim.s.node_up(make_node("n1", 1));
  JobId blocker = sim.submit(make_spec(1, "vision", 100'000));
  sim.cycle();
  JobId old = sim.submit(make_spec(1, "vision"));
  sim.advance(3600);
  JobId fresh = sim.submit(make_spec(1, "nlp"));
  sim.finish(blocker);
  sim.s.tick(sim.now);
  auto fo = sim.s.factors(*sim.s.job(old)), ff = sim.s.factors(*sim.s.job(fresh));
  BOOST_TEST(fo.age == 1.0);
  BOOST_TEST(ff.age == 0.0);
  BOOST_TEST(fo.fairshare < ff.fairshare);
  BOOST_TEST(fo.priority > ff.priority);
  BOOST_TEST((sim.cycle() == std::set<JobId>{old}));
}

// --- backfill ------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(easy_backfill_starts_short_jobs_and_keeps_long_ones_off_the_reservation) {
  Sim sim(with(Backfill::kEasy));
  sim.s.node_up(make_node("n1", 4));
  JobId running = sim.submit(make_spec(2, "vision", 100));
  sim.cycle();
  int64_t t0 = sim.now;
  JobId big = sim.submit(make_spec(4, "vision", 100));
  JobId short_one = sim.submit(make_spec(1, "vision", 50));   // ends before the big one's start
  JobId long_one = sim.submit(make_spec(2, "vision", 500));   // would delay it
  JobId long_small = sim.submit(make_spec(1, "vision", 500)); // would leave it 3 of 4 at its start
  BOOST_TEST((sim.cycle() == std::set<JobId>{short_one}));
  BOOST_TEST(sim.s.job(big)->expected_start_ns == t0 + 100 * kS);
  BOOST_TEST(sim.reason(big) == "Resources");
  BOOST_TEST(sim.reason(long_one) == "Priority");
  BOOST_TEST(sim.reason(long_small) == "Priority");
  sim.advance(50);
  sim.finish(short_one);
  BOOST_TEST(sim.cycle().empty());
  sim.advance(50);
  sim.finish(running);
  BOOST_TEST((sim.cycle() == std::set<JobId>{big}));
  BOOST_TEST(sim.s.job(big)->start_time_ns == t0 + 100 * kS);
}

BOOST_AUTO_TEST_CASE(greedy_would_delay_the_big_job_easy_does_not) {
  // The same jobs without a reservation: the long job takes the GPUs the
  // big one waits for.
  Sim sim(with(Backfill::kGreedy));
  sim.s.node_up(make_node("n1", 4));
  sim.submit(make_spec(2, "vision", 100));
  sim.cycle();
  sim.submit(make_spec(4, "vision", 100));
  JobId long_one = sim.submit(make_spec(2, "vision", 500));
  BOOST_TEST((sim.cycle() == std::set<JobId>{long_one}));
}

BOOST_AUTO_TEST_CASE(backfill_never_delays_a_reservation_random_workload) {
  // Jobs of random shapes and limits, runs that end at or before their
  // limits: every job starts no later than the first start it was promised.
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    std::mt19937_64 rng(seed);
    Sim sim(with(Backfill::kEasy));
    for (int n = 0; n < 3; ++n) sim.s.node_up(make_node("n" + std::to_string(n), 4));
    std::map<JobId, int64_t> run_for, promised;
    for (int i = 0; i < 40; ++i) {
      uint32_t gpus = 1 + static_cast<uint32_t>(rng() % 4);
      uint64_t limit = 10 + rng() % 200;
      auto spec = make_spec(gpus, "vision", limit);
      if (rng() % 8 == 0) spec.nodes = 2;
      JobId id = sim.submit(spec);
      run_for[id] = static_cast<int64_t>(1 + rng() % limit);
    }
    std::map<JobId, int64_t> ends;  // running: when they end
    for (int step = 0; step < 1000 && (!ends.empty() || sim.s.queued() > 0); ++step) {
      for (JobId id : sim.cycle()) ends[id] = sim.now + run_for[id] * kS;
      for (auto& r : sim.s.reservations()) {
        if (!promised.count(r.job)) promised[r.job] = r.start_ns;
      }
      if (ends.empty()) break;
      auto next = std::min_element(ends.begin(), ends.end(), [](auto& a, auto& b) { return a.second < b.second; });
      sim.now = next->second;
      for (auto it = ends.begin(); it != ends.end();) {
        if (it->second == sim.now) {
          sim.finish(it->first);
          it = ends.erase(it);
        } else {
          ++it;
        }
      }
    }
    BOOST_TEST_REQUIRE(sim.s.queued() == 0u);
    BOOST_TEST(!promised.empty());
    for (auto& [id, at] : promised) {
      BOOST_TEST(sim.s.job(id)->history.size() >= 2u);
      int64_t started = 0;
      for (auto& t : sim.s.job(id)->history) {
        if (t.to == JobState::Running) started = t.time_ns;
      }
      BOOST_TEST(started <= at, "seed " << seed << ": job " << id << " started " << (started - at) / kS
                                          << " s after its reserved start");
    }
  }
}

BOOST_AUTO_TEST_CASE(fifo_is_strict_order_in_a_partition) {
  Sim sim(with(Backfill::kOff), "fifo");
  sim.s.node_up(make_node("n1", 4));
  sim.submit(make_spec(2, "vision", 100));
  sim.cycle();
  JobId big = sim.submit(make_spec(4));
  JobId small = sim.submit(make_spec(1, "vision", 10, 5));  // a higher tier means nothing to fifo
  BOOST_TEST(sim.cycle().empty());
  BOOST_TEST(sim.reason(big) == "Resources");
  BOOST_TEST(sim.reason(small) == "Priority");
}

// --- gangs, placement ----------------------------------------------------------

BOOST_AUTO_TEST_CASE(a_gang_reservation_holds_every_node_it_needs) {
  Sim sim(with(Backfill::kEasy));
  sim.s.node_up(make_node("n1", 4));
  sim.s.node_up(make_node("n2", 4));
  sim.s.node_up(make_node("n3", 4));
  JobId a = sim.submit(make_spec(4, "vision", 100));
  JobId b = sim.submit(make_spec(2, "vision", 200));
  sim.cycle();
  auto gang = make_spec(4, "vision", 100);
  gang.nodes = 3;
  JobId g = sim.submit(gang);
  JobId filler = sim.submit(make_spec(2, "vision", 1000));  // fits on the free node, but outlives the reservation
  BOOST_TEST(sim.cycle().empty());
  BOOST_REQUIRE_EQUAL(sim.s.reservations().size(), 1u);
  BOOST_TEST(sim.s.reservations()[0].nodes.size() == 3u);
  BOOST_TEST(sim.s.job(g)->expected_start_ns == sim.now + 200 * kS);
  BOOST_TEST(sim.reason(filler) == "Priority");
  sim.advance(100);
  sim.finish(a);
  BOOST_TEST(sim.cycle().empty());  // all three nodes or none
  BOOST_TEST(sim.s.cluster().free_gpus() == 10u);
  sim.advance(100);
  sim.finish(b);
  BOOST_TEST((sim.cycle() == std::set<JobId>{g}));
  BOOST_TEST(sim.s.job(g)->nodes.size() == 3u);
}

BOOST_AUTO_TEST_CASE(multi_gpu_jobs_take_gpus_of_one_numa_domain_and_fragmentation_is_measured) {
  Sim sim;
  sim.s.node_up(make_node("n1", 8, "A100", {0, 0, 0, 0, 1, 1, 1, 1}));
  sim.s.node_up(make_node("n2", 8, "A100", {0, 0, 0, 0, 1, 1, 1, 1}));
  JobId three = sim.submit(make_spec(3));
  sim.cycle();
  JobId two = sim.submit(make_spec(2));
  sim.cycle();
  JobId one = sim.submit(make_spec(1));
  sim.cycle();
  std::string node = sim.s.job(three)->nodes.at(0);
  BOOST_TEST(sim.s.job(two)->nodes.at(0) == node);  // packed on the used node
  BOOST_TEST(sim.s.job(one)->nodes.at(0) == node);
  auto domain = [](const std::vector<uint32_t>& g) {
    std::set<int> d;
    for (auto i : g) d.insert(i < 4 ? 0 : 1);
    return d;
  };
  BOOST_TEST(domain(sim.s.job(three)->gpu_indices).size() == 1u);
  BOOST_TEST(domain(sim.s.job(two)->gpu_indices).size() == 1u);
  BOOST_TEST(domain(sim.s.job(two)->gpu_indices) != domain(sim.s.job(three)->gpu_indices));
  BOOST_TEST(domain(sim.s.job(one)->gpu_indices) == domain(sim.s.job(three)->gpu_indices));  // fills the fuller domain
  auto f = sim.s.cluster().fragmentation();
  BOOST_TEST(f.free_gpus == 10u);
  BOOST_TEST(f.free_on_whole_nodes == 8u);
  BOOST_TEST(f.whole_free_nodes == 1u);
  BOOST_TEST(f.ratio() == 0.2, boost::test_tools::tolerance(1e-9));
}

BOOST_AUTO_TEST_CASE(any_type_reserves_on_the_type_that_starts_it_soonest) {
  Sim sim(with(Backfill::kEasy));
  sim.s.node_up(make_node("v100", 4, "V100"));
  sim.s.node_up(make_node("a100", 4, "A100"));
  sim.submit(make_spec(4, "vision", 1000, 0, "V100"));
  JobId a100_job = sim.submit(make_spec(4, "vision", 100, 0, "A100"));
  sim.cycle();
  JobId any = sim.submit(make_spec(4, "vision", 100));
  BOOST_TEST(sim.cycle().empty());
  BOOST_REQUIRE_EQUAL(sim.s.reservations().size(), 1u);
  auto& r = sim.s.reservations()[0];
  BOOST_TEST(sim.s.cluster().gpu_type_name(r.type) == "A100");
  BOOST_TEST(sim.s.job(any)->expected_start_ns == sim.now + 100 * kS);
  sim.advance(100);
  sim.finish(a100_job);
  BOOST_TEST((sim.cycle() == std::set<JobId>{any}));
  BOOST_TEST(sim.s.job(any)->nodes.at(0) == "a100");
}

// --- quotas --------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(quota_caps_the_gpus_an_account_holds_per_type) {
  SchedulerConfig c;
  c.quotas["vision"].max_gpus = {{"", 3}, {"A100", 2}};
  Sim sim(c);
  sim.s.node_up(make_node("a100", 8, "A100"));
  sim.s.node_up(make_node("v100", 8, "V100"));
  JobId a1 = sim.submit(make_spec(1, "vision", 3600, 0, "A100"));
  JobId a2 = sim.submit(make_spec(1, "vision", 3600, 0, "A100"));
  JobId a3 = sim.submit(make_spec(1, "vision", 3600, 0, "A100"));
  JobId v1 = sim.submit(make_spec(1, "vision", 3600, 0, "V100"));
  JobId v2 = sim.submit(make_spec(1, "vision", 3600, 0, "V100"));
  JobId other = sim.submit(make_spec(4, "nlp", 3600, 0, "A100"));
  BOOST_TEST((sim.cycle() == std::set<JobId>{a1, a2, v1, other}));
  BOOST_TEST(sim.s.account_gpus("vision") == 3u);
  BOOST_TEST(sim.s.account_gpus("vision", "A100") == 2u);
  BOOST_TEST(sim.reason(a3) == "QuotaExceeded: account 'vision' uses 2 of its 2 A100 GPUs");
  BOOST_TEST(sim.reason(v2) == "QuotaExceeded: account 'vision' uses 3 of its 3 GPUs");
  sim.finish(a1);
  BOOST_TEST((sim.cycle() == std::set<JobId>{a3}));
}

BOOST_AUTO_TEST_CASE(an_idle_guarantee_is_borrowed_and_reclaimed_by_preemption) {
  SchedulerConfig c;
  c.quotas["vision"].guaranteed_gpus = {{"", 4}};
  Sim sim(c);
  sim.s.node_up(make_node("n1", 4));
  sim.s.node_up(make_node("n2", 4));
  // nlp borrows the whole cluster while vision is idle.
  std::vector<JobId> borrowed;
  for (int i = 0; i < 8; ++i) {
    borrowed.push_back(sim.submit(make_spec(1, "nlp", 3600)));
    sim.advance(1);
  }
  BOOST_TEST(sim.cycle().size() == 8u);
  // vision comes back: it takes its guarantee back, two GPUs at a time.
  JobId v1 = sim.submit(make_spec(2, "vision"));
  BOOST_TEST(sim.cycle().empty());
  BOOST_TEST(sim.reason(v1) == "Preempting");
  BOOST_REQUIRE_EQUAL(sim.releases.size(), 2u);
  std::set<JobId> victims;
  for (auto& r : sim.releases) {
    BOOST_TEST(r.kill);
    BOOST_TEST(r.reason.find("reclaims its guaranteed GPUs") != std::string::npos);
    for (auto& [id, ls] : sim.leases) {
      if (ls.at(0) == r.lease_id) victims.insert(id);
    }
  }
  BOOST_REQUIRE_EQUAL(victims.size(), 2u);
  for (JobId v : victims) {
    BOOST_TEST(sim.state(v) == JobState::Running);  // until its run has ended
    sim.finish(v, fb::RunOutcome::Preempted);
    BOOST_TEST(sim.state(v) == JobState::Pending);
    BOOST_TEST(sim.s.job(v)->preemptions == 1u);
  }
  BOOST_TEST(sim.s.account_preemptions("nlp") == 2u);
  BOOST_TEST((sim.cycle() == std::set<JobId>{v1}));
  // The preempted nlp jobs wait: nlp may not take back what vision holds.
  JobId v2 = sim.submit(make_spec(2, "vision"));
  sim.releases.clear();
  sim.cycle();
  BOOST_TEST(sim.releases.size() == 2u);
  BOOST_TEST(sim.reason(v2) == "Preempting");
  // Past its guarantee vision only waits.
  for (auto& r : std::vector<ReleaseRequest>(sim.releases)) {
    for (auto& [id, ls] : std::map<JobId, std::vector<uint64_t>>(sim.leases)) {
      if (ls.at(0) == r.lease_id) sim.finish(id, fb::RunOutcome::Preempted);
    }
  }
  BOOST_TEST((sim.cycle() == std::set<JobId>{v2}));
  JobId v3 = sim.submit(make_spec(1, "vision"));
  sim.releases.clear();
  BOOST_TEST(sim.cycle().empty());
  BOOST_TEST(sim.releases.empty());
  BOOST_TEST(sim.reason(v3) == "Resources");
  BOOST_TEST(sim.s.account_gpus("vision") == 4u);
  BOOST_TEST(sim.s.account_gpus("nlp") == 4u);
}

// --- preemption by tier ---------------------------------------------------------

BOOST_AUTO_TEST_CASE(a_higher_tier_preempts_with_grace_and_never_a_non_preemptible_job) {
  SchedulerConfig c;
  c.preemption.tiers = true;
  Sim sim(c);
  sim.s.node_up(make_node("n1", 4));
  sim.s.node_up(make_node("n2", 4));
  auto low = make_spec(2, "nlp");
  low.grace_s = 45;
  JobId first = sim.submit(low);
  JobId second = sim.submit(low);
  auto pinned = make_spec(4, "nlp");
  pinned.preemptible = false;
  JobId keep = sim.submit(pinned);
  sim.cycle();
  BOOST_TEST(sim.s.job(first)->nodes.at(0) == sim.s.job(second)->nodes.at(0));
  // A job of the higher tier that needs both nodes: one holds a job that
  // is not preemptible, so nothing is preempted at all.
  auto both = make_spec(4, "vision", 3600, 10);
  both.nodes = 2;
  JobId wide = sim.submit(both);
  BOOST_TEST(sim.cycle().empty());
  BOOST_TEST(sim.releases.empty());
  BOOST_TEST(sim.s.cancel(wide, "", sim.now).ok());
  // One node's worth: the two preemptible jobs go, with their grace period.
  JobId high = sim.submit(make_spec(4, "vision", 3600, 10));
  BOOST_TEST(sim.cycle().empty());
  BOOST_REQUIRE_EQUAL(sim.releases.size(), 2u);
  for (auto& r : sim.releases) {
    BOOST_TEST(r.kill);
    BOOST_TEST(r.grace_s == 45u);
    BOOST_TEST(r.reason.find("preempted by job " + std::to_string(high)) == 0u);
    BOOST_TEST((r.job == first || r.job == second));
  }
  BOOST_TEST(sim.state(keep) == JobState::Running);
  BOOST_TEST(sim.state(first) == JobState::Running);  // until the agent reports the run's end
  BOOST_TEST(sim.reason(high) == "Preempting");
  // The first victim ends: a lower job may not take the GPUs freed for
  // the preemptor (nor may the victim itself, requeued ahead of it).
  JobId sneaky = sim.submit(make_spec(1, "nlp"));
  sim.advance(45);
  sim.changes.clear();
  sim.finish(first, fb::RunOutcome::Preempted);
  // Running -> Preempted -> Pending, without spending a retry.
  std::vector<JobState> seen;
  for (auto& ch : sim.changes) {
    if (ch.job == first) seen.push_back(ch.to);
  }
  BOOST_TEST((seen == std::vector<JobState>{JobState::Preempted, JobState::Pending}));
  BOOST_TEST(sim.s.job(first)->attempt == 2u);
  BOOST_TEST(sim.s.job(first)->preemptions == 1u);
  BOOST_TEST(sim.cycle().empty());
  BOOST_TEST(sim.state(sneaky) == JobState::Pending);
  sim.finish(second, fb::RunOutcome::Cancelled);  // SIGTERM'd: how the agent reports it does not matter
  BOOST_TEST(sim.state(second) == JobState::Pending);
  BOOST_TEST(sim.s.stats().preemptions == 2u);
  BOOST_TEST(sim.s.account_preemptions("nlp") == 2u);
  BOOST_TEST((sim.cycle() == std::set<JobId>{high}));
  // Equal tiers never preempt each other.
  sim.releases.clear();
  sim.submit(make_spec(4, "nlp", 3600, 10));
  sim.cycle();
  BOOST_TEST(sim.releases.empty());
}

BOOST_AUTO_TEST_CASE(a_preempted_job_that_finishes_in_its_grace_succeeds) {
  SchedulerConfig c;
  c.preemption.tiers = true;
  Sim sim(c);
  sim.s.node_up(make_node("n1", 4));
  JobId low = sim.submit(make_spec(4, "nlp"));
  sim.cycle();
  sim.submit(make_spec(4, "vision", 3600, 1));
  sim.cycle();
  BOOST_REQUIRE_EQUAL(sim.releases.size(), 1u);
  sim.finish(low, fb::RunOutcome::Succeeded);
  BOOST_TEST(sim.state(low) == JobState::Succeeded);
  BOOST_TEST(sim.s.job(low)->preemptions == 0u);
}

BOOST_AUTO_TEST_CASE(partition_tier_ranks_before_job_priority) {
  SchedulerConfig c;
  c.partitions = {PartitionConfig{"batch", {}, 0, 0, 0}, PartitionConfig{"urgent", {}, 0, 0, 5}};
  c.default_partition = "batch";
  Sim sim(c);
  sim.s.node_up(make_node("n1", 1));
  JobId blocker = sim.submit(make_spec(1));
  sim.cycle();
  JobId high_priority = sim.submit(make_spec(1, "vision", 3600, 100));
  auto u = make_spec(1);
  u.partition = "urgent";
  JobId urgent = sim.submit(u);
  BOOST_TEST(sim.s.job(urgent)->tier > sim.s.job(high_priority)->tier);
  sim.finish(blocker);
  BOOST_TEST((sim.cycle() == std::set<JobId>{urgent}));
}

BOOST_AUTO_TEST_CASE(restore_rebuilds_fair_share_usage_and_preemption_state_from_job_records) {
  SchedulerConfig c;
  c.preemption.tiers = true;
  Sim sim(c, "fairshare");
  sim.s.node_up(make_node("n1", 4));
  JobId ran = sim.submit(make_spec(4, "vision"));
  sim.cycle();
  sim.advance(600);
  sim.finish(ran);
  JobId victim = sim.submit(make_spec(2, "nlp"));
  sim.cycle();
  sim.submit(make_spec(4, "vision", 3600, 3));
  sim.cycle();  // preempts the nlp job
  BOOST_REQUIRE(sim.s.job(victim)->preempt_requested);
  JobId waiting_nlp = sim.submit(make_spec(1, "nlp"));
  JobId waiting_vision = sim.submit(make_spec(1, "vision"));
  sim.s.tick(sim.now);
  double before_nlp = sim.s.factors(*sim.s.job(waiting_nlp)).fairshare;
  double before_vision = sim.s.factors(*sim.s.job(waiting_vision)).fairshare;
  BOOST_TEST(before_vision < before_nlp);

  Scheduler restored(c, make_policy("fairshare", c.fairshare));
  restored.restore_node(make_node("n1", 4), true, false);
  for (auto& [id, ls] : sim.leases) {
    const Job* j = sim.s.job(id);
    for (size_t r = 0; r < ls.size(); ++r) {
      restored.restore_lease(Grant{ls[r], id, j->attempt, j->nodes[r], j->gpu_indices, 1, 0, static_cast<uint32_t>(r)});
    }
  }
  sim.s.for_each_job(0, [&](const Job& j) {
    fb::JobRecordT rec;
    to_record(j, j.reason, 0, &rec);
    Job back = from_record(rec);
    back.preempt_requested = j.preempt_requested;  // the shell stores it in the record's flags
    restored.restore_job(std::move(back));
    return true;
  });
  restored.finish_restore(sim.now);
  BOOST_TEST(restored.factors(*restored.job(waiting_nlp)).fairshare == before_nlp,
             boost::test_tools::tolerance(1e-9));
  BOOST_TEST(restored.factors(*restored.job(waiting_vision)).fairshare == before_vision,
             boost::test_tools::tolerance(1e-9));
  BOOST_TEST(restored.account_gpus("nlp") == 2u);
  // The preemption under way is asked again.
  auto out = restored.take_output();
  BOOST_REQUIRE_EQUAL(out.releases.size(), 1u);
  BOOST_TEST(out.releases[0].job == victim);
  BOOST_TEST(out.releases[0].reason.find("preempted by job") == 0u);
}

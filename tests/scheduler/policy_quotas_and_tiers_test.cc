// Unit tests of the scheduling policy in the core: quotas with borrowing and
// reclaim, preemption by tier (grace, non-preemptible jobs), partition
// tiers, and the restore of fair-share usage and preemption state. Time is
// virtual: each test drives the core directly.
#include <boost/test/unit_test.hpp>

#include "policy_test_support.h"

using namespace trainyard;
using namespace trainyard::scheduler;
using namespace trainyard::scheduler::policy_testing;

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

BOOST_AUTO_TEST_CASE(a_purged_job_keeps_its_fair_share_usage_across_a_restart) {
  // Usage that decays (a week's half-life) and usage that never does (0:
  // Slurm's PriorityDecayHalfLife=0).
  for (double half_life_s : {7 * 24 * 3600.0, 0.0}) {
    BOOST_TEST_CONTEXT("half_life_s " << half_life_s) {
      SchedulerConfig c;
      c.fairshare.half_life_s = half_life_s;
      c.job_retention_s = 3600;
      Sim sim(c, "fairshare");
      sim.s.node_up(make_node("n1", 4));
      JobId ran = sim.submit(make_spec(4, "vision"));
      sim.cycle();
      sim.advance(1800);  // 4 GPUs for half an hour
      sim.finish(ran);
      sim.advance(3600);  // its record is purged an hour after it ended
      BOOST_REQUIRE_EQUAL(sim.s.purge_ended(sim.now), 1u);
      BOOST_TEST(sim.s.take_output().carried_usage_changed);
      BOOST_REQUIRE(!sim.s.job(ran));
      JobId nlp = sim.submit(make_spec(1, "nlp"));
      JobId vision = sim.submit(make_spec(1, "vision"));
      sim.advance(1);  // factors are taken at a tick
      sim.s.tick(sim.now);
      double before_nlp = sim.s.factors(*sim.s.job(nlp)).fairshare;
      double before_vision = sim.s.factors(*sim.s.job(vision)).fairshare;
      BOOST_TEST(before_vision < before_nlp);  // vision used 2 GPU-hours, nlp none

      // A restart: the records left, and the purged job's usage.
      auto restart = [&](bool with_carried) {
        auto r = std::make_unique<Scheduler>(c, make_policy("fairshare", c.fairshare));
        r->restore_node(make_node("n1", 4), true, false);
        sim.s.for_each_job(0, [&](const Job& j) {
          fb::JobRecordT rec;
          to_record(j, j.reason, 0, &rec);
          r->restore_job(from_record(rec));
          return true;
        });
        if (with_carried) {
          for (auto& [key, u] : sim.s.carried_usage()) r->restore_carried_usage(key.first, key.second, u);
        }
        r->finish_restore(sim.now);  // at the live core's last tick: the same factors at once
        return r;
      };
      auto restored = restart(true);
      BOOST_TEST(restored->factors(*restored->job(vision)).fairshare == before_vision,
                 boost::test_tools::tolerance(1e-9));
      BOOST_TEST(restored->factors(*restored->job(nlp)).fairshare == before_nlp, boost::test_tools::tolerance(1e-9));
      // Without it (as before) vision's usage was gone with the record.
      auto forgot = restart(false);
      BOOST_TEST(forgot->factors(*forgot->job(vision)).fairshare == forgot->factors(*forgot->job(nlp)).fairshare);
    }
  }
}

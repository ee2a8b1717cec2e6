// Unit tests of the scheduler's pure core: a job's life after submission
// (requeue, lost leases and retries, cancel, the broker's replies, client
// tokens, hold and release, blocked accounts) and its restore from records.
#include <boost/test/unit_test.hpp>

#include "core_test_support.h"

using namespace trainyard;
using namespace trainyard::scheduler;
using namespace trainyard::scheduler::testing;

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

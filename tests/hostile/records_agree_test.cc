// Under faults, the records agree: services SIGKILLed at random while short
// jobs run, restarted, and then every job's history (its running interval
// times its GPUs) equals what billing charged it, to the millisecond. A
// history dated by when a restarted service heard of an event, instead of
// when it happened on the node, fails this by up to seconds.
#define BOOST_TEST_MODULE records_agree
#include <boost/test/unit_test.hpp>

#include <fstream>
#include <random>
#include <thread>

#include "cluster.h"
#include "cluster_client.h"
#include "trainyard/client.h"

using namespace std::chrono_literals;
using namespace trainyard;
using trainyard::testing::Cluster;
using trainyard::testing::ClusterOptions;
using trainyard::testing::wait_until;

BOOST_AUTO_TEST_CASE(every_jobs_history_equals_its_bill_after_random_sigkills) {
  testing::TempDir scratch;
  ClusterOptions o;
  o.agents = {{"node-a", 2}, {"node-b", 2}};
  o.with_test_billing(scratch.path());
  o.node_timeout_ms = 10000;  // agents restart well within it: their runs go on
  Cluster c(o);
  auto cl = testing::connect(c, "user:alice", 2000);

  constexpr int kJobs = 200;
  std::vector<uint64_t> ids;
  std::mt19937 rng(20261129);
  for (int i = 0; i < kJobs; ++i) {
    fb::JobSpecT s;
    s.name = "j" + std::to_string(i);
    s.user = "alice";
    s.account = "vision";
    s.command = {"sleep", std::to_string(0.1 + 0.05 * (i % 7))};
    s.gpus_per_node = 1 + i % 2;
    s.time_limit_s = 120;
    Result<client::SubmitResult> sub = Status::unavailable("not yet");
    BOOST_REQUIRE(wait_until([&] { return (sub = cl.submit(s)).ok(); }, 30s));
    ids.push_back(sub->job_ids[0]);
    if (i % 10 == 9) {
      // SIGKILL one service mid-stream, restart it a moment later.
      static const std::vector<std::string> victims = {"scheduler", "broker", "billing", "node-a", "node-b"};
      auto victim = victims[rng() % victims.size()];
      BOOST_TEST_MESSAGE("SIGKILL " << victim << " after job " << i);
      c.kill9(victim);
      std::this_thread::sleep_for(std::chrono::milliseconds(100 + rng() % 400));
      c.start(victim);  // on its old port: clients find it again
    }
  }
  auto done = cl.wait(ids, 300s);
  BOOST_REQUIRE_MESSAGE(done.ok(), done.status().to_string() << "\n" << c.logs());
  int checked = 0, mismatches = 0;
  for (const auto& rec : *done) {
    BOOST_REQUIRE_MESSAGE(rec.state == fb::JobState::Succeeded,
                          "job " << rec.job_id << " " << fb::EnumNameJobState(rec.state) << ": " << rec.reason);
    BOOST_CHECK_EQUAL(rec.attempt, 1u);  // ran exactly once
    uint64_t gpus = rec.spec->gpus_per_node;
    uint64_t expected_ms = static_cast<uint64_t>(rec.end_time_ns - rec.start_time_ns) * gpus / 1'000'000;
    client::UsageQuery q;
    q.job_id = rec.job_id;
    q.group_by = "job";
    uint64_t billed = 0;
    bool settled = wait_until(
        [&] {
          auto r = cl.usage(q);
          if (!r.ok() || r->rows.empty()) return false;
          billed = r->rows[0]->gpu_ms;
          return billed == expected_ms;
        },
        std::chrono::milliseconds(mismatches == 0 ? 30000 : 200));  // billing settles once; after a mismatch, do not wait per job
    if (!settled) ++mismatches;
    BOOST_CHECK_MESSAGE(settled, "job " << rec.job_id << ": history says " << expected_ms << " GPU-ms ("
                                        << gpus << " GPUs), billing charged " << billed);
    ++checked;
  }
  BOOST_CHECK_EQUAL(checked, kJobs);
}

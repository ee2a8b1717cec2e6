// Tests of the trace simulator (ty-sim's library): a small trace whose
// results are computed by hand, determinism, starvation under a stream of
// small jobs, and the committed synthetic traces, where fair share with
// backfill must beat FIFO on completion time and utilisation and no job
// may starve.
#define BOOST_TEST_MODULE scheduler_sim
#include <boost/test/unit_test.hpp>

#include <sstream>

#include "sim/simulator.h"
#include "sim/trace.h"

using namespace trainyard;
using namespace trainyard::scheduler;
using namespace trainyard::scheduler::sim;

namespace {

std::vector<TraceJob> parse(const std::string& csv) {
  std::istringstream in(csv);
  auto t = parse_trace(in);
  BOOST_REQUIRE_MESSAGE(t.ok(), t.status().to_string());
  return std::move(t).value();
}

SimResult run(const std::vector<TraceJob>& trace, const std::string& nodes, const std::string& policy,
              double limit_factor = 1, bool random = false, uint64_t seed = 1) {
  SimOptions o;
  auto n = parse_nodes(nodes);
  BOOST_REQUIRE(n.ok());
  o.nodes = *n;
  o.policy = policy;
  o.limit_factor = limit_factor;
  o.limit_random = random;
  o.seed = seed;
  o.sample_s = 100;
  auto r = simulate(trace, o);
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().to_string());
  return std::move(r).value();
}

const JobOutcome& outcome(const SimResult& r, const std::string& id) {
  for (auto& o : r.outcomes) {
    if (o.id == id) return o;
  }
  BOOST_FAIL("no job " + id);
  return r.outcomes.front();
}

// One node of 4 GPUs. j1 holds 2 GPUs for 100 s; j2 wants all 4; j3 is
// short enough to finish before j2 could start; j4 is long.
const char* kSmall =
    "job_id,submit_time_s,num_gpus,duration_s,user,gpu_type\n"
    "j1,0,2,100,alice,\n"
    "j2,10,4,50,bob,\n"
    "j3,20,1,30,carol,any\n"
    "j4,20,2,200,carol,A100\n";

}  // namespace

BOOST_AUTO_TEST_CASE(trace_and_node_lists_parse_and_errors_name_the_line) {
  auto t = parse(kSmall);
  BOOST_REQUIRE_EQUAL(t.size(), 4u);
  BOOST_TEST(t[3].gpu_type == "A100");
  BOOST_TEST(t[2].gpu_type == "");
  std::istringstream bad("j1,0,2,100,alice,\nj2,ten,1,5,bob,\n");
  auto r = parse_trace(bad, "t.csv");
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.status().message().find("t.csv:2: submit_time_s") == 0u);
  auto n = parse_nodes("64x8:V100,32x8:A100");
  BOOST_REQUIRE(n.ok());
  BOOST_TEST(n->size() == 2u);
  BOOST_TEST((*n)[1].count == 32u);
  BOOST_TEST((*n)[1].type == "A100");
  BOOST_TEST(!parse_nodes("64:V100").ok());
}

BOOST_AUTO_TEST_CASE(small_trace_matches_hand_computed_results) {
  auto trace = parse(kSmall);
  // FIFO, strict: j2 waits for j1 (100), j3 and j4 wait for j2 (150).
  auto fifo = run(trace, "1x4:A100", "fifo");
  BOOST_TEST(outcome(fifo, "j2").start_s == 100);
  BOOST_TEST(outcome(fifo, "j3").start_s == 150);
  BOOST_TEST(outcome(fifo, "j4").start_s == 150);
  // JCTs 100, 140, 160, 330; waits 0, 90, 130, 130.
  BOOST_TEST(fifo.jct.avg == (100 + 140 + 160 + 330) / 4.0);
  BOOST_TEST(fifo.wait.avg == (0 + 90 + 130 + 130) / 4.0);
  BOOST_TEST(fifo.wait.max == 130);
  BOOST_TEST(fifo.makespan_s == 350);
  // Busy GPU-seconds 2*100 + 4*50 + 1*30 + 2*200 = 830 over 4 GPUs x 350 s.
  BOOST_TEST(fifo.utilisation == 830.0 / 1400.0, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(fifo.finished == 4u);

  // EASY: j2 is reserved at 100; j3 (ends at 50) backfills; j4 (would end
  // at 220) may not, and starts after j2 (150).
  auto easy = run(trace, "1x4:A100", "fairshare+backfill");
  BOOST_TEST(outcome(easy, "j3").start_s == 20);
  BOOST_TEST(outcome(easy, "j2").start_s == 100);
  BOOST_TEST(outcome(easy, "j4").start_s == 150);
  BOOST_TEST(easy.jct.avg == (100 + 140 + 30 + 330) / 4.0);
  BOOST_TEST(easy.wait.avg == (0 + 90 + 0 + 130) / 4.0);
  BOOST_TEST(easy.makespan_s == 350);
  BOOST_TEST(easy.wait_by_size.at("1").count == 1u);
  BOOST_TEST(easy.wait_by_size.at("2-4").avg == (0 + 90 + 130) / 3.0);

  // Greedy (no reservation): j4 takes the GPUs at 50 and pushes j2 to 250.
  auto greedy = run(trace, "1x4:A100", "priority");
  BOOST_TEST(outcome(greedy, "j3").start_s == 20);
  BOOST_TEST(outcome(greedy, "j4").start_s == 50);
  BOOST_TEST(outcome(greedy, "j2").start_s == 250);
  BOOST_TEST(greedy.makespan_s == 300);
  BOOST_TEST(greedy.wait.max == 240);

  // Overestimated limits (x3): j3's limit (90 s) ends after j2's reserved
  // start (j1's limit: 300 s), and j3 still fits before it.
  auto over = run(trace, "1x4:A100", "fairshare+backfill", 3);
  BOOST_TEST(outcome(over, "j3").start_s == 20);
  BOOST_TEST(outcome(over, "j2").start_s == 100);  // j1 ends at 100 all the same
}

BOOST_AUTO_TEST_CASE(same_trace_and_seed_give_the_same_results) {
  std::string csv = "job_id,submit_time_s,num_gpus,duration_s,user,gpu_type\n";
  for (int i = 0; i < 300; ++i) {
    csv += "j" + std::to_string(i) + "," + std::to_string(i * 7) + "," + std::to_string(1 << (i % 4)) + "," +
           std::to_string(50 + (i * 37) % 900) + ",u" + std::to_string(i % 5) + ",\n";
  }
  auto trace = parse(csv);
  auto a = run(trace, "4x8:V100", "fairshare+backfill", 2.0, true, 7);
  auto b = run(trace, "4x8:V100", "fairshare+backfill", 2.0, true, 7);
  BOOST_TEST(a.jct.avg == b.jct.avg);
  BOOST_TEST(a.jain_fairness == b.jain_fairness);
  for (size_t i = 0; i < a.outcomes.size(); ++i) BOOST_TEST(a.outcomes[i].start_s == b.outcomes[i].start_s);
  auto c = run(trace, "4x8:V100", "fairshare+backfill", 2.0, true, 8);
  bool differs = false;
  for (size_t i = 0; i < a.outcomes.size(); ++i) differs = differs || a.outcomes[i].start_s != c.outcomes[i].start_s;
  BOOST_TEST(differs);  // the seed draws the limits
}

BOOST_AUTO_TEST_CASE(a_stream_of_small_jobs_starves_a_big_one_only_without_reservations) {
  // Two 1-GPU jobs always overlap on a 4-GPU node; one job needs all 4.
  std::string csv = "job_id,submit_time_s,num_gpus,duration_s,user,gpu_type\n";
  csv += "big,5,4,100,bob,\n";
  for (int i = 0; i < 200; ++i) csv += "s" + std::to_string(i) + "," + std::to_string(i * 50) + ",1,100,alice,\n";
  auto trace = parse(csv);
  auto greedy = run(trace, "1x4:A100", "priority");
  auto easy = run(trace, "1x4:A100", "fairshare+backfill");
  // Without a reservation the big job waits for the stream to end.
  BOOST_TEST(outcome(greedy, "big").start_s >= 199 * 50);
  // With one, it starts when the two jobs running at its arrival end.
  BOOST_TEST(outcome(easy, "big").start_s == 100);
}

BOOST_AUTO_TEST_CASE(generated_traces_fairshare_backfill_beats_fifo_and_nothing_starves) {
  struct Case {
    const char* file;
    const char* nodes;
  };
  for (auto c : {Case{"dl_small_2k.csv", "16x8:V100"}, Case{"dl_hetero_3k.csv", "16x8:V100,8x8:A100"},
                 Case{"dl_bursty_2k.csv", "32x8:A100"}}) {
    BOOST_TEST_CONTEXT(c.file) {
      auto trace = read_trace(std::string(TY_TRACES_DIR) + "/" + c.file);
      BOOST_REQUIRE_MESSAGE(trace.ok(), trace.status().to_string());
      BOOST_TEST(trace->size() >= 2000u);
      auto fifo = run(*trace, c.nodes, "fifo");
      auto best = run(*trace, c.nodes, "fairshare+backfill");
      BOOST_TEST(fifo.finished == trace->size());
      BOOST_TEST(best.finished == trace->size());
      // Completion time: a large win.
      BOOST_TEST(best.jct.avg < 0.5 * fifo.jct.avg);
      // Utilisation: more GPUs busy while jobs wait, and over the makespan
      // never less (the trace's last long job often sets the makespan).
      BOOST_TEST(best.utilisation_queued > fifo.utilisation_queued);
      BOOST_TEST(best.utilisation >= fifo.utilisation - 1e-9);
      // No starvation: every job ran, none waited over twice the longest
      // wait of FIFO (which never lets a job be passed).
      BOOST_TEST(best.wait.max <= 2 * fifo.wait.max);
    }
  }
}

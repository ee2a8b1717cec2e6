// Unit tests of the agent's pure core: the metrics line format, the line
// splitter that follows a growing file, run records and rules, GPU names.
#define BOOST_TEST_MODULE agent_core
#include <boost/test/unit_test.hpp>

#include <map>

#include "core/gpu_name.h"
#include "core/line_splitter.h"
#include "core/metric_line.h"
#include "core/run.h"


namespace trainyard::fb {
// Lets Boost.Test print the enums it compares.
inline std::ostream& operator<<(std::ostream& os, RunOutcome o) { return os << EnumNameRunOutcome(o); }
inline std::ostream& operator<<(std::ostream& os, ErrorCode c) { return os << EnumNameErrorCode(c); }
}  // namespace trainyard::fb

using namespace trainyard;
using namespace trainyard::agent;

BOOST_AUTO_TEST_SUITE(metric_line)

BOOST_AUTO_TEST_CASE(a_line_with_step_and_values_gives_its_points_in_order) {
  auto m = parse_metric_line(R"({"step": 100, "loss": 0.31, "val_acc": 0.82})");
  BOOST_TEST(static_cast<int>(m.bad) == 0);
  BOOST_TEST(m.step == 100);
  BOOST_TEST(!m.has_time);
  BOOST_REQUIRE_EQUAL(m.values.size(), 2u);
  BOOST_TEST(m.values[0].first == "loss");
  BOOST_TEST(m.values[0].second == 0.31);
  BOOST_TEST(m.values[1].first == "val_acc");
  BOOST_TEST(m.values[1].second == 0.82);
}

BOOST_AUTO_TEST_CASE(time_is_taken_apart_from_the_values) {
  auto m = parse_metric_line(R"(  {"loss":1e-3,"time":12.5,"step":7,"lr":-2E2,"n":0}  )");
  BOOST_TEST(static_cast<int>(m.bad) == 0);
  BOOST_TEST(m.step == 7);
  BOOST_TEST(m.has_time);
  BOOST_TEST(m.time_s == 12.5);
  BOOST_REQUIRE_EQUAL(m.values.size(), 3u);
  BOOST_TEST(m.values[0].second == 0.001);
  BOOST_TEST(m.values[1].second == -200.0);
  BOOST_TEST(m.values[2].second == 0.0);
}

BOOST_AUTO_TEST_CASE(step_may_be_an_integral_float_but_not_a_fraction) {
  BOOST_TEST(parse_metric_line(R"({"step": 2.0, "x": 1})").step == 2);
  BOOST_TEST(static_cast<int>(parse_metric_line(R"({"step": 2.5, "x": 1})").bad) == static_cast<int>(BadLine::kNoStep));
  BOOST_TEST(static_cast<int>(parse_metric_line(R"({"x": 1})").bad) == static_cast<int>(BadLine::kNoStep));
  BOOST_TEST(static_cast<int>(parse_metric_line(R"({})").bad) == static_cast<int>(BadLine::kNoStep));
}

BOOST_AUTO_TEST_CASE(escaped_names_are_unescaped) {
  auto m = parse_metric_line(R"({"step": 1, "a\"b\u00e9\\": 2})");
  BOOST_REQUIRE_EQUAL(m.values.size(), 1u);
  BOOST_TEST(m.values[0].first == "a\"b\xc3\xa9\\");
}

BOOST_AUTO_TEST_CASE(each_kind_of_bad_line_is_named) {
  std::map<std::string, BadLine> cases = {
      {"loss=0.3 step=1", BadLine::kNotJson},
      {R"({"step": 1, "loss": 0.3)", BadLine::kNotJson},
      {R"({"step": 1, "loss": 0.3} trailing)", BadLine::kNotJson},
      {R"({"step": 1, "loss": .3})", BadLine::kNotJson},
      {R"({"step": 1, "loss": 01})", BadLine::kNotJson},
      {R"([1, 2])", BadLine::kNotJson},
      {R"({"step": 1, "note": "hello"})", BadLine::kNotNumber},
      {R"({"step": 1, "ok": true})", BadLine::kNotNumber},
      {R"({"step": 1, "x": null})", BadLine::kNotNumber},
      {R"({"step": 1, "v": [1, 2]})", BadLine::kNotNumber},
      {R"({"step": 1, "v": {"a": 1}})", BadLine::kNotNumber},
      {R"({"step": "5", "x": 1})", BadLine::kNotNumber},
      {R"({"step": 1, "loss": NaN})", BadLine::kNotFinite},
      {R"({"step": 1, "loss": Infinity})", BadLine::kNotFinite},
      {R"({"step": 1, "loss": -Infinity})", BadLine::kNotFinite},
      {R"({"step": 1, "loss": 1e999})", BadLine::kNotFinite},
  };
  for (auto& [line, kind] : cases) {
    BOOST_TEST_CONTEXT(line) { BOOST_TEST(static_cast<int>(parse_metric_line(line).bad) == static_cast<int>(kind)); }
  }
  BOOST_TEST(parse_metric_line(R"({"step": 1, "tiny": 1e-999})").values.at(0).second == 0.0);
}

BOOST_AUTO_TEST_CASE(blank_lines_are_ignored_quietly) {
  auto m = parse_metric_line("  \r");
  BOOST_TEST(static_cast<int>(m.bad) == 0);
  BOOST_TEST(m.values.empty());
}

BOOST_AUTO_TEST_CASE(a_line_over_one_mebibyte_is_too_long) {
  std::string big = R"({"step": 1, "x": ")" + std::string(kMaxMetricLineBytes, 'a') + "\"}";
  BOOST_TEST(static_cast<int>(parse_metric_line(big).bad) == static_cast<int>(BadLine::kTooLong));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(line_splitter)

struct Collect {
  std::vector<std::pair<std::string, uint64_t>> lines;
  std::vector<uint64_t> too_long;
  LineSplitter::OnLine on_line() {
    return [this](std::string_view l, uint64_t off) { lines.emplace_back(std::string(l), off); };
  }
  LineSplitter::OnTooLong on_too_long() {
    return [this](uint64_t off) { too_long.push_back(off); };
  }
};

BOOST_AUTO_TEST_CASE(lines_split_across_chunks_come_out_whole_with_their_offsets) {
  LineSplitter s(100);
  Collect c;
  s.feed("ab", c.on_line(), c.on_too_long());
  BOOST_TEST(c.lines.empty());
  BOOST_TEST(s.consumed() == 0u);
  BOOST_TEST(s.next_read() == 2u);
  s.feed("c\nde\nf", c.on_line(), c.on_too_long());
  BOOST_REQUIRE_EQUAL(c.lines.size(), 2u);
  BOOST_TEST(c.lines[0].first == "abc");
  BOOST_TEST(c.lines[0].second == 0u);
  BOOST_TEST(c.lines[1].first == "de");
  BOOST_TEST(c.lines[1].second == 4u);
  BOOST_TEST(s.consumed() == 7u);
  BOOST_TEST(s.next_read() == 8u);
  s.finish(c.on_line(), c.on_too_long());
  BOOST_REQUIRE_EQUAL(c.lines.size(), 3u);
  BOOST_TEST(c.lines[2].first == "f");
  BOOST_TEST(s.consumed() == 8u);
}

BOOST_AUTO_TEST_CASE(a_too_long_line_is_skipped_once_and_the_next_line_kept) {
  LineSplitter s(10);
  Collect c;
  s.feed("ok\n0123456", c.on_line(), c.on_too_long());
  s.feed("789abcdef", c.on_line(), c.on_too_long());
  BOOST_REQUIRE_EQUAL(c.too_long.size(), 1u);
  BOOST_TEST(c.too_long[0] == 3u);
  BOOST_TEST(s.skipping());
  s.feed("ghij\nnext\n", c.on_line(), c.on_too_long());
  BOOST_REQUIRE_EQUAL(c.lines.size(), 2u);
  BOOST_TEST(c.lines[1].first == "next");
  BOOST_TEST(!s.skipping());
  BOOST_TEST(s.consumed() == 3u + 21u + 5u);
}

BOOST_AUTO_TEST_CASE(a_restart_resumes_at_the_consumed_offset) {
  std::string file = "l1\nl2\nl3-partial";
  LineSplitter a(100);
  Collect ca;
  a.feed(file, ca.on_line(), ca.on_too_long());
  BOOST_TEST(ca.lines.size() == 2u);
  // A new splitter reads again from consumed(): the partial line is not lost or doubled.
  LineSplitter b(100, a.consumed(), a.skipping());
  Collect cb;
  b.feed(std::string_view(file).substr(b.next_read()), cb.on_line(), cb.on_too_long());
  b.feed("\n", cb.on_line(), cb.on_too_long());
  BOOST_REQUIRE_EQUAL(cb.lines.size(), 1u);
  BOOST_TEST(cb.lines[0].first == "l3-partial");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(runs)

BOOST_AUTO_TEST_CASE(a_run_record_survives_encoding) {
  RunRecord r;
  r.lease_id = 9;
  r.job_id = 42;
  r.attempt = 2;
  r.node = "n1";
  r.state = RunState::kStopping;
  r.stop_reason = StopReason::kTimeLimit;
  r.gpu_indices = {1, 3};
  r.start_ns = 123456789012345;
  r.bad_lines[2] = 5;
  r.metrics_offset = 77;
  r.metrics_skipping = true;
  auto back = decode_run(encode_run(r));
  BOOST_REQUIRE(back.has_value());
  BOOST_TEST(back->lease_id == 9u);
  BOOST_TEST(back->job_id == 42u);
  BOOST_TEST(back->attempt == 2u);
  BOOST_TEST(static_cast<int>(back->state) == static_cast<int>(RunState::kStopping));
  BOOST_TEST(static_cast<int>(back->stop_reason) == static_cast<int>(StopReason::kTimeLimit));
  BOOST_TEST(back->gpu_indices == r.gpu_indices);
  BOOST_TEST(back->start_ns == r.start_ns);
  BOOST_TEST(back->bad_lines[2] == 5u);
  BOOST_TEST(back->metrics_offset == 77u);
  BOOST_TEST(back->metrics_skipping);
  BOOST_TEST(!decode_run("not json").has_value());
}

BOOST_AUTO_TEST_CASE(the_outcome_follows_the_stop_reason_then_the_exit_status) {
  BOOST_TEST(decide_outcome(StopReason::kNone, 0, 0) == fb::RunOutcome::Succeeded);
  BOOST_TEST(decide_outcome(StopReason::kNone, 3, 0) == fb::RunOutcome::Failed);
  BOOST_TEST(decide_outcome(StopReason::kNone, -1, 9) == fb::RunOutcome::Failed);
  BOOST_TEST(decide_outcome(StopReason::kRevoked, 0, 0) == fb::RunOutcome::Cancelled);
  BOOST_TEST(decide_outcome(StopReason::kTimeLimit, -1, 15) == fb::RunOutcome::TimedOut);
  BOOST_TEST(decide_outcome(StopReason::kPreempted, -1, 15) == fb::RunOutcome::Preempted);
  BOOST_TEST(decide_outcome(StopReason::kLost, -1, 0) == fb::RunOutcome::Lost);
}

BOOST_AUTO_TEST_CASE(usage_ticks_tile_time_without_gaps_or_overlap) {
  int64_t start = 1'000'000'007, until = start, sum = 0;
  for (int64_t now : {start + 5, start + 5, start + 1'000'003, start + 2'500'000'000}) {
    if (auto t = next_usage_tick(until, now)) {
      BOOST_TEST(t->first == until);
      sum += t->second - t->first;
      until = t->second;
    }
  }
  BOOST_TEST(sum == 2'500'000'000);
  BOOST_TEST(!next_usage_tick(until, until - 1).has_value());
}

BOOST_AUTO_TEST_CASE(the_job_environment_cannot_widen_its_gpus) {
  JobEnvInput in;
  in.job_id = 42;
  in.attempt = 2;
  in.node = "n2";
  in.nodes = {"n1", "n2"};
  in.node_rank = 1;
  in.gpu_indices = {1, 3};
  in.metrics_file = "/r/metrics.jsonl";
  in.spec_env = {{"CUDA_VISIBLE_DEVICES", "0,1,2,3"}, {"FOO", "bar"}, {"TY_JOB_ID", "1"}};
  auto env = job_environment(in, {{"PATH", "/usr/bin"}, {"TY_ATTEMPT", "99"}, {"CUDA_VISIBLE_DEVICES", "0"}});
  std::map<std::string, std::string> m(env.begin(), env.end());
  BOOST_TEST(m["CUDA_VISIBLE_DEVICES"] == "1,3");
  BOOST_TEST(m["TY_JOB_ID"] == "42");
  BOOST_TEST(m["TY_ATTEMPT"] == "2");
  BOOST_TEST(!m.count("TY_ARRAY_INDEX"));
  BOOST_TEST(m["TY_NODE_RANK"] == "1");
  BOOST_TEST(m["TY_NUM_NODES"] == "2");
  BOOST_TEST(m["TY_NODES"] == "n1,n2");
  BOOST_TEST(m["MASTER_ADDR"] == "n1");
  BOOST_TEST(m["TY_METRICS_FILE"] == "/r/metrics.jsonl");
  BOOST_TEST(m["FOO"] == "bar");
  BOOST_TEST(m["PATH"] == "/usr/bin");
  BOOST_TEST(m["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID");
  in.array_index = 4;
  in.gpu_indices.clear();
  auto env2 = job_environment(in, {});
  std::map<std::string, std::string> m2(env2.begin(), env2.end());
  BOOST_TEST(m2["TY_ARRAY_INDEX"] == "4");
  BOOST_TEST(m2.count("CUDA_VISIBLE_DEVICES") == 1u);
  BOOST_TEST(m2["CUDA_VISIBLE_DEVICES"] == "");
}

BOOST_AUTO_TEST_CASE(log_paths_expand_every_sbatch_pattern) {
  LogPathFacts f;
  f.job_id = 42;
  f.array_job_id = 40;
  f.array_index = 7;
  f.job_name = "sweep";
  f.user = "ada";
  f.node = "n1";
  f.node_rank = 1;
  BOOST_TEST(expand_log_path("logs/%x_%A_%a.out", f, "/w") == "/w/logs/sweep_40_7.out");
  BOOST_TEST(expand_log_path("%j-%J-%s-%u-%N-%n-%t", f, "/w") == "/w/42-42.batch-batch-ada-n1-1-1");
  BOOST_TEST(expand_log_path("/abs/%3a/%5j%%x", f, "/w") == "/abs/007/00042%x");
  BOOST_TEST(expand_log_path("%q-%", f, "") == "%q-%");  // unknown ones stay as written
  // Not an array: %A is the job, %a Slurm's "no index" value.
  LogPathFacts plain;
  plain.job_id = 9;
  BOOST_TEST(expand_log_path("slurm-%A_%a.out", plain, "/w") == "/w/slurm-9_4294967294.out");
  BOOST_TEST(expand_log_path("slurm-%j.out", plain, "/w") == "/w/slurm-9.out");
}

BOOST_AUTO_TEST_CASE(host_lists_compress_as_slurm_writes_them) {
  BOOST_TEST(compress_hostlist({"node01", "node02", "node03"}) == "node[01-03]");
  BOOST_TEST(compress_hostlist({"node3", "node1", "node2", "node7"}) == "node[1-3,7]");
  BOOST_TEST(compress_hostlist({"gpu", "a1"}) == "a1,gpu");
  BOOST_TEST(compress_hostlist({"node09", "node10"}) == "node[09-10]");
  BOOST_TEST(compress_hostlist({"n-0"}) == "n-0");
}

BOOST_AUTO_TEST_CASE(array_summaries_give_count_min_max_and_step) {
  auto a = summarize_array("0-15:4%2");
  BOOST_REQUIRE(a.has_value());
  BOOST_TEST(a->count == 4u);
  BOOST_TEST(a->min == 0);
  BOOST_TEST(a->max == 12);
  BOOST_TEST(a->step == 4);
  auto b = summarize_array("1,3,4");
  BOOST_REQUIRE(b.has_value());
  BOOST_TEST(b->count == 3u);
  BOOST_TEST(b->step == 1);  // irregular
  BOOST_TEST(!summarize_array("x").has_value());
}

BOOST_AUTO_TEST_CASE(slurm_jobs_read_their_allocation_from_slurm_variables) {
  JobEnvInput in;
  in.job_id = 43;
  in.attempt = 2;
  in.node = "node02";
  in.nodes = {"node01", "node02"};
  in.node_rank = 1;
  in.gpu_indices = {0, 1};
  SlurmFacts& f = in.slurm;
  f.job_id = 43;
  f.job_name = "sweep";
  f.array_job_id = 40;
  f.array_index = 2;
  f.array_expression = "0-4:2";
  f.nodes = in.nodes;
  f.node = in.node;
  f.node_rank = 1;
  f.ntasks_per_node = 2;
  f.cpus_per_task = 3;
  f.cpus_on_node = 6;
  f.gpus_on_node = 2;
  f.gpu_list = "0,1";
  f.memory_mb = 4096;
  f.submit_dir = "/home/ada/proj";
  f.submit_host = "login1";
  f.partition = "gpu";
  f.account = "ml";
  f.user = "ada";
  f.attempt = 2;
  f.tmpdir = "/runs/43/tmp";
  auto env = job_environment(in, {{"SLURM_JOB_ID", "1"}, {"SLURM_NTASKS", "99"}});
  std::map<std::string, std::string> m(env.begin(), env.end());
  const std::map<std::string, std::string> want = {
      {"SLURM_JOB_ID", "43"}, {"SLURM_JOB_NAME", "sweep"}, {"SLURM_ARRAY_JOB_ID", "40"},
      {"SLURM_ARRAY_TASK_ID", "2"}, {"SLURM_ARRAY_TASK_COUNT", "3"}, {"SLURM_ARRAY_TASK_MIN", "0"},
      {"SLURM_ARRAY_TASK_MAX", "4"}, {"SLURM_ARRAY_TASK_STEP", "2"}, {"SLURM_JOB_NODELIST", "node[01-02]"},
      {"SLURM_JOB_NUM_NODES", "2"}, {"SLURM_NNODES", "2"}, {"SLURM_NTASKS", "4"}, {"SLURM_NTASKS_PER_NODE", "2"},
      {"SLURM_CPUS_PER_TASK", "3"}, {"SLURM_CPUS_ON_NODE", "6"}, {"SLURM_GPUS_ON_NODE", "2"},
      {"SLURM_MEM_PER_NODE", "4096"}, {"SLURM_SUBMIT_DIR", "/home/ada/proj"}, {"SLURM_SUBMIT_HOST", "login1"},
      {"SLURM_JOB_PARTITION", "gpu"}, {"SLURM_JOB_ACCOUNT", "ml"}, {"SLURM_JOB_USER", "ada"},
      {"SLURM_NODEID", "1"}, {"SLURM_PROCID", "1"}, {"SLURM_LOCALID", "0"}, {"SLURM_RESTART_COUNT", "1"},
      {"SLURM_TMPDIR", "/runs/43/tmp"}, {"TY_ARRAY_JOB_ID", "40"}, {"TY_ARRAY_INDEX", "2"},
      {"TY_NTASKS", "4"}, {"TY_SUBMIT_DIR", "/home/ada/proj"}, {"TY_RESTART_COUNT", "1"}, {"TY_TMPDIR", "/runs/43/tmp"},
      {"TY_JOB_ID", "43"}, {"CUDA_VISIBLE_DEVICES", "0,1"}};
  for (auto& [k, v] : want) BOOST_TEST(m[k] == v, k << " = '" << m[k] << "', want '" << v << "'");
  // Not an array: no array variables at all (as Slurm), and no --cpus-per-task asked: none.
  in.slurm = SlurmFacts{};
  in.slurm.job_id = 43;
  in.slurm.node = "n1";
  auto env2 = job_environment(in, {});
  std::map<std::string, std::string> m2(env2.begin(), env2.end());
  BOOST_TEST(!m2.count("SLURM_ARRAY_TASK_ID"));
  BOOST_TEST(!m2.count("SLURM_ARRAY_JOB_ID"));
  BOOST_TEST(!m2.count("SLURM_CPUS_PER_TASK"));
  BOOST_TEST(m2["SLURM_NTASKS"] == "1");
  BOOST_TEST(m2["SLURM_JOB_NODELIST"] == "n1");
  BOOST_TEST(m2["SLURM_RESTART_COUNT"] == "0");
}

BOOST_AUTO_TEST_CASE(time_arithmetic_saturates_instead_of_overflowing) {
  BOOST_TEST(seconds_to_ns(0) == 0);
  BOOST_TEST(seconds_to_ns(3) == 3'000'000'000);
  BOOST_TEST(seconds_to_ns(300000000000ull) == INT64_MAX);  // `--time 300000000000`
  BOOST_TEST(seconds_to_ns(UINT64_MAX) == INT64_MAX);
  BOOST_TEST(seconds_to_ns(9223372036ull) == 9223372036'000'000'000);
  BOOST_TEST(add_ns(1'700'000'000'000'000'000, seconds_to_ns(UINT64_MAX)) == INT64_MAX);
  BOOST_TEST(add_ns(5, -7) == -2);
  BOOST_TEST(add_ns(INT64_MIN, -1) == INT64_MIN);
}

BOOST_AUTO_TEST_CASE(memory_max_never_wraps_to_a_tiny_limit) {
  BOOST_TEST(cgroup_memory_max(2048) == "2147483648");
  BOOST_TEST(cgroup_memory_max(UINT64_MAX >> 20) == std::to_string((UINT64_MAX >> 20) << 20));
  BOOST_TEST(cgroup_memory_max((UINT64_MAX >> 20) + 1) == "max");  // memory_mb * 2^20 would wrap to 0
  BOOST_TEST(cgroup_memory_max(UINT64_MAX) == "max");
}

BOOST_AUTO_TEST_CASE(grace_is_capped_by_the_agents_maximum) {
  BOOST_TEST(capped_grace_s(4294967295u, 300) == 300u);
  BOOST_TEST(capped_grace_s(UINT64_MAX, 300) == 300u);
  BOOST_TEST(capped_grace_s(30, 300) == 30u);
  BOOST_TEST(capped_grace_s(30, 0) == 0u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_CASE(gpu_names_become_short_types) {
  BOOST_TEST(gpu_type_from_name("NVIDIA A100-SXM4-80GB") == "A100");
  BOOST_TEST(gpu_type_from_name("NVIDIA H100 80GB HBM3") == "H100");
  BOOST_TEST(gpu_type_from_name("Tesla V100-SXM2-16GB") == "V100");
  BOOST_TEST(gpu_type_from_name("NVIDIA GeForce RTX 4090") == "RTX4090");
  BOOST_TEST(gpu_type_from_name("NVIDIA RTX A6000") == "A6000");
  BOOST_TEST(gpu_type_from_name("NVIDIA L40S") == "L40S");
}

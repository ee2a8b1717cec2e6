// Unit tests of the gateway's pure core: what the REST API answers for good
// and bad input, how runs are ranked, and that /metrics is valid Prometheus
// text whatever the services report.
#define BOOST_TEST_MODULE gateway_core
#include <boost/test/unit_test.hpp>

#include <cmath>

#include "core/address_list.h"
#include "core/api_error.h"
#include "core/cluster.h"
#include "core/codec.h"
#include "core/job_spec_json.h"
#include "core/job_table.h"
#include "core/prometheus.h"
#include "text/utf8.h"
#include "prom_check.h"
#include "trainyard/fb/rpc_generated.h"
#include "trainyard/job_spec.h"

using namespace trainyard;
using namespace trainyard::gateway;
using nlohmann::json;

namespace {

std::optional<ApiError> parse(const json& j, fb::JobSpecT* spec, const std::string& user = "ana", bool admin = false) {
  return parse_job_spec(j, user, admin, spec);
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_valid_spec_is_read_field_by_field_and_defaults_the_user) {
  fb::JobSpecT s;
  auto e = parse(json::parse(R"({"name":"sweep","command":["python3","train.py"],"gpus":2,"gpu_type":"A100",
      "account":"vision","experiment":"lr","array":"0-3","labels":{"lr":0.1,"opt":"sgd"},"env":{"A":"1"},
      "time_limit_s":600,"dependencies":[{"kind":"afterany","job_id":7}]})"),
                 &s);
  BOOST_REQUIRE(!e);
  BOOST_TEST(s.user == "ana");
  BOOST_TEST(s.gpus_per_node == 2u);
  BOOST_TEST(s.command.size() == 2u);
  BOOST_TEST(s.labels.size() == 2u);
  BOOST_TEST(s.labels[0]->key == "lr");
  BOOST_TEST(s.labels[0]->value == "0.1");
  BOOST_TEST(s.dependencies.at(0)->job_id == 7u);
  BOOST_TEST(static_cast<int>(s.dependencies.at(0)->kind) == static_cast<int>(fb::DependencyKind::AfterAny));
  BOOST_TEST(s.nodes == 1u);  // the schema default stays
}

BOOST_AUTO_TEST_CASE(bad_specs_are_400s_that_name_the_field) {
  struct Case {
    const char* body;
    const char* field;
  } cases[] = {
      {R"({"command":["x"],"gpu":1})", "gpu"},
      {R"({"command":""})", "command"},
      {R"({"command":[]})", "command"},
      {R"({"name":"x"})", "command"},
      {R"({"command":["x"],"gpus":-1})", "gpus"},
      {R"({"command":["x"],"gpus":"two"})", "gpus"},
      {R"({"command":["x"],"labels":["a"]})", "labels"},
      {R"({"command":["x"],"dependencies":[{"kind":"after","job_id":1}]})", "dependencies"},
      {R"({"command":["x"],"preemptible":"yes"})", "preemptible"},
      {R"({"command":["x"],"gpus":1,"gpus_per_node":1})", "gpus"},
      {R"({"command":["x"],"grace_s":99999999999})", "grace_s"},
  };
  for (const auto& c : cases) {
    fb::JobSpecT s;
    auto e = parse(json::parse(c.body), &s);
    BOOST_REQUIRE_MESSAGE(e, c.body);
    BOOST_TEST(e->http == 400, c.body);
    BOOST_TEST(e->field == c.field, c.body << " -> " << e->field);
    BOOST_TEST(e->body()["error"].get<std::string>().find(c.field) != std::string::npos, e->message);
  }
  fb::JobSpecT s;
  auto e = parse(json::parse("[1]"), &s);
  BOOST_REQUIRE(e);
  BOOST_TEST(e->http == 400);
}

BOOST_AUTO_TEST_CASE(a_command_string_runs_in_bash_as_in_a_spec_file) {
  fb::JobSpecT s;
  BOOST_REQUIRE(!parse(json::parse(R"({"command":"python3 train.py --lr 0.1"})"), &s));
  BOOST_TEST(s.command == (std::vector<std::string>{"bash", "-c", "python3 train.py --lr 0.1"}));
}

// One parser: every spec gets the same verdict whether it is POSTed to the
// gateway or given to `ty submit --file spec.json` (client::parse_spec_file).
BOOST_AUTO_TEST_CASE(the_gateway_and_ty_submit_file_give_every_spec_the_same_verdict) {
  struct Case {
    const char* spec;
    bool ok;
  } cases[] = {
      // Once accepted by one parser and refused by the other.
      {R"({"command":"echo hi"})", true},
      {R"({"command":["x"],"gpus":2})", true},
      {R"({"command":["x"],"time_limit":"1-00:00:00"})", true},
      {R"({"command":["x"],"memory":"16G"})", true},
      {R"({"command":["x"],"name":null})", true},
      {R"({"command":["x"],"dependencies":["afterok:12"]})", true},
      {R"({"command":["x"],"dependencies":[{"job_id":12}]})", true},
      {R"({"command":["x"],"dependencies":[{"kind":"AfterAny","job_id":12}]})", true},
      {R"({"command":["x"],"priority":18446744073709551615})", false},
      {R"({"command":["x"],"priority":2000000})", false},
      {R"({"command":["x"],"array":"0-x"})", false},
      {R"({"command":["x"],"sim_duration_s":-1})", false},
      // Agreed before, and still.
      {R"({"command":["python3","train.py"],"gpus_per_node":1,"labels":{"lr":0.1},"env":{"A":"1"}})", true},
      {R"({"command":["x"],"array":"0-9%2","nodes":2,"preemptible":false,"priority":-3})", true},
      {R"({"command":["x"],"gpu":1})", false},
      {R"({"command":["x"],"gpus":1,"gpus_per_node":1})", false},
      {R"({"command":["x"],"cpus":1.5})", false},
      {R"({"command":["x"],"cpus":-1})", false},
      {R"({"command":["x"],"nodes":4294967296})", false},
      {R"({"command":["x",5]})", false},
      {R"({"command":""})", false},
      {R"({"command":["x"],"env":{"A":[1]}})", false},
      {R"({"command":["x"],"labels":["a"]})", false},
      {R"({"command":["x"],"dependencies":[{"kind":"after","job_id":1}]})", false},
      {R"({"command":["x"],"dependencies":[{"job_id":"1"}]})", false},
      {R"({"command":["x"],"dependencies":[7]})", false},
      {R"({"command":["x"],"dependencies":[{"job_id":1,"after":"x"}]})", false},
      {R"({"command":["x"],"preemptible":"yes"})", false},
      {R"({"command":["x"],"time_limit":"soon"})", false},
  };
  for (const auto& c : cases) {
    fb::JobSpecT via_gateway;
    auto e = parse(json::parse(c.spec), &via_gateway);
    auto via_file = client::parse_spec_file(c.spec, "spec.json");
    BOOST_TEST(!e.has_value() == c.ok, c.spec << " gateway: " << (e ? e->message : "accepted"));
    BOOST_TEST(via_file.ok() == c.ok, c.spec << " file: " << via_file.status().message());
    if (e && !via_file.ok()) {
      // The same words, and the gateway names the field the message names.
      BOOST_TEST(via_file.status().message().find(e->message) != std::string::npos,
                 e->message << " / " << via_file.status().message());
      BOOST_TEST(e->message.find("'" + e->field) != std::string::npos, e->field << ": " << e->message);
    }
    if (!e && via_file.ok()) {
      via_file->user = via_gateway.user;  // the gateway's principal rule, on top
      BOOST_TEST(records::spec_json(via_gateway) == records::spec_json(*via_file), c.spec);
    }
  }
}

BOOST_AUTO_TEST_CASE(submitting_as_someone_else_is_forbidden_unless_admin) {
  fb::JobSpecT s;
  auto e = parse(json::parse(R"({"command":["x"],"user":"bob"})"), &s);
  BOOST_REQUIRE(e);
  BOOST_TEST(e->http == 403);
  BOOST_TEST(e->field == "user");
  fb::JobSpecT t;
  BOOST_TEST(!parse(json::parse(R"({"command":["x"],"user":"bob"})"), &t, "root", true));
  BOOST_TEST(t.user == "bob");
}

BOOST_AUTO_TEST_CASE(service_errors_map_to_http_and_unavailable_names_the_service) {
  auto e = from_status(Status::unavailable("scheduler at tcp://x did not answer"), "scheduler");
  BOOST_TEST(e.http == 503);
  BOOST_TEST(e.body()["service"] == "scheduler");
  BOOST_TEST(e.body()["error"].get<std::string>().find("scheduler is unavailable") == 0u);
  BOOST_TEST(from_status(Status::not_found("job 9"), "scheduler").http == 404);
  BOOST_TEST(from_status(Status::invalid("gpus"), "scheduler").http == 400);
  BOOST_TEST(from_status(Status::failed_precondition("done"), "scheduler").http == 409);
  BOOST_TEST(from_status(Status::exhausted("budget"), "scheduler").http == 429);
  BOOST_TEST(bad_request("state", "x").body()["field"] == "state");
  BOOST_TEST(ApiError{}.body()["field"].is_null());
}

BOOST_AUTO_TEST_CASE(comparisons_rank_best_first_for_the_goal_and_put_empty_runs_last) {
  auto build = [](bool maximize) {
    flatbuffers::FlatBufferBuilder b;
    std::vector<flatbuffers::Offset<fb::ComparisonRow>> rows;
    auto row = [&](uint64_t id, double best) {
      rows.push_back(fb::CreateComparisonRowDirect(b, id, "run", best, 10, best, 5));
    };
    row(1, 0.5);
    row(2, NAN);
    row(3, 0.2);
    row(4, 0.9);
    auto c = fb::CreateComparisonDirect(b, "loss", &rows);
    b.Finish(c);
    auto* cmp = flatbuffers::GetRoot<fb::Comparison>(b.GetBufferPointer());
    return to_json(*cmp, maximize);
  };
  auto min = build(false);
  BOOST_TEST(min["best_job_id"] == 3);
  std::vector<uint64_t> order;
  for (auto& r : min["rows"]) order.push_back(r["job_id"]);
  BOOST_TEST(order == (std::vector<uint64_t>{3, 1, 4, 2}), boost::test_tools::per_element());
  BOOST_TEST(min["rows"][0]["rank"] == 1);
  BOOST_TEST(min["rows"][3]["best_value"].is_null());
  auto max = build(true);
  BOOST_TEST(max["best_job_id"] == 4);
  BOOST_TEST(max["rows"][0]["job_id"] == 4);
}

BOOST_AUTO_TEST_CASE(node_stats_split_gpus_into_allocated_idle_and_unavailable_per_type) {
  flatbuffers::FlatBufferBuilder b;
  auto node = [&](const char* name, const char* type, int gpus, std::vector<uint32_t> allocated, bool up, bool drained) {
    std::vector<flatbuffers::Offset<fb::GpuInfo>> g;
    for (int i = 0; i < gpus; ++i) g.push_back(fb::CreateGpuInfoDirect(b, i, type, 80000));
    auto info = fb::CreateNodeInfoDirect(b, name, &g);
    return fb::CreateNodeStatusDirect(b, info, up, drained, "", &allocated);
  };
  std::vector<flatbuffers::Offset<fb::NodeStatus>> nodes{node("a", "A100", 4, {0, 2}, true, false),
                                                         node("b", "A100", 2, {}, false, false),
                                                         node("c", "H100", 8, {1}, true, true),
                                                         node("d", "", 1, {}, true, false)};
  b.Finish(fb::CreateNodeListDirect(b, &nodes));
  auto s = node_stats(*flatbuffers::GetRoot<fb::NodeList>(b.GetBufferPointer()));
  BOOST_TEST(s.up == 2u);
  BOOST_TEST(s.down == 1u);
  BOOST_TEST(s.drained == 1u);
  BOOST_TEST(s.gpus["A100"].total == 6u);
  BOOST_TEST(s.gpus["A100"].allocated == 2u);
  BOOST_TEST(s.gpus["A100"].idle == 2u);
  BOOST_TEST(s.gpus["A100"].unavailable == 2u);
  BOOST_TEST(s.gpus["H100"].allocated == 1u);
  BOOST_TEST(s.gpus["H100"].idle == 0u);
  BOOST_TEST(s.gpus["unknown"].idle == 1u);
  auto j = cluster_summary(s, JobStats{});
  BOOST_TEST(j["gpus"]["total"] == 15);
  BOOST_TEST(j["gpus"]["by_type"]["H100"]["unavailable"] == 7);
}

BOOST_AUTO_TEST_CASE(metrics_text_is_strict_prometheus_with_awkward_names_and_values) {
  MetricsInput in;
  in.service_up = {{"scheduler", true}, {"billing", false}};
  NodeStats n;
  n.up = 2;
  n.gpus["A100"] = {4, 1, 3, 0};
  n.gpus["weird \"type\"\\x\n"] = {1, 0, 1, 0};
  in.nodes = n;
  JobStats j;
  j.by_state_partition[{"Running", "gpu"}] = 2;
  j.by_state_partition[{"Pending", "default"}] = 5;
  j.queue_waits_s = {0.5, 3, 3, 70, 1e6};
  in.jobs = j;
  in.spend = std::vector<AccountSpend>{{"vision", "EUR", 12'500'000, 3'600'000}};
  in.ops = {{"scheduler", "main", {{"cycle_ms", 4.0}, {"lag_s", 0.1}}},
            {"metrics-aggregator", "m", {{"points_total", 1e6}, {"sys/odd name", NAN}}}};
  auto text = render_metrics(in);
  std::string err;
  auto p = testing::parse_prometheus(text, &err);
  BOOST_REQUIRE_MESSAGE(p, err << "\n" << text);
  BOOST_TEST(*p->value("trainyard_service_up", {{"service", "billing"}}) == 0);
  BOOST_TEST(*p->value("trainyard_gpus", {{"gpu_type", "A100"}}) == 4);
  BOOST_TEST(*p->value("trainyard_gpus_idle", {{"gpu_type", "weird \"type\"\\x\n"}}) == 1);
  BOOST_TEST(*p->value("trainyard_jobs", {{"state", "Pending"}, {"partition", "default"}}) == 5);
  BOOST_TEST(*p->value("trainyard_queue_wait_seconds_bucket", {{"le", "5"}}) == 3);
  BOOST_TEST(*p->value("trainyard_queue_wait_seconds_bucket", {{"le", "+Inf"}}) == 5);
  BOOST_TEST(*p->value("trainyard_queue_wait_seconds_count") == 5);
  BOOST_TEST(*p->value("trainyard_account_spend_micros_total", {{"account", "vision"}}) == 12'500'000);
  BOOST_TEST(*p->value("trainyard_scheduler_cycle_seconds", {{"stat", "cycle_ms"}}) == 0.004);
  BOOST_TEST(*p->value("trainyard_bus_lag", {{"subscriber", "scheduler"}}) == 0.1);
  BOOST_TEST(*p->value("trainyard_metric_points_ingested", {{"name", "points_total"}}) == 1e6);
  BOOST_TEST(p->types.at("trainyard_queue_wait_seconds") == "histogram");
}

BOOST_AUTO_TEST_CASE(the_strict_parser_rejects_what_prometheus_would) {
  std::string err;
  BOOST_TEST(!testing::parse_prometheus("a 1", &err));  // no final newline
  BOOST_TEST(!testing::parse_prometheus("a{x=\"1\"} 1\nb 2\na{x=\"2\"} 3\n", &err));  // split family
  BOOST_TEST(!testing::parse_prometheus("a{x=\"\\q\"} 1\n", &err));
  BOOST_TEST(!testing::parse_prometheus("a 1\na 2\n", &err));
  BOOST_TEST(!testing::parse_prometheus("a 1\n# TYPE a gauge\n", &err));
  BOOST_TEST(!testing::parse_prometheus("1a 1\n", &err));
  BOOST_TEST(!testing::parse_prometheus("a one\n", &err));
  BOOST_TEST(!testing::parse_prometheus("# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n", &err));
  BOOST_TEST(testing::parse_prometheus("# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n", &err)
                 .has_value(),
             err);
}

namespace {

constexpr int64_t kSec = 1'000'000'000;

// A job record as the scheduler answers it.
std::unique_ptr<fb::JobRecordT> record(uint64_t id, fb::JobState state, std::string partition, std::string experiment,
                                       int64_t submit, int64_t start, int64_t last_change) {
  auto r = std::make_unique<fb::JobRecordT>();
  r->job_id = id;
  r->state = state;
  r->spec = std::make_unique<fb::JobSpecT>();
  r->spec->partition = std::move(partition);
  r->spec->experiment = std::move(experiment);
  r->spec->user = "ana";
  r->submit_time_ns = submit;
  r->start_time_ns = start;
  auto t = std::make_unique<fb::JobTransitionT>();
  t->to = state;
  t->time_ns = last_change;
  r->history.push_back(std::move(t));
  return r;
}

struct Buffer {
  flatbuffers::FlatBufferBuilder b;
  template <typename T>
  const T& root() {
    return *flatbuffers::GetRoot<T>(b.GetBufferPointer());
  }
};

void expect_same(const JobStats& a, const JobStats& b) {
  BOOST_TEST(a.total == b.total);
  BOOST_TEST((a.by_state == b.by_state));
  BOOST_TEST((a.by_state_partition == b.by_state_partition));
  auto wa = a.queue_waits_s, wb = b.queue_waits_s;
  std::sort(wa.begin(), wa.end());
  std::sort(wb.begin(), wb.end());
  BOOST_TEST((wa == wb));
}

}  // namespace

BOOST_AUTO_TEST_CASE(the_job_table_seeded_from_a_list_gives_the_same_summaries_as_the_list) {
  fb::JobListT list;
  list.jobs.push_back(record(1, fb::JobState::Succeeded, "gpu", "moons", 10 * kSec, 14 * kSec, 20 * kSec));
  list.jobs.push_back(record(2, fb::JobState::Running, "", "moons", 11 * kSec, 19 * kSec, 19 * kSec));
  list.jobs.push_back(record(3, fb::JobState::Pending, "", "", 12 * kSec, 0, 12 * kSec));
  Buffer buf;
  buf.b.Finish(fb::JobList::Pack(buf.b, &list));
  const auto& l = buf.root<fb::JobList>();
  JobTable t;
  t.seed(l);
  expect_same(t.stats(), job_stats(l));
  auto exps = t.experiments();
  BOOST_REQUIRE(exps.size() == 1u);
  BOOST_TEST(exps[0]["name"] == "moons");
  BOOST_TEST(exps[0]["jobs"] == 2);
  BOOST_TEST(exps[0]["active"] == 1);
  BOOST_TEST(exps[0]["succeeded"] == 1);
  BOOST_TEST(exps[0]["last_submit_ms"] == 11'000);
}

BOOST_AUTO_TEST_CASE(job_events_keep_the_table_equal_to_what_the_scheduler_would_list) {
  JobTable t;
  Buffer empty;
  empty.b.Finish(fb::CreateJobList(empty.b));
  t.seed(empty.root<fb::JobList>());
  // job.submitted then job.state to Running: counted at once, with the
  // event's time standing in for the start until the record is read.
  {
    Buffer e;
    fb::JobSpecT spec;
    spec.partition = "gpu";
    spec.experiment = "sweep";
    e.b.Finish(fb::CreateJobSubmitted(e.b, 4, fb::JobSpec::Pack(e.b, &spec), 0, -1, 100 * kSec));
    t.submitted(e.root<fb::JobSubmitted>(), 100 * kSec);
  }
  BOOST_TEST(t.stats().by_state.at("pending") == 1u);
  {
    Buffer e;
    e.b.Finish(fb::CreateJobStateChanged(e.b, 4, fb::JobState::Pending, fb::JobState::Running));
    BOOST_TEST(t.state_changed(e.root<fb::JobStateChanged>(), 105 * kSec));
  }
  BOOST_TEST(t.stats().by_state.at("running") == 1u);
  BOOST_TEST((t.inexact_starts(10) == std::vector<uint64_t>{4}));
  t.set_start(4, 104 * kSec);
  BOOST_TEST(t.inexact_starts(10).empty());
  BOOST_REQUIRE(t.stats().queue_waits_s.size() == 1u);
  BOOST_TEST(t.stats().queue_waits_s[0] == 4.0);
  // A requeue clears the start, as the scheduler does.
  {
    Buffer e;
    e.b.Finish(fb::CreateJobStateChanged(e.b, 4, fb::JobState::Running, fb::JobState::Pending));
    t.state_changed(e.root<fb::JobStateChanged>(), 106 * kSec);
  }
  BOOST_TEST(t.stats().queue_waits_s.empty());
  // A job the table never heard of: it needs a new seed.
  {
    Buffer e;
    e.b.Finish(fb::CreateJobStateChanged(e.b, 99, fb::JobState::Pending, fb::JobState::Running));
    BOOST_TEST(!t.state_changed(e.root<fb::JobStateChanged>(), 107 * kSec));
  }
  // A list asked for before the newest event does not undo it; a job that
  // neither the list nor a recent event has is gone.
  uint64_t since = t.begin_seed();
  {
    Buffer e;
    e.b.Finish(fb::CreateJobStateChanged(e.b, 4, fb::JobState::Pending, fb::JobState::Held));
    t.state_changed(e.root<fb::JobStateChanged>(), 108 * kSec);
  }
  fb::JobListT older;
  older.jobs.push_back(record(4, fb::JobState::Running, "gpu", "sweep", 100 * kSec, 104 * kSec, 105 * kSec));
  older.jobs.push_back(record(5, fb::JobState::Failed, "", "", 90 * kSec, 91 * kSec, 95 * kSec));
  Buffer buf;
  buf.b.Finish(fb::JobList::Pack(buf.b, &older));
  t.seed(buf.root<fb::JobList>(), since);
  BOOST_TEST((t.find(4)->state == fb::JobState::Held));
  BOOST_TEST((t.find(5)->state == fb::JobState::Failed));
  BOOST_TEST(t.stats().total == 2u);
  // Without events in between, the list is the truth.
  t.seed(buf.root<fb::JobList>(), t.begin_seed());
  BOOST_TEST((t.find(4)->state == fb::JobState::Running));
}

BOOST_AUTO_TEST_CASE(a_dependency_kind_that_is_not_a_string_is_a_400_not_a_throw) {
  fb::JobSpecT s;
  auto e = parse_job_spec(nlohmann::json::parse(R"({"command":["x"],"dependencies":[{"job_id":1,"kind":5}]})"), "ana",
                          false, &s);
  BOOST_REQUIRE(e.has_value());
  BOOST_TEST(e->http == 400);
  BOOST_TEST(e->field == "dependencies");
  BOOST_TEST(e->message.find("[0]") != std::string::npos, e->message);
}

BOOST_AUTO_TEST_CASE(text_that_is_not_utf8_becomes_utf8_with_replacement_characters) {
  const std::string r = "\xEF\xBF\xBD";
  BOOST_TEST(trainyard::text::replace_invalid_utf8("loss") == "loss");
  BOOST_TEST(trainyard::text::replace_invalid_utf8("\xC3\xA9t\xC3\xA9") == "\xC3\xA9t\xC3\xA9");           // été, valid
  BOOST_TEST(trainyard::text::replace_invalid_utf8("\xE9t\xE9") == r + "t" + r);                            // Latin-1
  BOOST_TEST(trainyard::text::replace_invalid_utf8("loss\xED\xA0\x80") == "loss" + r + r + r);              // a lone surrogate
  BOOST_TEST(trainyard::text::replace_invalid_utf8("\xC0\xAF") == r + r);                                   // overlong '/'
  BOOST_TEST(trainyard::text::replace_invalid_utf8("\xF4\x90\x80\x80") == r + r + r + r);                   // past U+10FFFF
  BOOST_TEST(trainyard::text::replace_invalid_utf8("\xF0\x9F\x98\x80") == "\xF0\x9F\x98\x80");              // an emoji
  BOOST_TEST(trainyard::text::replace_invalid_utf8("\xE2\x82") == r + r);                                   // cut short
  // Label values in /metrics are replaced too.
  MetricsInput in;
  in.ops.push_back(OpsReport{"scheduler", "s\xFF", {{"lag\xED\xA0\x80", 1.0}}});
  auto text = render_metrics(in);
  BOOST_TEST(text.find("\xFF") == std::string::npos);
  BOOST_TEST(text.find(r) != std::string::npos, text);
}

BOOST_AUTO_TEST_CASE(env_values_with_secret_names_are_redacted_in_job_json) {
  fb::JobSpecT spec;
  for (auto [k, v] : {std::pair{"LR", "0.1"}, {"WANDB_API_KEY", "abc"}, {"HF_TOKEN", "hf_x"}, {"db_password", "pw"}}) {
    auto kv = std::make_unique<fb::KeyValueT>();
    kv->key = k;
    kv->value = v;
    spec.env.push_back(std::move(kv));
  }
  flatbuffers::FlatBufferBuilder b;
  b.Finish(fb::JobSpec::Pack(b, &spec));
  auto j = spec_json(flatbuffers::GetRoot<fb::JobSpec>(b.GetBufferPointer()));
  BOOST_TEST(j["env"]["LR"] == "0.1");
  BOOST_TEST(j["env"]["WANDB_API_KEY"] == "<redacted>");
  BOOST_TEST(j["env"]["HF_TOKEN"] == "<redacted>");
  BOOST_TEST(j["env"]["db_password"] == "<redacted>");
  // The object-API form ty prints is the same JSON.
  BOOST_TEST(records::spec_json(spec) == j);
}

BOOST_AUTO_TEST_CASE(address_lists_match_ipv4_and_ipv6_ranges_and_name_a_bad_entry) {
  using trainyard::gateway::AddressList;
  auto l = AddressList::parse({"10.0.0.0/8", "192.168.1.7", "fd00::/8", "::1"}, "gateway.trusted_proxies");
  BOOST_REQUIRE(l.ok());
  BOOST_TEST(l->contains("10.200.3.4"));
  BOOST_TEST(l->contains("::ffff:10.0.0.1"));  // a v4 client on a v6 socket
  BOOST_TEST(l->contains("192.168.1.7"));
  BOOST_TEST(!l->contains("192.168.1.8"));
  BOOST_TEST(!l->contains("11.0.0.1"));
  BOOST_TEST(l->contains("fd12::5"));
  BOOST_TEST(l->contains("::1"));
  BOOST_TEST(!l->contains("fe80::1"));
  BOOST_TEST(!l->contains("not an address"));
  auto slash = AddressList::parse({"127.0.0.0/25"}, "k");
  BOOST_TEST(slash->contains("127.0.0.127"));
  BOOST_TEST(!slash->contains("127.0.0.128"));
  BOOST_TEST(AddressList::parse({"0.0.0.0/0"}, "k")->contains("8.8.8.8"));
  BOOST_TEST(AddressList().empty());
  for (const char* bad : {"10.0.0.0/33", "example.org", "10.0.0.0/", "10.0.0.0/x", "::1/129"}) {
    auto r = AddressList::parse({bad}, "gateway.metrics_allow");
    BOOST_TEST(!r.ok(), bad);
    BOOST_TEST(r.status().message().find("gateway.metrics_allow") != std::string::npos, r.status().message());
    BOOST_TEST(r.status().message().find(bad) != std::string::npos, r.status().message());
  }
}

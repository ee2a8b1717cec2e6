// Metrics and money end to end: real training processes report metrics
// through TY_METRICS_FILE to their agent, the metrics-aggregator stores and
// compares them; the agent's usage ticks reach billing, which charges them
// and enforces budgets that the scheduler obeys.
#define BOOST_TEST_MODULE metrics_billing_e2e
#include <boost/test/unit_test.hpp>

#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <fstream>
#include <thread>

#include "cluster.h"
#include "cluster_client.h"
#include "rpc/client.h"
#include "trainyard/client.h"

using namespace std::chrono_literals;
using namespace trainyard;
using trainyard::testing::Cluster;
using trainyard::testing::ClusterOptions;
using trainyard::testing::connect;
using trainyard::testing::wait_until;

namespace {

const std::string kPython = std::string(TY_SOURCE_DIR) + "/client/python";

// A100 GPUs at 3.60 per hour: one micro-unit per GPU-millisecond
// (ClusterOptions::with_test_billing).
ClusterOptions with_metrics_and_billing(const std::string& dir) {
  ClusterOptions o;
  o.metrics = true;
  o.with_test_billing(dir);
  o.users = {"alice", "it"};
  // Budgets are the admins'. alice's runs are read with `ty`, which acts as
  // the login user: the coordinator of alice's account (a run's metrics are
  // its owner's, its coordinators' and the admins').
  const passwd* pw = getpwuid(geteuid());
  std::string me = pw ? pw->pw_name : "root";
  o.site_sets = {"security.roles.admins=[\"it\"]", "security.accounts.vision.members=[\"alice\"]",
                 "security.accounts.vision.coordinators=[\"" + me + "\"]"};
  return o;
}

fb::JobSpecT python_job(const std::string& code, uint32_t gpus = 1) {
  fb::JobSpecT s;
  s.name = "train";
  s.user = "alice";
  s.account = "vision";
  s.command = {"python3", "-c", code};
  s.gpus_per_node = gpus;
  s.time_limit_s = 600;
  auto kv = std::make_unique<fb::KeyValueT>();
  kv->key = "PYTHONPATH";
  kv->value = kPython;
  s.env.push_back(std::move(kv));
  return s;
}


std::string state_name(fb::JobState s) { return fb::EnumNameJobState(s); }

}  // namespace

BOOST_AUTO_TEST_CASE(a_training_job_logging_3_metrics_over_1000_steps_is_stored_point_by_point) {
  testing::TempDir scratch;
  Cluster c(with_metrics_and_billing(scratch.path()));
  auto cl = connect(c);
  auto sub = cl.submit(python_job(
      "import trainyard\n"
      "for s in range(1, 1001):\n"
      "    trainyard.log(s, loss=1.0/s, acc=s/1000.0, lr=0.1*(0.99**s))\n"));
  BOOST_REQUIRE_MESSAGE(sub.ok(), sub.status().to_string());
  auto id = sub->job_ids[0];
  auto done = cl.wait({id}, 60s);
  BOOST_REQUIRE_MESSAGE(done.ok() && done->at(0).state == fb::JobState::Succeeded, c.logs());

  // Every point reaches the aggregator.
  BOOST_REQUIRE_MESSAGE(wait_until(
                            [&] {
                              auto m = cl.metrics(id);
                              if (!m.ok() || m->metrics.size() < 3) return false;
                              for (auto& s : m->metrics) {
                                if (s->name.rfind("sys/", 0) != 0 && s->count != 1000) return false;
                              }
                              return true;
                            },
                            30s),
                        c.logs());
  auto loss = cl.series(id, "loss", 5000);
  BOOST_REQUIRE(loss.ok());
  BOOST_REQUIRE_EQUAL(loss->steps.size(), 1000u);
  for (size_t i = 0; i < 1000; ++i) {
    BOOST_CHECK_EQUAL(loss->steps[i], static_cast<int64_t>(i + 1));
    BOOST_CHECK_CLOSE(loss->values[i], 1.0 / static_cast<double>(i + 1), 1e-9);
  }
  // Downsampled, the curve keeps its extremes.
  auto small = cl.series(id, "acc", 50);
  BOOST_REQUIRE(small.ok());
  BOOST_CHECK_LE(small->steps.size(), 50u);
  BOOST_CHECK_EQUAL(small->total_points, 1000u);
  BOOST_CHECK_CLOSE(*std::max_element(small->values.begin(), small->values.end()), 1.0, 1e-9);
  BOOST_CHECK_CLOSE(*std::min_element(small->values.begin(), small->values.end()), 0.001, 1e-9);
  // And `ty metrics` shows them.
  auto [rc, out] = c.ty({"metrics", std::to_string(id), "--json"});
  BOOST_CHECK_EQUAL(rc, 0);
  BOOST_CHECK_NE(out.find("\"acc\""), std::string::npos);
}

BOOST_AUTO_TEST_CASE(an_array_of_5_runs_is_ranked_by_its_best_value) {
  testing::TempDir scratch;
  Cluster c(with_metrics_and_billing(scratch.path()));
  auto cl = connect(c);
  // Run i peaks at 0.5 + i/10 halfway and ends lower: the ranking must use
  // the best value, not the last.
  auto spec = python_job(
      "import os, trainyard\n"
      "i = int(os.environ['TY_ARRAY_INDEX'])\n"
      "for s in range(1, 101):\n"
      "    peak = 0.5 + i / 10.0\n"
      "    trainyard.log(s, val_acc=peak - abs(s - 50) / 1000.0)\n");
  spec.experiment = "sweep";
  spec.array = "0-4";
  auto kv = std::make_unique<fb::KeyValueT>();
  kv->key = "optimizer";
  kv->value = "sgd";
  spec.labels.push_back(std::move(kv));
  auto sub = cl.submit(spec);
  BOOST_REQUIRE_MESSAGE(sub.ok(), sub.status().to_string());
  auto done = cl.wait(sub->job_ids, 90s);
  BOOST_REQUIRE_MESSAGE(done.ok(), done.status().to_string() << c.logs());
  std::map<int, uint64_t> job_of_index;
  for (auto& r : *done) job_of_index[r.array_index] = r.job_id;

  fb::ComparisonT cmp;
  BOOST_REQUIRE_MESSAGE(wait_until(
                            [&] {
                              auto r = cl.compare("sweep", {}, "val_acc", true);
                              if (!r.ok() || r->rows.size() < 5) return false;
                              cmp = std::move(*r);
                              return true;
                            },
                            30s),
                        c.logs());
  for (int rank = 0; rank < 5; ++rank) {
    auto& row = cmp.rows[rank];
    BOOST_CHECK_EQUAL(row->job_id, job_of_index[4 - rank]);
    BOOST_CHECK_CLOSE(row->best_value, 0.5 + (4 - rank) / 10.0, 1e-9);
    BOOST_CHECK_EQUAL(row->best_step, 50);
    bool labelled = false;
    for (auto& l : row->labels) labelled |= (l->key == "optimizer" && l->value == "sgd");
    BOOST_CHECK(labelled);
  }
  auto [rc, out] = c.ty({"compare", "--experiment", "sweep", "--metric", "val_acc", "--max"});
  BOOST_CHECK_EQUAL(rc, 0);
  BOOST_CHECK_LT(out.find(std::to_string(job_of_index[4])), out.find(std::to_string(job_of_index[0])));
}

// Every list comes in pages under a byte budget; a one-byte budget gives one
// row a page, and following the cursors yields exactly the unpaged list.
BOOST_AUTO_TEST_CASE(usage_and_metric_lists_page_under_a_byte_budget) {
  testing::TempDir scratch;
  Cluster c(with_metrics_and_billing(scratch.path()));
  auto cl = connect(c);
  auto spec = python_job(
      "import trainyard\n"
      "for s in range(1, 4):\n"
      "    trainyard.log(s, loss=1.0 / s, acc=s / 4.0, lr=0.1, zeta=float(s))\n");
  spec.array = "0-3";
  auto sub = cl.submit(spec);
  BOOST_REQUIRE_MESSAGE(sub.ok(), sub.status().to_string());
  BOOST_REQUIRE(cl.wait(sub->job_ids, 90s).ok());
  client::UsageQuery q;
  q.account = "vision";
  q.group_by = "job";
  BOOST_REQUIRE_MESSAGE(wait_until(
                            [&] {
                              auto r = cl.usage(q);
                              return r.ok() && r->rows.size() == 4;
                            },
                            30s),
                        c.logs());
  zmq::context_t ctx;
  rpc::ClientOptions o;
  o.timeout_ms = 3000;
  auto alice = testing::user_identity(c, "alice");
  o.site = alice.get();
  rpc::Client billing(ctx, "billing", c.billing, o);
  std::vector<std::string> keys;
  std::string after;
  for (int page = 0; page < 10; ++page) {
    auto r = billing.call(fb::RequestBody::QueryUsage, [&](flatbuffers::FlatBufferBuilder& b) {
      return fb::CreateQueryUsageDirect(b, "vision", nullptr, 0, 0, 0, "job", after.empty() ? nullptr : after.c_str(), 1)
          .Union();
    });
    BOOST_REQUIRE_MESSAGE(r.ok(), r.status().to_string());
    auto* rep = r->body<fb::UsageReport>();
    BOOST_REQUIRE(rep && rep->rows());
    BOOST_REQUIRE_EQUAL(rep->rows()->size(), 1u);
    keys.push_back(rep->rows()->Get(0)->key()->str());
    if (!rep->truncated()) break;
    BOOST_REQUIRE(rep->next_after());
    after = rep->next_after()->str();
  }
  std::vector<std::string> want;
  for (auto id : sub->job_ids) want.push_back(std::to_string(id));
  BOOST_TEST(keys == want, "one job a page, in id order, none twice");
  auto bad = billing.call(fb::RequestBody::QueryUsage, [&](flatbuffers::FlatBufferBuilder& b) {
    return fb::CreateQueryUsageDirect(b, "vision", nullptr, 0, 0, 0, "job", "not-a-cursor").Union();
  });
  BOOST_TEST((bad.status().code() == ErrorCode::InvalidArgument));
  BOOST_TEST(bad.status().message().find("QueryUsage.after") != std::string::npos);

  rpc::Client metrics(ctx, "metrics", c.metrics, o);
  uint64_t job = sub->job_ids[0];
  BOOST_REQUIRE(wait_until([&] { auto m = cl.metrics(job); return m.ok() && m->metrics.size() == 4; }, 30s));
  std::vector<std::string> names;
  after.clear();
  for (int page = 0; page < 10; ++page) {
    auto r = metrics.call(fb::RequestBody::ListMetrics, [&](flatbuffers::FlatBufferBuilder& b) {
      return fb::CreateListMetricsDirect(b, job, after.empty() ? nullptr : after.c_str(), 1).Union();
    });
    BOOST_REQUIRE_MESSAGE(r.ok(), r.status().to_string());
    auto* list = r->body<fb::MetricSummaries>();
    BOOST_REQUIRE(list && list->metrics());
    BOOST_REQUIRE_EQUAL(list->metrics()->size(), 1u);
    names.push_back(list->metrics()->Get(0)->name()->str());
    if (!list->truncated()) break;
    after = list->next_after_name()->str();
  }
  BOOST_TEST(names == std::vector<std::string>({"acc", "loss", "lr", "zeta"}));
}

BOOST_AUTO_TEST_CASE(a_job_is_charged_for_exactly_the_gpu_time_it_held) {
  testing::TempDir scratch;
  Cluster c(with_metrics_and_billing(scratch.path()));
  auto cl = connect(c);
  auto spec = python_job("import time; time.sleep(1.5)", 2);
  auto sub = cl.submit(spec);
  BOOST_REQUIRE(sub.ok());
  auto id = sub->job_ids[0];
  auto done = cl.wait({id}, 60s);
  BOOST_REQUIRE(done.ok());
  auto& rec = done->at(0);
  BOOST_REQUIRE_EQUAL(state_name(rec.state), "Succeeded");
  double ran_ms = (rec.end_time_ns - rec.start_time_ns) / 1e6;

  client::UsageQuery q;
  q.job_id = id;
  q.group_by = "job";
  fb::UsageReportT usage;
  // The final tick arrives with run.finished; billing applies it soon after.
  BOOST_REQUIRE_MESSAGE(wait_until(
                            [&] {
                              auto r = cl.usage(q);
                              if (!r.ok() || r->rows.empty() || r->rows[0]->gpu_ms < 3000) return false;
                              usage = std::move(*r);
                              return true;
                            },
                            30s),
                        c.logs());
  auto& row = *usage.rows.at(0);
  BOOST_TEST_MESSAGE("run " << ran_ms << " ms, charged " << row.gpu_ms << " GPU-ms, " << row.cost_micros << " micro-EUR");
  // Two GPUs for the run's whole life (the agent's clock, within a few ms
  // of the scheduler's view), one micro-unit per GPU-millisecond.
  BOOST_CHECK_GE(row.gpu_ms, 3000u);
  BOOST_CHECK_LE(std::abs(static_cast<double>(row.gpu_ms) - 2 * ran_ms), 2 * 100.0);
  BOOST_CHECK_LE(std::abs(row.cost_micros - static_cast<int64_t>(row.gpu_ms)), 1);
  // The invoice of the month adds up to the same money.
  auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  char month[8];
  std::strftime(month, sizeof month, "%Y-%m", std::gmtime(&now));
  auto inv = cl.invoice("vision", month);
  BOOST_REQUIRE_MESSAGE(inv.ok(), inv.status().to_string());
  BOOST_CHECK_EQUAL(inv->total_micros, row.cost_micros);
}

BOOST_AUTO_TEST_CASE(an_account_over_its_hard_budget_starts_no_new_job_and_pending_jobs_say_why) {
  testing::TempDir scratch;
  Cluster c(with_metrics_and_billing(scratch.path()));
  auto cl = connect(c);
  auto admin = connect(c, "user:it");
  client::Budget b;
  b.account = "vision";
  b.monthly_micros = 500;  // half a GPU-second
  b.hard = true;
  BOOST_REQUIRE(admin.set_budget(b).ok());
  auto first = cl.submit(python_job("import time; time.sleep(1)"));
  BOOST_REQUIRE(first.ok());
  BOOST_REQUIRE(cl.wait(first->job_ids, 60s).ok());
  // Spending passed the budget: the next job waits, and says why.
  auto second = cl.submit(python_job("print('ran')"));
  BOOST_REQUIRE(second.ok());
  auto id = second->job_ids[0];
  std::string reason;
  BOOST_REQUIRE_MESSAGE(wait_until(
                            [&] {
                              auto s = cl.status(id);
                              if (!s.ok()) return false;
                              reason = s->reason;
                              return s->state == fb::JobState::Pending && reason.find("budget") != std::string::npos;
                            },
                            30s),
                        "reason: " << reason << "\n" << c.logs());
  std::this_thread::sleep_for(2s);
  BOOST_CHECK(cl.status(id)->state == fb::JobState::Pending);
  // Raising the budget lets it run.
  b.monthly_micros = 1'000'000'000;
  BOOST_REQUIRE(admin.set_budget(b).ok());
  auto done = cl.wait({id}, 60s);
  BOOST_REQUIRE(done.ok());
  BOOST_CHECK_EQUAL(state_name(done->at(0).state), "Succeeded");
}

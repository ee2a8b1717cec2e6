// Unit tests of the scheduler core's bounds (issue 13): spec sizes and
// UTF-8 refused at submit, grace and time limits, the per-user limit on
// unfinished jobs, retention of ended jobs, and range-checked config keys.
#define BOOST_TEST_MODULE scheduler_limits
#include <boost/test/unit_test.hpp>

#include <chrono>

#include "config_keys.h"
#include "text/utf8.h"
#include "core/scheduler.h"
#include "core/spec_limits.h"

using namespace trainyard;
using namespace trainyard::scheduler;

namespace {

constexpr int64_t kSecond = 1'000'000'000;

fb::JobSpecT make_spec() {
  fb::JobSpecT s;
  s.name = "train";
  s.user = "alice";
  s.account = "vision";
  s.command = {"python", "train.py"};
  s.time_limit_s = 3600;
  return s;
}

std::unique_ptr<fb::KeyValueT> kv(std::string k, std::string v) {
  auto p = std::make_unique<fb::KeyValueT>();
  p->key = std::move(k);
  p->value = std::move(v);
  return p;
}

// The error of submitting `spec` (fails the test when it is taken).
Status refusal(Scheduler& s, const fb::JobSpecT& spec) {
  auto r = s.submit(spec, kSecond);
  BOOST_REQUIRE_MESSAGE(!r.ok(), "the spec was taken");
  return r.status();
}

void expect_invalid(Scheduler& s, const fb::JobSpecT& spec, const std::string& field, const std::string& words) {
  auto st = refusal(s, spec);
  BOOST_TEST((st.code() == ErrorCode::InvalidArgument));
  BOOST_TEST_MESSAGE(st.message());
  BOOST_TEST(st.message().rfind(field + ":", 0) == 0, "'" << st.message() << "' starts with " << field);
  BOOST_TEST(st.message().find(words) != std::string::npos, "'" << st.message() << "' says " << words);
}

Result<PolicyChoice> config_of(const std::string& toml) {
  auto c = Config::parse(toml);
  BOOST_REQUIRE(c.ok());
  return scheduler_config_from(*c);
}

}  // namespace

BOOST_AUTO_TEST_CASE(every_size_limit_is_refused_naming_the_field_and_the_limit) {
  SchedulerConfig c;
  c.spec_limits.max_argv = 3;
  c.spec_limits.max_argv_bytes = 100;
  c.spec_limits.max_env = 2;
  c.spec_limits.max_env_bytes = 50;
  c.spec_limits.max_labels = 2;
  c.spec_limits.max_label_bytes = 40;
  c.spec_limits.max_dependencies = 1;
  c.spec_limits.max_string_bytes = 32;
  c.spec_limits.max_path_bytes = 64;
  Scheduler s(c);
  auto base = make_spec();
  BOOST_REQUIRE(s.submit(base, kSecond).ok());

  auto spec = base;
  spec.command = {"a", "b", "c", "d"};
  expect_invalid(s, spec, "command", "4 arguments is over the limit of 3 (scheduler.max_argv)");
  spec.command = {"python", std::string(200, 'x')};
  expect_invalid(s, spec, "command", "is over the limit of 100 (scheduler.max_argv_bytes)");
  // A batch script counts with its arguments, and the refusal says so.
  spec = base;
  spec.script = std::string(120, '#');
  expect_invalid(s, spec, "script and its command", "is over the limit of 100 (scheduler.max_argv_bytes)");
  spec = base;
  for (int i = 0; i < 3; ++i) spec.env.push_back(kv("K" + std::to_string(i), "v"));
  expect_invalid(s, spec, "env", "3 variables is over the limit of 2 (scheduler.max_env)");
  spec = base;
  spec.env.push_back(kv("TOKEN", std::string(60, 'x')));
  expect_invalid(s, spec, "env", "over the limit of 50 (scheduler.max_env_bytes)");
  spec = base;
  for (int i = 0; i < 3; ++i) spec.labels.push_back(kv("l" + std::to_string(i), "v"));
  expect_invalid(s, spec, "labels", "3 labels is over the limit of 2 (scheduler.max_labels)");
  spec = base;
  spec.labels.push_back(kv("note", std::string(50, 'x')));
  expect_invalid(s, spec, "labels", "over the limit of 40 (scheduler.max_label_bytes)");
  spec = base;
  for (int i = 0; i < 2; ++i) {
    auto d = std::make_unique<fb::DependencyT>();
    d->job_id = 1;
    spec.dependencies.push_back(std::move(d));
  }
  expect_invalid(s, spec, "dependencies", "2 dependencies is over the limit of 1 (scheduler.max_dependencies)");
  for (auto field : {&fb::JobSpecT::name, &fb::JobSpecT::user, &fb::JobSpecT::account, &fb::JobSpecT::experiment}) {
    spec = base;
    spec.*field = std::string(33, 'n');
    auto st = refusal(s, spec);
    BOOST_TEST(st.message().find("33 bytes is over the limit of 32 (scheduler.max_string_bytes)") != std::string::npos,
               st.message());
  }
  spec = base;
  spec.workdir = "/" + std::string(100, 'd');
  expect_invalid(s, spec, "workdir", "101 bytes is over the limit of 64 (scheduler.max_path_bytes)");
}

BOOST_AUTO_TEST_CASE(a_ten_megabyte_spec_is_refused_quickly_by_its_total_size) {
  Scheduler s{SchedulerConfig{}};
  auto spec = make_spec();
  spec.env.push_back(kv("BLOB", std::string(10 << 20, 'x')));
  spec.array = "0-9999";
  auto t0 = std::chrono::steady_clock::now();
  expect_invalid(s, spec, "spec", "is over the limit of 65536 (scheduler.max_spec_bytes)");
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  BOOST_TEST(ms < 500);
  BOOST_TEST(s.job_count() == 0u);
}

BOOST_AUTO_TEST_CASE(text_that_is_not_utf8_is_refused_naming_the_field) {
  Scheduler s{SchedulerConfig{}};
  const std::string latin1 = "caf\xe9";
  for (auto [field, member] : {std::pair{"name", &fb::JobSpecT::name}, std::pair{"user", &fb::JobSpecT::user},
                               std::pair{"account", &fb::JobSpecT::account},
                               std::pair{"partition", &fb::JobSpecT::partition},
                               std::pair{"experiment", &fb::JobSpecT::experiment}}) {
    auto spec = make_spec();
    spec.*member = latin1;
    expect_invalid(s, spec, field, "is not valid UTF-8");
  }
  auto spec = make_spec();
  spec.labels.push_back(kv("team", "\xed\xa0\x80"));  // a lone surrogate
  expect_invalid(s, spec, "labels[0] value", "is not valid UTF-8");
  spec = make_spec();
  spec.env.push_back(kv("\xff", "x"));
  expect_invalid(s, spec, "env[0] name", "is not valid UTF-8");
  spec = make_spec();
  spec.name = "résumé ✓ 🚀";
  BOOST_TEST(s.submit(spec, kSecond).ok());
  BOOST_TEST(!trainyard::text::valid_utf8("\xc0\xaf"));  // overlong '/'
  BOOST_TEST(!trainyard::text::valid_utf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  BOOST_TEST(!trainyard::text::valid_utf8("\xe2\x82"));  // cut short
}

BOOST_AUTO_TEST_CASE(grace_and_time_limit_are_bounded_at_submit) {
  SchedulerConfig c;
  c.partitions = {PartitionConfig{"gpu", {}, 0, 0, 0, 120}};
  Scheduler s(c);
  auto spec = make_spec();
  spec.grace_s = 4294967295u;
  expect_invalid(s, spec, "grace_s", "4294967295 s is over the maximum of partition 'gpu' (120 s, max_grace_s)");
  spec.grace_s = 120;
  BOOST_TEST(s.submit(spec, kSecond).ok());
  spec.time_limit_s = 300'000'000'000ull;
  expect_invalid(s, spec, "time_limit_s", "is over the limit of 31622400 s (scheduler.max_time_limit_s)");
}

BOOST_AUTO_TEST_CASE(a_user_over_max_submit_jobs_is_refused_with_the_limit_and_the_count) {
  SchedulerConfig c;
  c.max_submit_jobs_per_user = 4;
  Scheduler s(c);
  auto spec = make_spec();
  spec.array = "0-2";  // three tasks count three
  auto arr = s.submit(spec, kSecond);
  BOOST_REQUIRE(arr.ok());
  auto one = make_spec();
  auto first = s.submit(one, kSecond);
  BOOST_REQUIRE(first.ok());
  BOOST_TEST(s.unfinished_jobs_of("alice") == 4u);
  auto st = refusal(s, one);
  BOOST_TEST((st.code() == ErrorCode::ResourceExhausted));
  BOOST_TEST(st.message().find("user 'alice' has 4 unfinished jobs") != std::string::npos, st.message());
  BOOST_TEST(st.message().find("the limit is 4 (scheduler.max_submit_jobs_per_user)") != std::string::npos);
  auto bob = make_spec();
  bob.user = "bob";
  BOOST_TEST(s.submit(bob, kSecond).ok());  // per user
  BOOST_REQUIRE(s.cancel(first->job_ids[0], "", 2 * kSecond).ok());
  BOOST_TEST(s.unfinished_jobs_of("alice") == 3u);
  BOOST_TEST(s.submit(one, 3 * kSecond).ok());
}

BOOST_AUTO_TEST_CASE(ended_jobs_are_purged_after_retention_with_their_indexes) {
  SchedulerConfig c;
  c.job_retention_s = 3600;
  Scheduler s(c);
  auto spec = make_spec();
  spec.client_token = "tok";
  auto single = s.submit(spec, kSecond);
  spec.client_token.clear();
  spec.array = "0-3";
  auto arr = s.submit(spec, kSecond);
  auto live = s.submit(make_spec(), kSecond);
  BOOST_REQUIRE(single.ok() && arr.ok() && live.ok());
  JobId id = single->job_ids[0];
  BOOST_REQUIRE(s.cancel(id, "", 10 * kSecond).ok());
  BOOST_REQUIRE(s.cancel(arr->array_job_id, "", 20 * kSecond).ok());
  s.take_output();

  BOOST_TEST(s.purge_ended(10 * kSecond + 3599 * kSecond) == 0u);
  BOOST_TEST(s.purge_ended(10 * kSecond + 3600 * kSecond) == 1u);
  BOOST_TEST(s.job(id) == nullptr);
  BOOST_TEST(s.was_purged(id));
  BOOST_TEST(!s.was_purged(live->job_ids[0]));
  BOOST_TEST(!s.was_purged(live->job_ids[0] + 1));  // never existed
  auto out = s.take_output();
  BOOST_TEST(out.purged == std::vector<JobId>{id});
  // The token is forgotten with its job: the same token makes a new job.
  spec = make_spec();
  spec.client_token = "tok";
  auto again = s.submit(spec, 3700 * kSecond);
  BOOST_REQUIRE(again.ok());
  BOOST_TEST(!again->duplicate);

  BOOST_TEST(s.purge_ended(20 * kSecond + 3600 * kSecond) == 4u);
  BOOST_TEST(s.array_tasks(arr->array_job_id) == nullptr);
  BOOST_TEST(s.was_purged(arr->array_job_id));
  out = s.take_output();
  BOOST_TEST(out.purged_arrays == std::vector<JobId>{arr->array_job_id});
  BOOST_TEST(s.job_count() == 2u);  // the live job and the new one
  // A dependency on a purged job says so.
  auto dep = make_spec();
  auto d = std::make_unique<fb::DependencyT>();
  d->job_id = id;
  dep.dependencies.push_back(std::move(d));
  expect_invalid(s, dep, "dependencies[0].job_id", "was purged after the retention period");
}

BOOST_AUTO_TEST_CASE(config_keys_out_of_range_are_refused_at_start_naming_the_key) {
  for (auto [toml, key] : {std::pair{"[scheduler]\nmax_array_size = -1\n", "scheduler.max_array_size"},
                           std::pair{"[scheduler]\nmax_spec_bytes = 0\n", "scheduler.max_spec_bytes"},
                           std::pair{"[scheduler]\nmax_submit_jobs_per_user = -5\n", "scheduler.max_submit_jobs_per_user"},
                           std::pair{"[scheduler]\njob_retention_s = 99999999999\n", "scheduler.job_retention_s"},
                           std::pair{"[scheduler]\nmax_retries = -1\n", "scheduler.max_retries"},
                           std::pair{"[scheduler.partitions.gpu]\nmax_grace_s = -1\n",
                                     "scheduler.partitions.gpu.max_grace_s"}}) {
    auto r = config_of(toml);
    BOOST_REQUIRE_MESSAGE(!r.ok(), toml);
    BOOST_TEST(r.status().message().rfind(std::string(key) + ":", 0) == 0, r.status().message());
    BOOST_TEST(r.status().message().find("out of range") != std::string::npos);
  }
  auto r = config_of("[scheduler]\nmax_spec_bytes = 131072\njob_retention_s = 60\n[scheduler.partitions.gpu]\nmax_grace_s = 600\n");
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(r->core.spec_limits.max_spec_bytes == 131072u);
  BOOST_TEST(r->core.job_retention_s == 60u);
  BOOST_TEST(r->core.partitions.at(0).max_grace_s == 600u);
}

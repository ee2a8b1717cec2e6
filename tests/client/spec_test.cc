// Job spec input: Slurm value formats, #SBATCH directives, command lines and
// spec files, driven through the pure functions of trainyard/job_spec.h.
// This file: the value formats (times, memory, GRES, arrays, dependencies,
// begin times, signals, job references); the rest are in spec_*_test.cc
// beside it, the shared helpers in spec_test_support.h.
#define BOOST_TEST_MODULE client_spec
#include <boost/test/unit_test.hpp>

#include "spec_test_support.h"

using namespace trainyard;
using namespace trainyard::client;
using namespace trainyard::client::spec_testing;

BOOST_AUTO_TEST_CASE(time_limits_accept_every_slurm_form) {
  BOOST_TEST(*parse_time_limit("30") == 30u * 60);
  BOOST_TEST(*parse_time_limit("30:15") == 30u * 60 + 15);
  BOOST_TEST(*parse_time_limit("2:30:15") == 2u * 3600 + 30 * 60 + 15);
  BOOST_TEST(*parse_time_limit("1-12") == 36u * 3600);
  BOOST_TEST(*parse_time_limit("1-12:30") == 36u * 3600 + 30 * 60);
  BOOST_TEST(*parse_time_limit("2-00:00:05") == 2u * 86400 + 5);
  BOOST_TEST(*parse_time_limit("0:90") == 90u);
}

BOOST_AUTO_TEST_CASE(time_limits_refuse_unlimited_and_garbage) {
  for (auto bad : {"", "abc", "1:2:3:4", "1-", "-5", "1h", "0", "0:00:00", "1-2-3"}) {
    auto r = parse_time_limit(bad);
    BOOST_TEST(!r.ok(), "'" << bad << "' should be refused");
  }
  // Slurm's "no limit": the partition's default (0), which the scheduler fills in.
  BOOST_TEST(*parse_time_limit("UNLIMITED") == 0u);
  BOOST_TEST(*parse_time_limit("infinite") == 0u);
}

BOOST_AUTO_TEST_CASE(memory_sizes_take_suffixes_and_default_to_megabytes) {
  BOOST_TEST(*parse_memory_mb("4000") == 4000u);
  BOOST_TEST(*parse_memory_mb("512M") == 512u);
  BOOST_TEST(*parse_memory_mb("16G") == 16u * 1024);
  BOOST_TEST(*parse_memory_mb("16g") == 16u * 1024);
  BOOST_TEST(*parse_memory_mb("16GB") == 16u * 1024);
  BOOST_TEST(*parse_memory_mb("1T") == 1024u * 1024);
  BOOST_TEST(*parse_memory_mb("2048K") == 2u);
  BOOST_TEST(*parse_memory_mb("1K") == 1u);  // rounded up
  BOOST_TEST(*parse_memory_mb("0") == 0u);
  for (auto bad : {"", "G", "16X", "-5G", "1.5G", "lots"}) BOOST_TEST(!parse_memory_mb(bad).ok(), bad);
}

BOOST_AUTO_TEST_CASE(gres_and_gpu_counts) {
  auto g = parse_gres("gpu:a100:4");
  BOOST_TEST(g->type == "a100");
  BOOST_TEST(g->count == 4u);
  BOOST_TEST(parse_gres("gpu:2")->count == 2u);
  BOOST_TEST(parse_gres("gpu:2")->type == "");
  BOOST_TEST(parse_gres("gpu")->count == 1u);
  BOOST_TEST(parse_gres("gpu:h100")->type == "h100");
  BOOST_TEST(parse_gres("gpu:h100")->count == 1u);
  BOOST_TEST(parse_gres("gres/gpu:3")->count == 3u);
  BOOST_TEST(!parse_gres("mps:100").ok());
  BOOST_TEST(!parse_gres("gpu:2,mps:100").ok());
  BOOST_TEST(!parse_gres("gpu:a:b:c").ok());
  BOOST_TEST(!parse_gres("gpu:a100:x").ok());
  BOOST_TEST(parse_gpu_count("8")->count == 8u);
  BOOST_TEST(parse_gpu_count("H100:2")->type == "H100");
  BOOST_TEST(!parse_gpu_count("two").ok());
  BOOST_TEST(!parse_gpu_count(":2").ok());
}

BOOST_AUTO_TEST_CASE(arrays_are_validated_and_counted) {
  BOOST_TEST(*validate_array("0-99%8") == 100u);
  BOOST_TEST(*validate_array("1,3,5") == 3u);
  BOOST_TEST(*validate_array("0-15:4") == 4u);  // 0,4,8,12
  BOOST_TEST(*validate_array("1-5,7,10-20:5%2") == 5u + 1 + 3);
  BOOST_TEST(*validate_array("7") == 1u);
  for (auto bad : {"", "5-1", "1-", "a", "0-10:0", "0-9%0", "0-9%", "1,,2", "%4"}) {
    BOOST_TEST(!validate_array(bad).ok(), "'" << bad << "'");
  }
}

BOOST_AUTO_TEST_CASE(dependencies_of_each_kind) {
  auto d = parse_dependency("afterok:12:13,afterany:14,afternotok:15");
  BOOST_REQUIRE(d.ok());
  BOOST_REQUIRE(d->size() == 4u);
  BOOST_TEST(((*d)[0].kind == fb::DependencyKind::AfterOk && (*d)[0].job_id == 12u));
  BOOST_TEST(((*d)[1].kind == fb::DependencyKind::AfterOk && (*d)[1].job_id == 13u));
  BOOST_TEST(((*d)[2].kind == fb::DependencyKind::AfterAny && (*d)[2].job_id == 14u));
  BOOST_TEST(((*d)[3].kind == fb::DependencyKind::AfterNotOk && (*d)[3].job_id == 15u));
  for (auto bad : {"afterok", "afterok:", "afterok:x", "singleton", "after:12", "afterok:1?afterany:2", "aftercorr:3"}) {
    BOOST_TEST(!parse_dependency(bad).ok(), bad);
  }
}

BOOST_AUTO_TEST_CASE(begin_times_in_every_form_sbatch_users_write) {
  // 2026-11-30 10:00:00 local time, two hours east of UTC.
  constexpr int64_t kS = 1'000'000'000;
  const int64_t off = 2 * 3600;
  const int64_t now = (1'796'032'800 - off) * kS;
  auto local = [&](int64_t local_epoch_s) { return (local_epoch_s - off) * kS; };
  const int64_t midnight_today = 1'796'032'800 - 10 * 3600;
  BOOST_TEST(*parse_begin_time("now", now, off) == now);
  BOOST_TEST(*parse_begin_time("now+90", now, off) == now + 90 * kS);
  BOOST_TEST(*parse_begin_time("now+2hours", now, off) == now + 7200 * kS);
  BOOST_TEST(*parse_begin_time("now+1day", now, off) == now + 86400 * kS);
  BOOST_TEST(*parse_begin_time("now+3minutes", now, off) == now + 180 * kS);
  BOOST_TEST(*parse_begin_time("16:30", now, off) == local(midnight_today + 16 * 3600 + 1800));
  BOOST_TEST(*parse_begin_time("09:15:30", now, off) == local(midnight_today + 86400 + 9 * 3600 + 930));  // past: tomorrow
  BOOST_TEST(*parse_begin_time("2026-12-24", now, off) == local(midnight_today + 24 * 86400));
  BOOST_TEST(*parse_begin_time("2026-12-01T08:00", now, off) == local(midnight_today + 86400 + 8 * 3600));
  BOOST_TEST(*parse_begin_time("12/01", now, off) == local(midnight_today + 86400));
  BOOST_TEST(*parse_begin_time("tomorrow", now, off) == local(midnight_today + 86400));
  BOOST_TEST(*parse_begin_time("midnight", now, off) == local(midnight_today + 86400));
  BOOST_TEST(*parse_begin_time("teatime", now, off) == local(midnight_today + 16 * 3600));
  for (auto bad : {"soon", "now+3fortnights", "25:00", "2026-02-30", "13/01", "now+", ""}) {
    BOOST_TEST_INFO(bad);
    auto r = parse_begin_time(bad, now, off);
    BOOST_TEST(!r.ok());
    BOOST_TEST(r.status().message().find("--begin") != std::string::npos);
  }
}

BOOST_AUTO_TEST_CASE(signal_options_name_the_signal_its_time_and_whom) {
  auto a = parse_signal_option("B:USR1@300");
  BOOST_REQUIRE(a.ok());
  BOOST_TEST(a->signal == 10);
  BOOST_TEST(a->before_s == 300u);
  BOOST_TEST(a->batch_only);
  auto b = parse_signal_option("SIGTERM");
  BOOST_REQUIRE(b.ok());
  BOOST_TEST(b->signal == 15);
  BOOST_TEST(b->before_s == 60u);  // sbatch's default
  BOOST_TEST(!b->batch_only);
  BOOST_TEST(parse_signal_option("12@5")->signal == 12);
  for (auto bad : {"R:USR1", "USR9", "USR1@99999", "X:TERM", "@5", "0"}) {
    BOOST_TEST_INFO(bad);
    BOOST_TEST(!parse_signal_option(bad).ok());
  }
  testing::TempDir dir;
  auto r = submit_script(dir, "#!/bin/bash\n#SBATCH --signal=B:USR2@120\n#SBATCH --begin=now+1hour\ntrue\n");
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().message());
  BOOST_TEST(r->request.spec.signal == 12);
  BOOST_TEST(r->request.spec.signal_before_s == 120u);
  BOOST_TEST(r->request.spec.signal_batch_only);
  BOOST_TEST(r->request.spec.begin_ns == ctx().now_ns + int64_t{3600} * 1'000'000'000);
}

BOOST_AUTO_TEST_CASE(huge_times_gpu_counts_and_arrays_are_refused_instead_of_wrapping) {
  for (auto bad : {"300000000000", "99999999999999-00", "5000000000:00:00", "18446744073709551615"}) {
    auto r = parse_time_limit(bad);
    BOOST_TEST(!r.ok(), "'" << bad << "' should be refused");
  }
  BOOST_TEST(*parse_time_limit("365-00:00:00") == 365u * 86400);
  BOOST_TEST(!parse_gres("gpu:4294967297").ok());  // 2^32 + 1 would become 1
  BOOST_TEST(!parse_gres("gpu:a100:4294967297").ok());
  BOOST_TEST(!validate_array("0-18446744073709551615").ok());  // the count would wrap to 0
}

BOOST_AUTO_TEST_CASE(job_arguments_name_a_job_an_array_or_one_task_as_slurm_writes_them) {
  auto plain = parse_job_ref("12");
  BOOST_REQUIRE(plain.ok());
  BOOST_TEST(plain->id == 12u);
  BOOST_TEST(!plain->index.has_value());
  auto task = parse_job_ref("12_3");
  BOOST_REQUIRE(task.ok());
  BOOST_TEST(task->id == 12u);
  BOOST_TEST(*task->index == 3);
  for (const char* bad : {"", "0", "x", "12_", "_3", "12_x", "12_3_4", "-1", "12_99999999999"}) {
    auto r = parse_job_ref(bad);
    BOOST_TEST(!r.ok(), bad);
    if (!r.ok()) BOOST_TEST(r.status().message().find("ARRAY_INDEX") != std::string::npos);
  }
}

// Job spec input: Slurm value formats, #SBATCH directives, command lines and
// spec files, driven through the pure functions of trainyard/job_spec.h.
#define BOOST_TEST_MODULE client_spec
#include <boost/test/unit_test.hpp>

#include <fstream>

#include "process.h"
#include "trainyard/client.h"
#include "trainyard/job_spec.h"

using namespace trainyard;
using namespace trainyard::client;

namespace {

SubmitContext ctx() {
  SubmitContext c;
  c.cwd = "/home/ada/run";
  c.now_ns = int64_t{1'796'000'000} * 1'000'000'000;
  c.user = "ada";
  c.env = {{"PATH", "/usr/bin"}, {"HOME", "/home/ada"}, {"CUDA_VISIBLE_DEVICES", "0"}, {"SLURM_JOB_ID", "9"},
           {"TY_JOB_ID", "4"}, {"LR", "0.1"}};
  return c;
}

std::string env_of(const fb::JobSpecT& s, const std::string& key) {
  for (auto& kv : s.env) {
    if (kv->key == key) return kv->value;
  }
  return "<unset>";
}

std::string label_of(const fb::JobSpecT& s, const std::string& key) {
  for (auto& kv : s.labels) {
    if (kv->key == key) return kv->value;
  }
  return "<unset>";
}

void write(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

// Parses a batch script written to a temp dir, with extra command-line args.
Result<SubmitArgs> submit_script(testing::TempDir& dir, const std::string& text, std::vector<std::string> args = {}) {
  write(dir / "job.sh", text);
  auto c = ctx();
  c.cwd = dir.path();
  args.push_back("job.sh");
  return build_job_request(args, c);
}

}  // namespace

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

BOOST_AUTO_TEST_CASE(every_supported_directive_sets_its_field) {
  testing::TempDir dir;
  auto r = submit_script(dir,
                         "#!/bin/bash\n"
                         "#SBATCH --job-name=train-resnet\n"
                         "#SBATCH --account=vision\n"
                         "#SBATCH --partition=gpu\n"
                         "#SBATCH --gres=gpu:a100:4\n"
                         "#SBATCH --cpus-per-task=8\n"
                         "#SBATCH --mem=64G\n"
                         "#SBATCH --time=1-12:00:00\n"
                         "#SBATCH --nodes=2\n"
                         "#SBATCH --array=0-9%2\n"
                         "#SBATCH --dependency=afterok:41\n"
                         "#SBATCH --output=out/%x-%u-%j.log\n"
                         "#SBATCH --error=/abs/%j.err\n"
                         "\n"
                         "python train.py\n");
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().message());
  auto& s = r->request.spec;
  BOOST_TEST(s.name == "train-resnet");
  BOOST_TEST(s.account == "vision");
  BOOST_TEST(s.partition == "gpu");
  BOOST_TEST(s.gpu_type == "a100");
  BOOST_TEST(s.gpus_per_node == 4u);
  BOOST_TEST(s.cpus == 8u);
  BOOST_TEST(s.memory_mb == 64u * 1024);
  BOOST_TEST(s.time_limit_s == 36u * 3600);
  BOOST_TEST(s.nodes == 2u);
  BOOST_TEST(s.array == "0-9%2");
  BOOST_REQUIRE(s.dependencies.size() == 1u);
  BOOST_TEST(s.dependencies[0]->job_id == 41u);
  BOOST_TEST(s.stdout_path == dir.path() + "/out/%x-%u-%j.log");  // every pattern is the agent's to expand
  BOOST_TEST(s.stderr_path == "/abs/%j.err");
  BOOST_TEST(s.user == "ada");
  BOOST_TEST(s.workdir == dir.path());
  BOOST_TEST(r->script_path == dir.path() + "/job.sh");
}

BOOST_AUTO_TEST_CASE(short_forms_and_space_separated_values) {
  testing::TempDir dir;
  auto r = submit_script(dir,
                         "#!/bin/bash\n"
                         "#SBATCH -J short\n"
                         "#SBATCH -A acct -p part\n"
                         "#SBATCH -c4\n"
                         "#SBATCH -N 3\n"
                         "#SBATCH -t 90\n"
                         "#SBATCH -a 1,3,5\n"
                         "#SBATCH -d afterany:7:8\n"
                         "#SBATCH -o log.out -e log.err\n"
                         "#SBATCH --mem 2048\n"
                         "#SBATCH --gpus-per-node H100:2\n"
                         "echo hi\n");
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().message());
  auto& s = r->request.spec;
  BOOST_TEST(s.name == "short");
  BOOST_TEST(s.account == "acct");
  BOOST_TEST(s.partition == "part");
  BOOST_TEST(s.cpus == 4u);
  BOOST_TEST(s.nodes == 3u);
  BOOST_TEST(s.time_limit_s == 90u * 60);
  BOOST_TEST(s.array == "1,3,5");
  BOOST_TEST(s.dependencies.size() == 2u);
  BOOST_TEST((s.dependencies[1]->kind == fb::DependencyKind::AfterAny));
  BOOST_TEST(s.stdout_path == dir.path() + "/log.out");
  BOOST_TEST(s.stderr_path == dir.path() + "/log.err");
  BOOST_TEST(s.memory_mb == 2048u);
  BOOST_TEST(s.gpus_per_node == 2u);
  BOOST_TEST(s.gpu_type == "H100");
}

BOOST_AUTO_TEST_CASE(a_batch_script_without_output_writes_slurm_jobid_out_in_its_work_dir) {
  testing::TempDir dir;
  auto r = submit_script(dir, "#!/bin/bash\necho hi\n");
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().message());
  BOOST_TEST(r->request.spec.stdout_path == dir.path() + "/slurm-%j.out");
  BOOST_TEST(r->request.spec.stderr_path == dir.path() + "/slurm-%j.out");
  BOOST_TEST(r->request.spec.open_append == false);
  BOOST_TEST(r->request.spec.submit_dir == dir.path());
  auto a = submit_script(dir, "#!/bin/bash\n#SBATCH --array=0-3\n#SBATCH -D sub\n#SBATCH --open-mode=append\ntrue\n");
  BOOST_REQUIRE_MESSAGE(a.ok(), a.status().message());
  BOOST_TEST(a->request.spec.stdout_path == dir.path() + "/sub/slurm-%A_%a.out");
  BOOST_TEST(a->request.spec.submit_dir == dir.path());  // where it was submitted, not where it runs
  BOOST_TEST(a->request.spec.open_append == true);
  auto bad = submit_script(dir, "#!/bin/bash\n#SBATCH --open-mode=sometimes\ntrue\n");
  BOOST_TEST(!bad.ok());
  BOOST_TEST(bad.status().message().find("--open-mode 'sometimes'") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(task_counts_are_kept_for_the_jobs_slurm_variables) {
  testing::TempDir dir;
  auto r = submit_script(dir, "#!/bin/bash\n#SBATCH -n 8 -c 3 --ntasks-per-node=4 -N 2\ntrue\n");
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().message());
  BOOST_TEST(r->request.spec.ntasks == 8u);
  BOOST_TEST(r->request.spec.cpus_per_task == 3u);
  BOOST_TEST(r->request.spec.ntasks_per_node == 4u);
  BOOST_TEST(r->request.spec.cpus == 12u);
}

BOOST_AUTO_TEST_CASE(gpus_for_the_job_are_split_over_nodes) {
  testing::TempDir dir;
  auto r = submit_script(dir, "#!/bin/bash\n#SBATCH --gpus=A100:8\n#SBATCH --nodes=2\ntrue\n");
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().message());
  BOOST_TEST(r->request.spec.gpus_per_node == 4u);
  BOOST_TEST(r->request.spec.gpu_type == "A100");
  auto bad = submit_script(dir, "#!/bin/bash\n#SBATCH --gpus=3\n#SBATCH --nodes=2\ntrue\n");
  BOOST_TEST(!bad.ok());
  BOOST_TEST(bad.status().message().find("--gpus-per-node") != std::string::npos);
  auto g = submit_script(dir, "#!/bin/bash\n#SBATCH -G 2\ntrue\n");
  BOOST_TEST(g->request.spec.gpus_per_node == 2u);
}

BOOST_AUTO_TEST_CASE(cpus_and_memory_follow_tasks) {
  testing::TempDir dir;
  auto r = submit_script(dir, "#!/bin/bash\n#SBATCH --ntasks-per-node=4\n#SBATCH -c 2\n#SBATCH --mem-per-cpu=1G\ntrue\n");
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().message());
  BOOST_TEST(r->request.spec.cpus == 8u);
  BOOST_TEST(r->request.spec.memory_mb == 8u * 1024);
  auto n = submit_script(dir, "#!/bin/bash\n#SBATCH -n 8\n#SBATCH -N 2\n#SBATCH --gres=gpu:2\n#SBATCH --mem-per-gpu=10G\ntrue\n");
  BOOST_REQUIRE_MESSAGE(n.ok(), n.status().message());
  BOOST_TEST(n->request.spec.cpus == 4u);
  BOOST_TEST(n->request.spec.memory_mb == 20u * 1024);
}

BOOST_AUTO_TEST_CASE(directives_stop_at_the_first_command) {
  testing::TempDir dir;
  auto r = submit_script(dir,
                         "#!/bin/bash\n"
                         "# a comment\n"
                         "\n"
                         "#SBATCH --job-name=first\n"
                         "module load cuda\n"
                         "#SBATCH --job-name=ignored\n"
                         "#SBATCH --bogus-option\n");
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().message());
  BOOST_TEST(r->request.spec.name == "first");
}

BOOST_AUTO_TEST_CASE(indented_and_lower_case_directives_are_comments_as_in_sbatch) {
  testing::TempDir dir;
  auto r = submit_script(dir, "#!/bin/bash\n  #SBATCH --job-name=a\n#sbatch --job-name=b\n#SBATCHX --x\ntrue\n");
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().message());
  BOOST_TEST(r->request.spec.name == "job.sh");
}

BOOST_AUTO_TEST_CASE(quotes_and_trailing_comments_in_directives) {
  testing::TempDir dir;
  auto r = submit_script(dir,
                         "#!/bin/bash\n"
                         "#SBATCH --job-name=\"my job\"   # the name\n"
                         "#SBATCH --comment 'two words'\n"
                         "true\n");
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().message());
  BOOST_TEST(r->request.spec.name == "my job");
  BOOST_TEST(label_of(r->request.spec, "comment") == "two words");
}

BOOST_AUTO_TEST_CASE(a_bad_directive_is_refused_with_its_line) {
  testing::TempDir dir;
  struct Case {
    std::string line;
    std::string mentions;
  };
  for (auto& c : std::vector<Case>{{"#SBATCH --bogus=1", "--bogus"},
                                   {"#SBATCH --time=forever", "time limit 'forever'"},
                                   {"#SBATCH --mem=lots", "memory 'lots'"},
                                   {"#SBATCH --gres=gpu:a100:x", "--gres"},
                                   {"#SBATCH --array=9-1", "array"},
                                   {"#SBATCH --dependency=singleton", "singleton"},
                                   {"#SBATCH --nodelist=n[1-", "--nodelist"},
                                   {"#SBATCH --nodes=2-4", "range"},
                                   {"#SBATCH -Z", "-Z"},
                                   {"#SBATCH --job-name", "needs a value"},
                                   {"#SBATCH --hold=yes", "takes no value"},
                                   {"#SBATCH stray", "'stray' is not an option"},
                                   {"#SBATCH --job-name='open", "quote"}}) {
    auto r = submit_script(dir, "#!/bin/bash\n#SBATCH --job-name=ok\n\n" + c.line + "\ntrue\n");
    BOOST_TEST(!r.ok(), c.line);
    auto m = r.status().message();
    BOOST_TEST(m.find("job.sh line 4") != std::string::npos, c.line << " -> " << m);
    BOOST_TEST(m.find(c.mentions) != std::string::npos, c.line << " -> " << m);
    BOOST_TEST((r.status().code() == ErrorCode::InvalidArgument));
  }
}

BOOST_AUTO_TEST_CASE(node_lists_exclusions_constraints_and_exclusive_are_kept) {
  auto h = expand_hostlist("gpu[01-03,07],cpu1,n[8-10]x");
  BOOST_REQUIRE_MESSAGE(h.ok(), h.status().message());
  std::vector<std::string> want = {"gpu01", "gpu02", "gpu03", "gpu07", "cpu1", "n8x", "n9x", "n10x"};
  BOOST_TEST(*h == want, boost::test_tools::per_element());
  for (auto bad : {"gpu[1-", "gpu[3-1]", "a[1-2]b[1-2]", "", "a,,b", "x[0-5000]", "a]"}) {
    BOOST_TEST_INFO(bad);
    BOOST_TEST(!expand_hostlist(bad).ok());
  }
  testing::TempDir dir;
  auto r = submit_script(dir, "#!/bin/bash\n#SBATCH -w gpu[1-2]\n#SBATCH -x gpu9\n#SBATCH -C ib&rack=r1\n"
                              "#SBATCH --exclusive\ntrue\n");
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().message());
  auto& s = r->request.spec;
  std::vector<std::string> nodes = {"gpu1", "gpu2"};
  BOOST_TEST(s.nodelist == nodes, boost::test_tools::per_element());
  BOOST_TEST(s.nodes == 2u);  // --nodes defaults to the list's count
  BOOST_TEST(s.exclude == std::vector<std::string>{"gpu9"}, boost::test_tools::per_element());
  BOOST_TEST(s.constraint == "ib&rack=r1");
  BOOST_TEST(s.exclusive);
  BOOST_TEST(r->request.warnings.empty());  // honoured, not warned about
  auto three = submit_script(dir, "#!/bin/bash\n#SBATCH -N 3\n#SBATCH -w a,b\ntrue\n");
  BOOST_REQUIRE(three.ok());
  BOOST_TEST(three->request.spec.nodes == 3u);  // as asked: the scheduler says it does not match
}

BOOST_AUTO_TEST_CASE(mail_options_and_notify_say_when_and_where) {
  testing::TempDir dir;
  auto both = submit_script(dir, "#!/bin/bash\n#SBATCH --mail-type=BEGIN,end\n#SBATCH --mail-user=ada@lab.org\ntrue\n");
  BOOST_REQUIRE_MESSAGE(both.ok(), both.status().message());
  BOOST_TEST(both->request.spec.notify == std::vector<std::string>{"ada@lab.org"}, boost::test_tools::per_element());
  BOOST_TEST((both->request.spec.notify_on == (fb::NotifyOn::Begin | fb::NotifyOn::End)));
  BOOST_TEST(both->request.warnings.empty());
  // A type alone goes to the submitting user, as sbatch's.
  auto fail = submit_script(dir, "#!/bin/bash\n#SBATCH --mail-type=FAIL\ntrue\n");
  BOOST_REQUIRE(fail.ok());
  BOOST_TEST(fail->request.spec.notify == std::vector<std::string>{"ada"}, boost::test_tools::per_element());
  // A type with no meaning here is noted; none is asked, none is sent.
  auto eighty = submit_script(dir, "#!/bin/bash\n#SBATCH --mail-type=TIME_LIMIT_80\ntrue\n");
  BOOST_REQUIRE(eighty.ok());
  BOOST_TEST(eighty->request.warnings.size() == 1u);
  BOOST_TEST(eighty->request.spec.notify.empty());
  auto bogus = submit_script(dir, "#!/bin/bash\n#SBATCH --mail-type=SOMETIMES\ntrue\n");
  BOOST_TEST(bogus.status().message().find("'SOMETIMES' is not a notification type") != std::string::npos);
  // ty's --notify: on END and FAIL unless said otherwise.
  auto c = ctx();
  auto hook = build_job_request({"--notify", "https://hooks.example.org/x", "--wrap", "true"}, c);
  BOOST_REQUIRE_MESSAGE(hook.ok(), hook.status().message());
  BOOST_TEST((hook->request.spec.notify_on == (fb::NotifyOn::End | fb::NotifyOn::Fail)));
  BOOST_TEST(hook->request.spec.notify == std::vector<std::string>{"https://hooks.example.org/x"},
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(cpus_per_gpu_and_gpus_per_task_size_the_node) {
  testing::TempDir dir;
  auto r = submit_script(dir, "#!/bin/bash\n#SBATCH --gres=gpu:a100:2\n#SBATCH --cpus-per-gpu=6\ntrue\n");
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().message());
  BOOST_TEST(r->request.spec.cpus == 12u);
  BOOST_TEST(r->request.warnings.empty());  // honoured, not warned about
  auto t = submit_script(dir, "#!/bin/bash\n#SBATCH --ntasks-per-node=4\n#SBATCH --gpus-per-task=h100:1\n"
                              "#SBATCH --cpus-per-task=8\ntrue\n");
  BOOST_REQUIRE_MESSAGE(t.ok(), t.status().message());
  BOOST_TEST(t->request.spec.gpus_per_node == 4u);
  BOOST_TEST(t->request.spec.gpu_type == "h100");
  BOOST_TEST(t->request.spec.cpus == 32u);
  // Asked twice, or with no GPUs to count: refused, naming both.
  auto twice = submit_script(dir, "#!/bin/bash\n#SBATCH --gres=gpu:1\n#SBATCH --cpus-per-gpu=2\n#SBATCH -c 4\ntrue\n");
  BOOST_TEST(!twice.ok());
  BOOST_TEST(twice.status().message().find("--cpus-per-task") != std::string::npos);
  auto none = submit_script(dir, "#!/bin/bash\n#SBATCH --cpus-per-gpu=2\ntrue\n");
  BOOST_TEST(none.status().message().find("--cpus-per-gpu needs GPUs") != std::string::npos);
  auto huge = submit_script(dir, "#!/bin/bash\n#SBATCH --gres=gpu:8\n#SBATCH --cpus-per-gpu=4000000000\ntrue\n");
  BOOST_TEST(!huge.ok());  // 8 x 4e9 does not wrap into a small ask
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

BOOST_AUTO_TEST_CASE(harmless_slurm_options_are_accepted_with_a_warning) {
  testing::TempDir dir;
  auto r = submit_script(dir, "#!/bin/bash\n#SBATCH --wckey=a\n#SBATCH --licenses=x\n#SBATCH --hint=nomultithread\ntrue\n");
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().message());
  BOOST_REQUIRE(r->request.warnings.size() == 3u);
  BOOST_TEST(r->request.warnings[0].where == "job.sh line 2");
  BOOST_TEST(r->request.warnings[0].message.find("--wckey") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(unlimited_time_means_the_partition_default_with_a_warning) {
  testing::TempDir dir;
  auto r = submit_script(dir, "#!/bin/bash\n#SBATCH --time=UNLIMITED\ntrue\n");
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().message());
  BOOST_TEST(r->request.spec.time_limit_s == 0u);
  BOOST_REQUIRE(r->request.warnings.size() == 1u);
  BOOST_TEST(r->request.warnings[0].where == "job.sh line 2");
  BOOST_TEST(r->request.warnings[0].message.find("partition's default") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(command_line_flags_override_directives) {
  testing::TempDir dir;
  auto r = submit_script(dir, "#!/bin/bash\n#SBATCH --job-name=script\n#SBATCH --time=10\n#SBATCH --gres=gpu:4\ntrue\n",
                         {"-J", "cli", "--time=2:00:00", "--gpus-per-node", "1"});
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().message());
  BOOST_TEST(r->request.spec.name == "cli");
  BOOST_TEST(r->request.spec.time_limit_s == 7200u);
  BOOST_TEST(r->request.spec.gpus_per_node == 1u);
}

BOOST_AUTO_TEST_CASE(a_script_runs_as_its_copy_with_its_interpreter_in_the_submit_directory_with_its_arguments) {
  testing::TempDir dir;
  std::string text = "#!/bin/bash\n#SBATCH -t 5\necho \"$1\"\n";
  write(dir / "job.sh", text);
  auto c = ctx();
  c.cwd = dir.path();
  auto r = build_job_request({"job.sh", "first arg", "2"}, c);
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().message());
  auto& spec = r->request.spec;
  std::vector<std::string> want = {"/bin/bash", dir.path() + "/job.sh", "first arg", "2"};
  BOOST_TEST(spec.command == want, boost::test_tools::per_element());
  BOOST_TEST(spec.script == text);  // the text as of submission, never an argument
  BOOST_TEST(spec.script_arg == 1u);
  BOOST_TEST(spec.workdir == dir.path());
  // Edited after submitting: what runs is the copy (the agent writes
  // JobSpec.script to a file and runs it in place of command[script_arg]).
  write(dir / "job.sh", "#!/bin/bash\necho edited\n");
  write(dir / "slurm_script", spec.script);
  auto cmd = spec.command;
  cmd[spec.script_arg] = dir.path() + "/slurm_script";
  auto [rc, out] = testing::run(cmd, std::chrono::seconds(10));
  BOOST_TEST(rc == 0);
  BOOST_TEST(out == "first arg\n");
}

BOOST_AUTO_TEST_CASE(a_script_for_another_interpreter_runs_with_it) {
  testing::TempDir dir;
  write(dir / "train.py", "#!/usr/bin/env python3\n#SBATCH --gpus=1\nprint('hi')\n");
  auto c = ctx();
  c.cwd = dir.path();
  auto r = build_job_request({"train.py", "--lr", "3"}, c);
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().message());
  std::vector<std::string> want = {"/usr/bin/env", "python3", dir.path() + "/train.py", "--lr", "3"};
  BOOST_TEST(r->request.spec.command == want, boost::test_tools::per_element());
  BOOST_TEST(r->request.spec.script_arg == 2u);
  BOOST_TEST(r->request.spec.script.find("print('hi')") != std::string::npos);
  BOOST_TEST(r->request.spec.gpus_per_node == 1u);
}

BOOST_AUTO_TEST_CASE(scripts_export_the_environment_as_sbatch_but_not_local_devices) {
  testing::TempDir dir;
  auto r = submit_script(dir, "#!/bin/bash\ntrue\n");
  BOOST_REQUIRE(r.ok());
  auto& s = r->request.spec;
  BOOST_TEST(env_of(s, "PATH") == "/usr/bin");
  BOOST_TEST(env_of(s, "LR") == "0.1");
  BOOST_TEST(env_of(s, "CUDA_VISIBLE_DEVICES") == "<unset>");
  BOOST_TEST(env_of(s, "SLURM_JOB_ID") == "<unset>");
  BOOST_TEST(env_of(s, "TY_JOB_ID") == "<unset>");
  auto none = submit_script(dir, "#!/bin/bash\n#SBATCH --export=NONE\ntrue\n", {"--env", "A=1"});
  BOOST_TEST(none->request.spec.env.size() == 1u);
  BOOST_TEST(env_of(none->request.spec, "A") == "1");
  auto some = submit_script(dir, "#!/bin/bash\n#SBATCH --export=LR,X=y\ntrue\n");
  BOOST_TEST(some->request.spec.env.size() == 2u);
  BOOST_TEST(env_of(some->request.spec, "LR") == "0.1");
  BOOST_TEST(env_of(some->request.spec, "X") == "y");
}

BOOST_AUTO_TEST_CASE(a_plain_command_with_flags) {
  auto r = build_job_request({"--gpus", "2", "--time=1:00:00", "--label", "lr=0.01", "--experiment", "sweep", "--hold",
                              "python", "-u", "train.py", "--lr", "0.01"},
                             ctx());
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().message());
  auto& s = r->request.spec;
  std::vector<std::string> want = {"python", "-u", "train.py", "--lr", "0.01"};
  BOOST_TEST(s.command == want, boost::test_tools::per_element());
  BOOST_TEST(s.gpus_per_node == 2u);
  BOOST_TEST(s.time_limit_s == 3600u);
  BOOST_TEST(label_of(s, "lr") == "0.01");
  BOOST_TEST(s.experiment == "sweep");
  BOOST_TEST(s.name == "python");
  BOOST_TEST(s.env.empty());  // flags export nothing unless asked
  BOOST_TEST(r->request.hold);
  BOOST_TEST(s.workdir == "/home/ada/run");
}

BOOST_AUTO_TEST_CASE(double_dash_ends_options_and_wrap_runs_a_shell_line) {
  auto r = build_job_request({"-J", "x", "--", "--weird-program"}, ctx());
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().message());
  BOOST_TEST(r->request.spec.command.front() == "--weird-program");
  auto w = build_job_request({"--wrap", "echo hi && sleep 1"}, ctx());
  BOOST_REQUIRE_MESSAGE(w.ok(), w.status().message());
  std::vector<std::string> want = {"bash", "-c", "echo hi && sleep 1"};
  BOOST_TEST(w->request.spec.command == want, boost::test_tools::per_element());
  BOOST_TEST(w->request.spec.name == "wrap");
}

BOOST_AUTO_TEST_CASE(long_options_may_be_abbreviated_when_unique) {
  auto r = build_job_request({"--part=gpu", "--job=n", "true"}, ctx());
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().message());
  BOOST_TEST(r->request.spec.partition == "gpu");
  BOOST_TEST(r->request.spec.name == "n");
  BOOST_TEST(!build_job_request({"--mem-per=1G", "true"}, ctx()).ok());  // cpu or gpu?
}

BOOST_AUTO_TEST_CASE(extra_options_are_returned_to_the_caller) {
  std::vector<ExtraOption> extras = {{"wait", 0, OptionArg::kNone}, {"scheduler", 0, OptionArg::kRequired}};
  auto r = build_job_request({"--wait", "--scheduler", "tcp://h:1", "true"}, ctx(), extras);
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().message());
  BOOST_TEST(r->extras.count("wait") == 1u);
  BOOST_TEST(r->extras["scheduler"] == "tcp://h:1");
}

BOOST_AUTO_TEST_CASE(no_command_is_an_error) {
  auto r = build_job_request({"--gpus", "1"}, ctx());
  BOOST_TEST(!r.ok());
  BOOST_TEST(r.status().message().find("no command") != std::string::npos);
  BOOST_TEST(!build_job_request({"--gpus"}, ctx()).ok());
}

BOOST_AUTO_TEST_CASE(spec_files_and_rest_bodies_take_the_placement_and_notification_fields) {
  auto r = parse_spec_file(R"(command = ["python", "train.py"]
qos = "high"
constraint = "ib&rack=r1"
exclusive = true
nodelist = "gpu[01-02]"
exclude = ["gpu09"]
notify = ["ada@lab.org", "https://hooks.slack.com/x"]
mail_type = "END,FAIL"
signal = "B:USR1@120"
)",
                           "spec.toml");
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().message());
  BOOST_TEST(r->qos == "high");
  BOOST_TEST(r->constraint == "ib&rack=r1");
  BOOST_TEST(r->exclusive);
  BOOST_TEST(r->nodelist == (std::vector<std::string>{"gpu01", "gpu02"}), boost::test_tools::per_element());
  BOOST_TEST(r->exclude == std::vector<std::string>{"gpu09"}, boost::test_tools::per_element());
  BOOST_TEST(r->notify.size() == 2u);
  BOOST_TEST((r->notify_on == (fb::NotifyOn::End | fb::NotifyOn::Fail)));
  BOOST_TEST(r->signal == 10);
  BOOST_TEST(r->signal_before_s == 120u);
  BOOST_TEST(r->signal_batch_only);
  auto bad = parse_spec_file("command = [\"true\"]\nmail_type = \"SOMETIMES\"\n", "bad.toml");
  BOOST_TEST(bad.status().message().find("mail_type") != std::string::npos, bad.status().message());
  auto list = parse_spec_file("command = [\"true\"]\nnodelist = \"gpu[1-\"\n", "bad.toml");
  BOOST_TEST(list.status().message().find("nodelist") != std::string::npos, list.status().message());
}

BOOST_AUTO_TEST_CASE(a_json_number_too_large_for_any_type_is_an_error_not_a_crash) {
  // Found by fuzz_spec_file: nlohmann's out_of_range escaped the parse_error catch.
  auto r = parse_spec_file("{\"nodes\": " + std::string(400, '1') + "}", "spec.json");
  BOOST_TEST((r.status().code() == ErrorCode::InvalidArgument));
  BOOST_TEST(r.status().message().find("spec.json: not valid JSON") == 0u, r.status().message());
}

BOOST_AUTO_TEST_CASE(toml_spec_file) {
  auto r = parse_spec_file(R"(name = "resnet"
account = "vision"
command = ["python", "train.py"]
gpus_per_node = 4
gpu_type = "A100"
time_limit = "2:00:00"
memory = "32G"
nodes = 2
priority = -3
experiment = "sweep-1"
array = "0-4%2"
dependencies = ["afterok:5", {kind = "afterany", job_id = 6}]
preemptible = false

[env]
OMP_NUM_THREADS = "4"

[labels]
lr = 0.001
opt = "adam"
)",
                           "spec.toml");
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().message());
  BOOST_TEST(r->name == "resnet");
  BOOST_TEST(r->command.size() == 2u);
  BOOST_TEST(r->gpus_per_node == 4u);
  BOOST_TEST(r->time_limit_s == 7200u);
  BOOST_TEST(r->memory_mb == 32u * 1024);
  BOOST_TEST(r->nodes == 2u);
  BOOST_TEST(r->priority == -3);
  BOOST_TEST(r->array == "0-4%2");
  BOOST_TEST(r->dependencies.size() == 2u);
  BOOST_TEST(!r->preemptible);
  BOOST_TEST(env_of(*r, "OMP_NUM_THREADS") == "4");
  BOOST_TEST(label_of(*r, "lr") == "0.001");
  BOOST_TEST(label_of(*r, "opt") == "adam");
}

BOOST_AUTO_TEST_CASE(json_spec_file) {
  auto r = parse_spec_file(R"({"name": "j", "command": "echo hi", "time_limit_s": 60, "cpus": 2,
                              "labels": {"seed": 3}})",
                           "spec.json");
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().message());
  std::vector<std::string> want = {"bash", "-c", "echo hi"};
  BOOST_TEST(r->command == want, boost::test_tools::per_element());
  BOOST_TEST(r->time_limit_s == 60u);
  BOOST_TEST(r->cpus == 2u);
  BOOST_TEST(label_of(*r, "seed") == "3");
}

BOOST_AUTO_TEST_CASE(a_broken_spec_file_names_file_line_and_field) {
  struct Case {
    std::string path, text, mentions;
  };
  for (auto& c : std::vector<Case>{
           {"a.toml", "name = \"x\"\n\ngpus_per_node = \"four\"\n", "a.toml line 3: field 'gpus_per_node'"},
           {"a.toml", "name = \"x\"\ngpu = 4\n", "a.toml line 2: field 'gpu' is not a job spec field"},
           {"a.toml", "name = \"x\"\ntime_limit = \"soon\"\n", "a.toml line 2: field 'time_limit'"},
           {"a.toml", "name = \"x\"\ncpus = -1\n", "a.toml line 2: field 'cpus'"},
           {"a.toml", "name = \"x\"\n[labels]\nlr = [1, 2]\n", "a.toml line 3: field 'labels.lr'"},
           {"a.toml", "name = \"x\"\nname = \n", "a.toml line 2: not valid TOML"},
           {"b.json", "{\n  \"name\": \"x\",\n  \"nodes\": \"two\"\n}", "b.json line 3: field 'nodes'"},
           {"b.json", "{\n  \"name\": \"x\",\n  \"memory\": true\n}", "b.json line 3: field 'memory'"},
           {"b.json", "{\n  \"name\": \"x\",\n  \"dependencies\": [\"afterok:x\"]\n}", "b.json line 3: field 'dependencies'"},
           {"b.json", "{\n  \"name\": \"x\",\n  oops\n}", "b.json line 3: not valid JSON"},
       }) {
    auto r = parse_spec_file(c.text, c.path);
    BOOST_TEST(!r.ok(), c.text);
    BOOST_TEST(r.status().message().find(c.mentions) != std::string::npos, r.status().message() << " / want " << c.mentions);
  }
}

BOOST_AUTO_TEST_CASE(spec_file_with_flags_over_it) {
  testing::TempDir dir;
  write(dir / "job.toml", "name = \"base\"\ncommand = [\"sleep\", \"1\"]\ntime_limit_s = 60\ngpus_per_node = 1\n");
  auto c = ctx();
  c.cwd = dir.path();
  auto r = build_job_request({"--file", "job.toml", "--gpus-per-node", "2"}, c);
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().message());
  BOOST_TEST(r->request.spec.name == "base");
  BOOST_TEST(r->request.spec.gpus_per_node == 2u);
  BOOST_TEST(r->request.spec.time_limit_s == 60u);
  BOOST_TEST(r->request.spec.command.front() == "sleep");
  auto missing = build_job_request({"--file", "nope.toml"}, c);
  BOOST_TEST(!missing.ok());
  BOOST_TEST(missing.status().message().find("nope.toml") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(batch_scripts_are_recognised) {
  testing::TempDir dir;
  write(dir / "a.sh", "echo\n");
  write(dir / "b", "#!/bin/sh\necho\n");
  write(dir / "c", "echo\n");
  BOOST_TEST(looks_like_batch_script(dir / "a.sh"));
  BOOST_TEST(looks_like_batch_script(dir / "b"));
  BOOST_TEST(!looks_like_batch_script(dir / "c"));
  BOOST_TEST(!looks_like_batch_script(dir / "missing.sh"));
  BOOST_TEST(!looks_like_batch_script(dir.path()));
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

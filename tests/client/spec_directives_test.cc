// Job spec input: #SBATCH directives in a batch script (and the
// command-line flags over them), driven through trainyard/job_spec.h.
#include <boost/test/unit_test.hpp>

#include "spec_test_support.h"

using namespace trainyard;
using namespace trainyard::client;
using namespace trainyard::client::spec_testing;

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

// Slurm users' batch scripts, unchanged, on a real local Trainyard (`ty
// local up`, 4 declared A100s): each script goes through `ty submit` and
// through the `sbatch` command (ty called as sbatch), and what a Slurm user
// relies on is asserted: the SLURM_* variables, the output files sbatch
// would write, typed GPUs, option spellings, arrays through every command,
// and the usual one-liners over sbatch, squeue, scancel and sacct.
#define BOOST_TEST_MODULE compat
#include <boost/test/unit_test.hpp>

#include "compat_cluster.h"

BOOST_AUTO_TEST_CASE(an_array_sweep_gives_each_task_its_own_configuration) {
  auto& c = cluster();
  c.write("sweep.sh", R"(#!/bin/bash
#SBATCH --job-name=sweep
#SBATCH --array=0-3
#SBATCH --output=logs/%x_%A_%a.out
#SBATCH --time=0-00:05:00
CONFIGS=(lr0.1 lr0.01 lr0.001 lr0.0001)
echo "task=$SLURM_ARRAY_TASK_ID config=${CONFIGS[$SLURM_ARRAY_TASK_ID]} of=$SLURM_ARRAY_TASK_COUNT" \
     "min=$SLURM_ARRAY_TASK_MIN max=$SLURM_ARRAY_TASK_MAX step=$SLURM_ARRAY_TASK_STEP array=$SLURM_ARRAY_JOB_ID"
)");
  fs::create_directories(c.work + "/logs");
  const char* configs[] = {"lr0.1", "lr0.01", "lr0.001", "lr0.0001"};
  for (Via via : {Via::kTy, Via::kSbatch}) {
    BOOST_TEST_CONTEXT(name_of(via)) {
      std::string array = submit(via, "sweep.sh");
      wait_ok(array);  // the array's id waits for every task
      for (int i = 0; i < 4; ++i) {
        std::string file = "logs/sweep_" + array + "_" + std::to_string(i) + ".out";
        BOOST_REQUIRE_MESSAGE(fs::exists(c.work + "/" + file), file << " missing");
        BOOST_TEST(trim(c.read(file)) == "task=" + std::to_string(i) + " config=" + configs[i] +
                                             " of=4 min=0 max=3 step=1 array=" + array);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(every_output_file_pattern_expands_as_sbatch_does) {
  auto& c = cluster();
  c.write("patterns.sh", "#!/bin/bash\n"
                         "#SBATCH -J pat\n"
                         "#SBATCH -a 7\n"
                         "#SBATCH -o out/%x-%A-%a-%3a-%j-%J-%u-%N-%n-%t-%s-%%.txt\n"
                         "echo patterned\n");
  fs::create_directories(c.work + "/out");
  for (Via via : {Via::kTy, Via::kSbatch}) {
    BOOST_TEST_CONTEXT(name_of(via)) {
      std::string array = submit(via, "patterns.sh");
      wait_ok(array);
      auto task = status(array + "_7");
      std::string job = std::to_string(task["job_id"].get<uint64_t>());
      std::string file = "out/pat-" + array + "-7-007-" + job + "-" + job + ".batch-ada-" + c.node + "-0-0-batch-%.txt";
      BOOST_TEST_INFO(file);
      BOOST_REQUIRE(fs::exists(c.work + "/" + file));
      BOOST_TEST(trim(c.read(file)) == "patterned");
    }
  }
}

BOOST_AUTO_TEST_CASE(a_batch_script_without_output_writes_slurm_jobid_out_and_ty_logs_still_reads_it) {
  auto& c = cluster();
  c.write("plain.sh", "#!/bin/bash\necho out-line\necho err-line >&2\n");
  c.write("arr.sh", "#!/bin/bash\n#SBATCH --array=1-2\necho task $SLURM_ARRAY_TASK_ID\n");
  for (Via via : {Via::kTy, Via::kSbatch}) {
    BOOST_TEST_CONTEXT(name_of(via)) {
      std::string id = submit(via, "plain.sh");
      wait_ok(id);
      std::string text = c.read("slurm-" + id + ".out");
      BOOST_TEST(contains(text, "out-line"));
      BOOST_TEST(contains(text, "err-line"));  // stderr goes with stdout, as sbatch
      auto [lrc, log] = c.sh("ty logs " + id);
      BOOST_TEST(lrc == 0);
      BOOST_TEST(contains(log, "out-line"));

      std::string array = submit(via, "arr.sh");
      wait_ok(array);
      BOOST_TEST(trim(c.read("slurm-" + array + "_1.out")) == "task 1");
      BOOST_TEST(trim(c.read("slurm-" + array + "_2.out")) == "task 2");
      auto [arc, alog] = c.sh("ty logs " + array + "_2");
      BOOST_TEST_INFO(alog);
      BOOST_TEST(arc == 0);
      BOOST_TEST(contains(alog, "task 2"));
    }
  }
}

// A secret written in a script must not become an argument: every user of
// the node can read /proc/<pid>/cmdline. The job runs a copy, as slurmd does.
BOOST_AUTO_TEST_CASE(a_batch_script_runs_as_its_private_copy_never_as_an_argument) {
  auto& c = cluster();
  const std::string script =
      "#!/bin/bash\n# token-6f1e2d\necho \"zero=$0\"\necho \"mode=$(stat -c %a \"$0\")\"\n"
      "echo \"cmdline=$(tr '\\0' ' ' < /proc/$$/cmdline)\"\necho version-1\n";
  for (Via via : {Via::kTy, Via::kSbatch}) {
    BOOST_TEST_CONTEXT(name_of(via)) {
      c.write("copy.sh", script);
      std::string id = submit(via, "copy.sh");
      c.write("copy.sh", "#!/bin/bash\necho version-2\n");  // edited after submitting: changes nothing
      wait_ok(id);
      std::string text = c.read("slurm-" + id + ".out");
      BOOST_TEST_INFO(text);
      BOOST_TEST(contains(text, "/slurm_script\n"));
      BOOST_TEST(contains(text, "mode=500"));
      BOOST_TEST(contains(text, "cmdline=/bin/bash "));
      BOOST_TEST(!contains(text, "token-6f1e2d"));
      BOOST_TEST(contains(text, "version-1"));
    }
  }
}

BOOST_AUTO_TEST_CASE(open_mode_appends_or_truncates_an_existing_output_file) {
  auto& c = cluster();
  c.write("append.log", "old\n");
  c.write("trunc.log", "old\n");
  std::string a = submit(Via::kSbatch, "--open-mode=append -o append.log --wrap 'echo new'");
  std::string t = submit(Via::kTy, "-o trunc.log --wrap 'echo new'");
  wait_ok(a);
  wait_ok(t);
  BOOST_TEST(c.read("append.log") == "old\nnew\n");
  BOOST_TEST(c.read("trunc.log") == "new\n");
}

BOOST_AUTO_TEST_CASE(a_missing_output_directory_fails_the_job_naming_the_path) {
  auto& c = cluster();
  c.write("lost.sh", "#!/bin/bash\n#SBATCH --output=no-such-dir/%j.out\necho lost\n");
  for (Via via : {Via::kTy, Via::kSbatch}) {
    BOOST_TEST_CONTEXT(name_of(via)) {
      std::string id = submit(via, "lost.sh");
      auto [rc, out] = c.sh("ty wait " + id + " --timeout 60", 90s);
      BOOST_TEST(rc == 1);
      BOOST_TEST_INFO(out);
      BOOST_TEST(contains(out, "no-such-dir"));
      auto j = status(id);
      BOOST_TEST(j["state"] == "failed");
      BOOST_TEST(contains(j["reason"].get<std::string>(), c.work + "/no-such-dir"));
      // sacct shows it as Slurm would.
      auto [src, sout] = c.sh("sacct -j " + id + " --format=JobID,State -P -n");
      BOOST_TEST(trim(sout) == id + "|FAILED");
    }
  }
}

BOOST_AUTO_TEST_CASE(typed_gpu_requests_match_the_node_type_in_any_case) {
  auto& c = cluster();
  c.write("gpu.sh", "#!/bin/bash\necho \"gpus=$SLURM_GPUS_ON_NODE cuda=$CUDA_VISIBLE_DEVICES\"\n");
  struct Case {
    std::string options;
    int gpus;
  };
  for (auto& k : std::vector<Case>{{"--gres=gpu:a100:1", 1}, {"--gres=gpu:A100:2", 2}, {"--gpus=a100:2", 2},
                                   {"-G a100:1", 1}, {"--gpus-per-node=A100:3", 3}, {"--gres=gpu:1", 1}}) {
    for (Via via : {Via::kTy, Via::kSbatch}) {
      BOOST_TEST_CONTEXT(name_of(via) << " " << k.options) {
        std::string id = submit(via, k.options + " -o gpu-%j.out gpu.sh");
        wait_ok(id);
        std::string out = trim(c.read("gpu-" + id + ".out"));
        BOOST_TEST(contains(out, "gpus=" + std::to_string(k.gpus) + " cuda="));
        BOOST_TEST(std::count(out.begin(), out.end(), ',') == k.gpus - 1);
      }
    }
  }
  // A type no node has is refused at submit, naming it.
  auto [rc, out] = c.sh("sbatch --gres=gpu:h100:1 gpu.sh");
  BOOST_TEST(rc == 2);
  BOOST_TEST_INFO(out);
  BOOST_TEST(contains(out, "h100"));
}

BOOST_AUTO_TEST_CASE(short_and_long_option_spellings_and_slurm_times_mean_the_same) {
  auto& c = cluster();
  c.write("spell.sh", "#!/bin/bash\necho \"$SLURM_JOB_NAME $SLURM_CPUS_PER_TASK $SLURM_NTASKS $SLURM_JOB_NUM_NODES\"\n");
  struct Case {
    std::string options;
    uint64_t seconds;
  };
  for (auto& k : std::vector<Case>{{"-J spelled -c 2 -n 1 -N 1 -t 1-00:00:00", 86400},
                                   {"--job-name=spelled --cpus-per-task=2 --ntasks=1 --nodes=1 --time=01:30:00", 5400},
                                   {"--job-name spelled -c2 --ntasks 1 -N1 --time 45", 2700},
                                   {"-Jspelled --cpus-per-task 2 -n1 -t 2-12", 216000}}) {
    for (Via via : {Via::kTy, Via::kSbatch}) {
      BOOST_TEST_CONTEXT(name_of(via) << " " << k.options) {
        std::string id = submit(via, k.options + " -o spell-%j.out spell.sh");
        wait_ok(id);
        BOOST_TEST(trim(c.read("spell-" + id + ".out")) == "spelled 2 1 1");
        BOOST_TEST(status(id)["spec"]["time_limit_s"].get<uint64_t>() == k.seconds);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(a_job_reads_its_allocation_from_the_slurm_variables) {
  auto& c = cluster();
  c.write("env.sh", R"(#!/bin/bash
#SBATCH --job-name=envjob
#SBATCH --gres=gpu:2 --cpus-per-task=2 --mem=2G
#SBATCH --output=env-%j.out
echo "job=$SLURM_JOB_ID/$SLURM_JOBID name=$SLURM_JOB_NAME user=$SLURM_JOB_USER"
echo "dir=$SLURM_SUBMIT_DIR host=$SLURM_SUBMIT_HOST"
echo "nodes=$SLURM_JOB_NODELIST n=$SLURM_JOB_NUM_NODES/$SLURM_NNODES tasks=$SLURM_NTASKS per=$SLURM_NTASKS_PER_NODE"
echo "cpus=$SLURM_CPUS_PER_TASK/$SLURM_CPUS_ON_NODE gpus=$SLURM_GPUS_ON_NODE mem=$SLURM_MEM_PER_NODE"
echo "ranks=$SLURM_NODEID/$SLURM_PROCID/$SLURM_LOCALID restarts=$SLURM_RESTART_COUNT"
echo "part=${SLURM_JOB_PARTITION:+set} ty=$TY_JOB_ID/$TY_NTASKS/$TY_SUBMIT_DIR array=${SLURM_ARRAY_TASK_ID:-none}"
touch "$SLURM_TMPDIR/scratch" && echo "tmp=writable"
)");
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  for (Via via : {Via::kTy, Via::kSbatch}) {
    BOOST_TEST_CONTEXT(name_of(via)) {
      std::string id = submit(via, "env.sh");
      wait_ok(id);
      std::string want = "job=" + id + "/" + id + " name=envjob user=ada\n" +
                         "dir=" + c.work + " host=" + host + "\n" +
                         "nodes=" + c.node + " n=1/1 tasks=1 per=1\n" +
                         "cpus=2/2 gpus=2 mem=2048\n" +
                         "ranks=0/0/0 restarts=0\n" +
                         "part=set ty=" + id + "/1/" + c.work + " array=none\n" +
                         "tmp=writable\n";
      BOOST_TEST(c.read("env-" + id + ".out") == want);
    }
  }
}

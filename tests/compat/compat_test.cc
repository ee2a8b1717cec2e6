// Slurm users' batch scripts, unchanged, on a real local Trainyard (`ty
// local up`, 4 declared A100s): each script goes through `ty submit` and
// through the `sbatch` command (ty called as sbatch), and what a Slurm user
// relies on is asserted: the SLURM_* variables, the output files sbatch
// would write, typed GPUs, option spellings, arrays through every command,
// and the usual one-liners over sbatch, squeue, scancel and sacct.
#define BOOST_TEST_MODULE compat
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

#include "../local/local_ports.h"
#include "process.h"

using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace tt = trainyard::testing;
using nlohmann::json;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// One local Trainyard for the whole module, and a shell to run commands as
// its user would: build/bin (ty, sbatch, squeue...) first on the PATH.
struct Cluster {
  tt::TempDir tmp;
  std::string home = tmp / "home";
  std::string data = tmp / "xdg-data/trainyard";
  std::string work = tmp / "work";
  int base = tt::free_port_base();
  std::string node;

  Cluster() {
    fs::create_directories(home);
    fs::create_directories(work);
    auto [rc, out] = sh("ty local up --gpus 4 --gpu-type A100 --port-base " + std::to_string(base), 120s);
    auto [nrc, nodes] = sh("ty nodes --json");
    if (rc != 0 || nrc != 0) {
      std::string why = "ty local up failed: " + out + "\n" + nodes + "\n" + logs();
      stop();
      throw std::runtime_error(why);
    }
    node = json::parse(nodes.substr(nodes.find('[')))[0]["name"].get<std::string>();
  }
  ~Cluster() { stop(); }
  void stop() {
    sh("ty local down --data " + data + " --grace 1", 30s);
    tt::kill_processes_mentioning(tmp.path());
  }

  std::map<std::string, std::string> env() const {
    std::string bin_dir = fs::path(tt::bin("ty")).parent_path().string();
    const char* path = std::getenv("PATH");
    return {{"HOME", home},     {"XDG_DATA_HOME", tmp / "xdg-data"}, {"XDG_STATE_HOME", ""}, {"TY_CONFIG", ""},
            {"USER", "ada"},    {"PATH", bin_dir + ":" + (path ? path : "/usr/bin:/bin")}};
  }
  // Runs a bash command line in the work directory.
  std::pair<int, std::string> sh(const std::string& line, std::chrono::milliseconds timeout = 60s) const {
    return tt::run({"bash", "-c", "cd " + work + " && " + line}, timeout, env());
  }
  std::string logs() const {
    std::string out;
    if (!fs::exists(data + "/logs")) return out;
    for (auto& e : fs::directory_iterator(data + "/logs")) {
      auto text = tt::read_file(e.path());
      if (text.size() > 2000) text = "..." + text.substr(text.size() - 2000);
      out += "---- " + e.path().filename().string() + " ----\n" + text + "\n";
    }
    return out;
  }
  void write(const std::string& name, const std::string& text) const {
    fs::create_directories(fs::path(work + "/" + name).parent_path());
    std::ofstream(work + "/" + name) << text;
  }
  std::string read(const std::string& name) const { return tt::read_file(work + "/" + name); }
};

Cluster& cluster() {
  static Cluster c;
  return c;
}

// How a script is submitted: as `ty submit` or as `sbatch`. Returns the id
// a user goes on with (an array's own id for an array).
enum class Via { kTy, kSbatch };
const char* name_of(Via v) { return v == Via::kTy ? "ty submit" : "sbatch"; }

std::string submit(Via via, const std::string& args) {
  auto& c = cluster();
  if (via == Via::kSbatch) {
    // As scripts do it: jobid=$(sbatch --parsable x.sh)
    auto [rc, out] = c.sh("jobid=$(sbatch --parsable " + args + ") && echo \"id=$jobid\"");
    BOOST_REQUIRE_MESSAGE(rc == 0, "sbatch " << args << ": " << out);
    std::smatch m;
    BOOST_REQUIRE_MESSAGE(std::regex_search(out, m, std::regex(R"(id=(\d+)\n)")), out);
    return m[1];
  }
  auto [rc, out] = c.sh("ty submit --json " + args);
  BOOST_REQUIRE_MESSAGE(rc == 0, "ty submit " << args << ": " << out);
  auto j = json::parse(out.substr(out.find('{')));
  uint64_t array = j["array_job_id"];
  return std::to_string(array ? array : j["job_ids"][0].get<uint64_t>());
}

void wait_ok(const std::string& id) {
  auto& c = cluster();
  auto [rc, out] = c.sh("ty wait " + id + " --timeout 60", 90s);
  BOOST_REQUIRE_MESSAGE(rc == 0, "ty wait " << id << ": " << out << c.logs());
}

// Polls squeue until job `id` is in Slurm state `state` (30 s at most).
bool wait_until_state(const std::string& id, const std::string& state) {
  for (int i = 0; i < 300; ++i) {
    auto [rc, out] = cluster().sh("squeue -h -o %T -j " + id);
    if (rc == 0 && out.find(state) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

json status(const std::string& id) {
  auto [rc, out] = cluster().sh("ty status --json " + id);
  BOOST_REQUIRE_MESSAGE(rc == 0, out);
  return json::parse(out.substr(out.find_first_of("{[")));
}

}  // namespace

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

BOOST_AUTO_TEST_CASE(arrays_work_through_status_wait_cancel_hold_and_release) {
  auto& c = cluster();
  // %1: one task at a time, so the others stay pending.
  c.write("slow.sh", "#!/bin/bash\n#SBATCH --array=0-3%1\n#SBATCH -o /dev/null\nsleep 60\n");
  std::string array = submit(Via::kSbatch, "slow.sh");
  auto tasks = status(array);
  BOOST_REQUIRE(tasks.is_array());
  BOOST_TEST(tasks.size() == 4u);
  auto [src, sout] = c.sh("ty status " + array);
  BOOST_TEST(src == 0);
  BOOST_TEST_INFO(sout);
  BOOST_TEST(contains(sout, array + "_3"));
  BOOST_TEST(!contains(sout, "QueryJobs"));
  BOOST_TEST(status(array + "_2")["array_index"] == 2);

  auto [hrc, hout] = c.sh("ty hold " + array + "_3");
  BOOST_TEST_INFO(hout);
  BOOST_TEST(hrc == 0);
  BOOST_TEST(status(array + "_3")["state"] == "held");
  auto [rrc, rout] = c.sh("ty release " + array);
  BOOST_TEST(rrc == 0);
  BOOST_TEST(status(array + "_3")["state"] == "pending");

  // squeue lists the tasks as array_index, as Slurm does.
  auto [qrc, qout] = c.sh("squeue -h -o '%i %T' -j " + array);
  BOOST_TEST_INFO(qout);
  BOOST_TEST(contains(qout, array + "_1 PENDING"));

  auto [crc, cout] = c.sh("ty cancel " + array + "_1");
  BOOST_TEST(crc == 0);
  BOOST_TEST_INFO(cout);
  BOOST_TEST(contains(cout, "Cancelled job " + array + "_1"));
  auto [arc, aout] = c.sh("scancel " + array);
  BOOST_TEST(arc == 0);
  BOOST_TEST_INFO(aout);
  auto [wrc, wout] = c.sh("ty wait " + array + " --timeout 60", 90s);
  BOOST_TEST(wrc == 1);  // cancelled tasks are not a success
  BOOST_TEST_INFO(wout);
  BOOST_TEST(contains(wout, "job " + array + "_0 cancelled"));
  BOOST_TEST(!contains(wout, "QueryJobs"));
  for (auto& t : status(array)) BOOST_TEST(t["state"] == "cancelled");
  // Naming a task that is not there says so in the user's terms.
  auto [nrc, nout] = c.sh("ty status " + array + "_9");
  BOOST_TEST(nrc == 1);
  BOOST_TEST(contains(nout, "has no task with index 9"));
}

BOOST_AUTO_TEST_CASE(a_job_submitted_held_never_starts_until_released) {
  auto& c = cluster();
  // Free GPUs and an idle cluster: a job held only after its submission
  // could start in between; -H / --hold must submit it held.
  c.write("held.sh", "#!/bin/bash\n#SBATCH -H\n#SBATCH -o held-%j.out\necho ran\n");
  for (Via via : {Via::kSbatch, Via::kTy}) {
    std::string id = submit(via, "held.sh");
    auto j = status(id);
    BOOST_TEST(j["state"] == "held");
    std::this_thread::sleep_for(1500ms);  // scheduling cycles pass
    BOOST_TEST(status(id)["state"] == "held");
    auto [rrc, rout] = c.sh("ty release " + id);
    BOOST_TEST_INFO(rout);
    BOOST_TEST(rrc == 0);
    auto [wrc, wout] = c.sh("ty wait " + id + " --timeout 60", 90s);
    BOOST_TEST_INFO(wout);
    BOOST_TEST(wrc == 0);
    BOOST_TEST(c.read("held-" + id + ".out") == "ran\n");
  }
}

// --signal=B:USR1@55 on a one-minute limit: the batch shell is told 5 s
// after its start, so it can checkpoint and end before the limit.
BOOST_AUTO_TEST_CASE(the_signal_before_the_time_limit_reaches_the_batch_shell) {
  auto& c = cluster();
  c.write("warn.sh",
          "#!/bin/bash\n#SBATCH --time=1\n#SBATCH --signal=B:USR1@55\n#SBATCH -o warn-%j.out\n"
          "trap 'echo checkpoint-at-$SECONDS; exit 0' USR1\nfor i in $(seq 400); do sleep 0.1; done\necho never-warned\n");
  std::string id = submit(Via::kSbatch, "warn.sh");
  wait_ok(id);
  std::string text = c.read("warn-" + id + ".out");
  BOOST_TEST_INFO(text);
  std::smatch m;
  BOOST_REQUIRE(std::regex_search(text, m, std::regex(R"(checkpoint-at-(\d+))")));
  int at = std::stoi(m[1]);
  BOOST_TEST(at >= 4);   // 60 - 55 s after the start, not at once
  BOOST_TEST(at <= 10);  // and not at the limit
  BOOST_TEST(!contains(text, "never-warned"));
}

// --begin: the job waits with Slurm's reason BeginTime, then runs.
BOOST_AUTO_TEST_CASE(a_job_does_not_start_before_its_begin_time) {
  auto& c = cluster();
  auto [rc, out] = c.sh("date +%s%N; ty submit --json --begin now+4 --gpus 0 --time 1 --output begin-%j.out "
                        "--wrap 'date +%s%N'");
  BOOST_REQUIRE_MESSAGE(rc == 0, out);
  int64_t submitted = std::stoll(out.substr(0, out.find('\n')));
  auto j = json::parse(out.substr(out.find('{')));
  std::string id = std::to_string(j["job_ids"][0].get<uint64_t>());
  std::this_thread::sleep_for(1s);
  auto [qrc, reason] = c.sh("squeue -h -o '%T %r' -j " + id);
  BOOST_TEST(trim(reason) == "PENDING BeginTime");
  wait_ok(id);
  int64_t ran = std::stoll(trim(c.read("begin-" + id + ".out")));
  BOOST_TEST(ran - submitted >= 4'000'000'000);
}

// --nodelist, --exclude, --constraint and --exclusive through sbatch: the
// local cluster has one node (no labels), so each either runs there or waits.
BOOST_AUTO_TEST_CASE(node_lists_exclusions_and_constraints_place_or_hold_the_job) {
  auto& c = cluster();
  auto [rc, out] = c.sh("sbatch --parsable -t 1 -w '" + c.node + "' --exclusive -o placed-%j.out "
                        "--wrap 'echo on-$SLURM_JOB_NODELIST'");
  BOOST_REQUIRE_MESSAGE(rc == 0, out);
  std::string placed = trim(out);
  wait_ok(placed);
  BOOST_TEST(trim(c.read("placed-" + placed + ".out")) == "on-" + c.node);
  for (const std::string& opt : std::vector<std::string>{"-x '" + c.node + "'", "-C ib"}) {
    BOOST_TEST_CONTEXT(opt) {
      auto [hrc, held] = c.sh("sbatch --parsable -t 1 " + opt + " --wrap true");
      BOOST_REQUIRE_MESSAGE(hrc == 0, held);
      std::string id = trim(held);
      std::this_thread::sleep_for(1500ms);
      auto [qrc, q] = c.sh("squeue -h -o '%T %r' -j " + id);
      BOOST_TEST(trim(q) == "PENDING Resources");
      c.sh("scancel " + id);
    }
  }
  auto [brc, bad] = c.sh("sbatch -t 1 -w no-such-node --wrap true");
  BOOST_TEST(brc != 0);
  BOOST_TEST(contains(bad, "nodelist: 'no-such-node' is not a node of partition"));
}

// scontrol: show job/node/hostnames as scripts grep them, hold/release, and
// requeue of a running job (a new attempt, SLURM_RESTART_COUNT 1).
BOOST_AUTO_TEST_CASE(scontrol_shows_holds_releases_and_requeues) {
  auto& c = cluster();
  c.write("twice.sh",
          "#!/bin/bash\n#SBATCH -t 2\n#SBATCH --open-mode=append\n#SBATCH -o twice-%j.out\n"
          "echo \"attempt-$SLURM_RESTART_COUNT first-node=$(scontrol show hostnames \"$SLURM_JOB_NODELIST\" | head -n 1)\"\n"
          "if [ \"$SLURM_RESTART_COUNT\" = 0 ]; then sleep 60; fi\n");
  std::string id = submit(Via::kSbatch, "twice.sh");
  BOOST_REQUIRE_MESSAGE(wait_until_state(id, "RUNNING"), c.sh("squeue").second);
  auto [src, shown] = c.sh("scontrol show job " + id);
  BOOST_TEST(src == 0);
  BOOST_TEST_INFO(shown);
  BOOST_TEST(contains(shown, "JobId=" + id + " JobName=twice.sh"));
  BOOST_TEST(contains(shown, "JobState=RUNNING"));
  BOOST_TEST(contains(shown, "NodeList=" + c.node + "\n"));
  BOOST_TEST(contains(shown, "Restarts=0"));
  auto [grc, state] = c.sh("scontrol show job " + id + " | grep -o 'JobState=[A-Z]*'");
  BOOST_TEST(trim(state) == "JobState=RUNNING");
  auto [nrc, node] = c.sh("scontrol show node " + c.node);
  BOOST_TEST(contains(node, "NodeName=" + c.node));
  BOOST_TEST(contains(node, "Gres=gpu:A100:4"));
  // requeue: the run is stopped and the job runs again under its id.
  auto [rrc, rout] = c.sh("scontrol requeue " + id);
  BOOST_TEST(rrc == 0, rout);
  wait_ok(id);
  std::string text = c.read("twice-" + id + ".out");
  BOOST_TEST_INFO(text);
  BOOST_TEST(contains(text, "attempt-0 first-node=" + c.node));
  BOOST_TEST(contains(text, "attempt-1 first-node=" + c.node));
  // hold and release through scontrol; a bad subcommand is refused naming it.
  auto [hrc, held] = c.sh("sbatch --parsable -H -t 1 --wrap true");
  std::string hid = trim(held);
  BOOST_TEST(c.sh("scontrol release " + hid).first == 0);
  wait_ok(hid);
  auto [brc, bad] = c.sh("scontrol update JobId=" + hid + " TimeLimit=5");
  BOOST_TEST(brc == 2);
  BOOST_TEST(contains(bad, "update is not supported"));
  auto [lrc, names] = c.sh("scontrol show hostnames 'gpu[01-03],cpu1'");
  BOOST_TEST(names == "gpu01\ngpu02\ngpu03\ncpu1\n");
}

BOOST_AUTO_TEST_CASE(the_usual_one_liners_parse_the_shims_output) {
  auto& c = cluster();
  c.write("one.sh", "#!/bin/bash\n#SBATCH -o /dev/null\nexit 3\n");
  auto [prc, plain] = c.sh("sbatch one.sh");
  BOOST_TEST(prc == 0);
  std::smatch m;
  BOOST_REQUIRE_MESSAGE(std::regex_match(plain, m, std::regex(R"(Submitted batch job (\d+)\n)")), plain);
  std::string id = m[1];
  // sbatch --wait exits with the job's exit code.
  auto [wrc, wout] = c.sh("sbatch --wait --parsable one.sh", 90s);
  BOOST_TEST(wrc == 3);
  auto [arc, acct] = c.sh("ty wait " + id + " >/dev/null 2>&1; sacct -j " + id + " --format=JobID,State,ExitCode -P -n", 90s);
  BOOST_TEST(trim(acct) == id + "|FAILED|3:0");
  auto [hrc, head] = c.sh("sacct -j " + id + " --format=JobID,JobName,State -P");
  BOOST_TEST(contains(head, "JobID|JobName|State\n" + id + "|one.sh|FAILED"));

  c.write("long.sh", "#!/bin/bash\n#SBATCH -o /dev/null\nsleep 60\n");
  std::string running = submit(Via::kSbatch, "long.sh");
  auto [crc, count] = c.sh("squeue -h -o %i -u $USER | wc -l");
  BOOST_TEST(std::stoi(trim(count)) >= 1);
  auto [qrc, q] = c.sh("squeue --me -h -o '%i %T' -j " + running);
  BOOST_TEST(std::regex_match(q, std::regex(running + " (PENDING|CONFIGURING|RUNNING)\n")), q);
  auto [drc, def] = c.sh("squeue -j " + running);
  BOOST_TEST(contains(def, "JOBID PARTITION     NAME     USER ST       TIME  NODES NODELIST(REASON)"), def);
  // squeue cuts a value to its field's width, as Slurm does.
  auto [nrc, narrow] = c.sh("squeue -h -o '%.3j|' -j " + running);
  BOOST_TEST(narrow == "lon|\n", narrow);
  auto [src, sout] = c.sh("scancel " + running + " && sleep 0.5 && ty wait " + running + " --timeout 30; "
                          "sacct -j " + running + " -o State -n -P");
  BOOST_TEST(trim(sout.substr(sout.rfind('\n', sout.size() - 2) + 1)) == "CANCELLED");
  auto [irc, info] = c.sh("sinfo -h -o '%D %G'");
  BOOST_TEST(trim(info) == "1 gpu:A100:4");
  // sinfo pads to a width but never cuts; its default header is Slurm's.
  auto [wrc2, wide] = c.sh("sinfo -h -o '%.3G|%.4D|'");
  BOOST_TEST(wide == "gpu:A100:4|   1|\n", wide);
  auto [hrc2, sdef] = c.sh("sinfo");
  BOOST_TEST(contains(sdef, "PARTITION AVAIL  TIMELIMIT  NODES  STATE NODELIST GRES\n"), sdef);
  // sacct without -P: fixed right-aligned columns (JobID 12 wide, the rest 10) under a dashed line.
  auto [trc, table] = c.sh("sacct -j " + id + " --format=JobID,JobName,State");
  BOOST_TEST(contains(table, "       JobID    JobName      State\n------------ ---------- ----------\n"), table);
  BOOST_TEST(contains(table, "    one.sh     FAILED\n"), table);

  // Options no shim knows are refused, naming them.
  auto [urc, uout] = c.sh("squeue --frobnicate");
  BOOST_TEST(urc == 2);
  BOOST_TEST(contains(uout, "--frobnicate"));
  auto [brc, bout] = c.sh("sbatch --frobnicate=3 one.sh");
  BOOST_TEST(brc == 2);
  BOOST_TEST(contains(bout, "--frobnicate"));
}

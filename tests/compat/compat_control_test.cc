// Slurm users' batch scripts under job control: arrays through every
// command, holds, the signal before the time limit, begin times, node lists
// and constraints, scontrol, and the usual one-liners over sbatch, squeue,
// scancel and sacct. The same local Trainyard as compat_test.cc
// (compat_cluster.h), in the same test program.
#include <boost/test/unit_test.hpp>

#include "compat_cluster.h"

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

// Hostile jobs against a real node agent (issue 13): jobs that ignore
// SIGTERM and ask for the largest grace, daemonize out of their session,
// swap their logs for FIFOs and symlinks, forge the agent's records, or
// pre-create the next run's directory. None of them may out-wait its limits,
// leave a process behind, hang the agent or change what it reports; after
// each, a normal job on the same agent still runs and is reported right.
#define BOOST_TEST_MODULE hostile_agent
#include <boost/test/unit_test.hpp>

#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "agent_cluster.h"

using namespace trainyard;
using namespace trainyard::testing;
using namespace std::chrono_literals;

namespace {

constexpr uint32_t kLargestGrace = 4294967295u;

int64_t wall_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string chunk_text(const rpc::Reply& r) {
  auto* d = r.body<fb::LogChunk>()->data();
  return std::string(d->begin(), d->end());
}

// A job that ignores SIGTERM, starts a grandchild in a session of its own
// (setsid + double fork; it ignores SIGTERM too and sleeps), writes the
// grandchild's pid to `pid_file`, then stays (`stay`) or exits 0.
std::vector<std::string> daemonizing_job(const std::string& pid_file, bool stay) {
  std::string py = R"(import os, signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
out = sys.argv[1]
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        with open(out + ".tmp", "w") as f:
            f.write(str(os.getpid()))
        os.rename(out + ".tmp", out)
        time.sleep(300)
    os._exit(0)
while not os.path.exists(out):
    time.sleep(0.01)
if sys.argv[2] == "stay":
    time.sleep(300)
)";
  return {"python3", "-c", py, pid_file, stay ? "stay" : "go"};
}

int wait_pid_file(const std::string& path) {
  BOOST_REQUIRE_MESSAGE(wait_until([&] { return !read_file(path).empty(); }, 10s), "no pid in " << path);
  return std::stoi(read_file(path));
}

// After a hostile job: a plain job on the same agent starts, ends, and its
// run.finished and usage ticks say exactly what happened.
void a_normal_job_runs_right(Cluster& c, uint64_t lease, uint64_t job_id) {
  Grant g = job(lease, job_id, {"sh", "-c", "sleep 0.3; echo fine"});
  g.gpus = {1, 2};
  g.cpus = 2;
  g.memory_mb = 1024;
  int64_t t0 = wall_ns();
  c.broker().grant(g);
  auto f_seen = c.wait_finished(lease);
  auto* f = f_seen.as<fb::RunFinished>();
  BOOST_TEST(f->outcome() == fb::RunOutcome::Succeeded);
  BOOST_TEST(f->exit_code() == 0);
  auto s_seen = c.wait_started(lease);
  int64_t start = s_seen.as<fb::RunStarted>()->start_time_ns(), end = f->end_time_ns();
  BOOST_TEST(start >= t0);
  BOOST_TEST(end - start >= 300'000'000);
  BOOST_TEST(end <= wall_ns());
  BOOST_REQUIRE(wait_until(
      [&] {
        auto ticks = c.for_lease<fb::UsageTick>("usage.tick", lease);
        return !ticks.empty() && ticks.back().as<fb::UsageTick>()->final();
      },
      5s));
  int64_t sum = 0;
  for (auto& t : c.for_lease<fb::UsageTick>("usage.tick", lease)) {
    auto* u = t.as<fb::UsageTick>();
    BOOST_TEST(u->gpus() == 2u);
    BOOST_TEST(u->cpus() == 2u);
    BOOST_TEST(u->memory_mb() == 1024u);
    BOOST_TEST(u->start_ns() >= start);
    BOOST_TEST(u->end_ns() <= end);
    sum += u->end_ns() - u->start_ns();
  }
  BOOST_TEST(sum == end - start);
  auto out = c.read_log(job_id, false);
  BOOST_REQUIRE(out);
  BOOST_TEST(chunk_text(*out) == "fine\n");
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_job_ignoring_sigterm_with_the_largest_grace_is_killed_within_the_cap_after_cancel) {
  Cluster c("max_grace_s = 1");
  std::string gc_file = c.path("gc.pid");
  Grant g = job(1, 101, daemonizing_job(gc_file, true));
  g.grace_s = kLargestGrace;
  c.broker().grant(g);
  int leader = c.wait_started(1).as<fb::RunStarted>()->pid();
  int grandchild = wait_pid_file(gc_file);
  BOOST_REQUIRE(!process_gone(grandchild));
  auto t0 = std::chrono::steady_clock::now();
  c.broker().revoke("n1", 1, 101, kLargestGrace, "cancelled by alice");
  auto f_seen = c.wait_finished(1, 10s);
  auto took = std::chrono::steady_clock::now() - t0;
  auto* f = f_seen.as<fb::RunFinished>();
  BOOST_TEST(f->outcome() == fb::RunOutcome::Cancelled);
  BOOST_TEST(f->signal() == SIGKILL);
  BOOST_TEST(took >= 900ms);  // the capped grace was given
  BOOST_TEST(took < 3s,
             "the kill took " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms");
  BOOST_TEST_MESSAGE("cancel with grace 2^32-1, cap 1 s: run.finished after "
                     << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms");
  // Reported ended only once nothing of it is left, the daemon included.
  BOOST_TEST(process_gone(leader));
  BOOST_TEST(process_gone(grandchild));
  a_normal_job_runs_right(c, 2, 102);
}

BOOST_AUTO_TEST_CASE(a_job_ignoring_sigterm_with_the_largest_grace_is_killed_within_the_cap_after_its_time_limit) {
  Cluster c("max_grace_s = 1");
  std::string gc_file = c.path("gc.pid");
  Grant g = job(3, 103, daemonizing_job(gc_file, true));
  g.grace_s = kLargestGrace;
  g.time_limit_s = 1;
  c.broker().grant(g);
  int64_t start = c.wait_started(3).as<fb::RunStarted>()->start_time_ns();
  int grandchild = wait_pid_file(gc_file);
  auto f_seen = c.wait_finished(3, 10s);
  auto* f = f_seen.as<fb::RunFinished>();
  BOOST_TEST(f->outcome() == fb::RunOutcome::TimedOut);
  BOOST_TEST(f->signal() == SIGKILL);
  double ran_s = static_cast<double>(f->end_time_ns() - start) / 1e9;
  BOOST_TEST_MESSAGE("time limit 1 s, grace 2^32-1, cap 1 s: ran " << ran_s << " s");
  BOOST_TEST(ran_s >= 2.0);  // 1 s limit + 1 s capped grace
  BOOST_TEST(ran_s < 4.0);
  BOOST_TEST(process_gone(grandchild));
  a_normal_job_runs_right(c, 4, 104);
}

BOOST_AUTO_TEST_CASE(a_daemonized_grandchild_is_killed_when_the_job_ends) {
  Cluster c;
  std::string gc_file = c.path("gc.pid");
  c.broker().grant(job(5, 105, daemonizing_job(gc_file, false)));
  auto f_seen = c.wait_finished(5);
  auto* f = f_seen.as<fb::RunFinished>();
  BOOST_TEST(f->outcome() == fb::RunOutcome::Succeeded);
  int grandchild = std::stoi(read_file(gc_file));
  BOOST_TEST(process_gone(grandchild), "pid " << grandchild << " outlived its run");
  a_normal_job_runs_right(c, 6, 106);
}

BOOST_AUTO_TEST_CASE(a_job_leaving_many_daemons_and_a_respawning_one_leaves_nothing_behind) {
  Cluster c;
  std::string pids = c.path("pids.txt");
  // 30 daemons (setsid + double fork), and one that forks a new sleeping
  // child every 5 ms until it is killed; every pid goes to `pids`.
  std::string py = R"(import os, sys, time
out = sys.argv[1]
def note():
    with open(out, "a") as f:
        f.write("%d\n" % os.getpid())
def daemon(respawn):
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            note()
            while respawn:
                if os.fork() == 0:
                    note()
                    time.sleep(300)
                    os._exit(0)
                time.sleep(0.005)
            time.sleep(300)
        os._exit(0)
    os.wait()
for i in range(30):
    daemon(False)
daemon(True)
time.sleep(0.5)
)";
  c.broker().grant(job(15, 115, {"python3", "-c", py, pids}));
  auto f_seen = c.wait_finished(15, 20s);
  BOOST_TEST(f_seen.as<fb::RunFinished>()->outcome() == fb::RunOutcome::Succeeded);
  std::ifstream in(pids);
  size_t n = 0, alive = 0;
  for (int pid; in >> pid; ++n) alive += process_gone(pid) ? 0 : 1;
  BOOST_TEST_MESSAGE(n << " processes left behind by the job; alive once the run ended: " << alive);
  BOOST_TEST(n > 60u);  // the 30 daemons and the respawner's children
  BOOST_TEST(alive == 0u);
  a_normal_job_runs_right(c, 16, 116);
}

BOOST_AUTO_TEST_CASE(a_job_killing_its_supervisor_is_reported_lost_and_leaves_nothing_behind) {
  Cluster c;
  std::string gc_file = c.path("gc.pid");
  // The job's parent is its supervisor (same uid here): it starts a daemon,
  // SIGKILLs the supervisor, and sleeps on.
  std::string script = "python3 -c \"" 
                       "import os, time\n"
                       "if os.fork() == 0:\n"
                       "    os.setsid()\n"
                       "    if os.fork() == 0:\n"
                       "        open('" + gc_file + ".tmp', 'w').write(str(os.getpid())); "
                       "os.rename('" + gc_file + ".tmp', '" + gc_file + "'); time.sleep(300)\n"
                       "    os._exit(0)\n"
                       "os.wait()\n"
                       "while not os.path.exists('" + gc_file + "'): time.sleep(0.01)\n"
                       "\"; kill -9 $PPID; sleep 300";
  c.broker().grant(job(17, 117, {"sh", "-c", script}));
  int leader = c.wait_started(17).as<fb::RunStarted>()->pid();
  auto f_seen = c.wait_finished(17, 10s);
  auto* f = f_seen.as<fb::RunFinished>();
  BOOST_TEST(f->outcome() == fb::RunOutcome::Lost);
  int grandchild = std::stoi(read_file(gc_file));
  // Its processes came back to the agent, which killed them before reporting.
  BOOST_TEST(process_gone(leader));
  BOOST_TEST(process_gone(grandchild));
  a_normal_job_runs_right(c, 18, 118);
}

BOOST_AUTO_TEST_CASE(a_job_swapping_its_logs_for_a_fifo_and_a_symlink_does_not_hang_or_fool_the_agent) {
  Cluster c;
  std::string secret = c.path("secret.txt");
  std::ofstream(secret) << "not the job's\n";
  // In its run directory: stderr becomes a FIFO nobody reads, stdout a
  // symlink to someone else's file; then a bad metrics line makes the
  // agent write a warning to stderr. The metrics file becomes a FIFO too.
  std::string script = "echo '{\"step\": 1, \"loss\": 0.5}' >> \"$TY_METRICS_FILE\"; sleep 0.3; "
                       "rm -f stdout stderr; mkfifo stderr; ln -s " + secret + " stdout; "
                       "echo 'not json' >> \"$TY_METRICS_FILE\"; "
                       "rm -f \"$TY_METRICS_FILE\"; mkfifo \"$TY_METRICS_FILE\"; touch swapped; sleep 4";
  c.broker().grant(job(7, 107, {"sh", "-c", script}));
  c.wait_started(7);
  BOOST_REQUIRE(wait_until([&] { return file_exists(c.run_dir(107, 1, 7) + "/swapped"); }, 5s));
  std::this_thread::sleep_for(300ms);  // the agent reads the bad line and tries to warn
  // The agent still serves: another job starts and ends while this one runs.
  auto t0 = std::chrono::steady_clock::now();
  c.broker().grant(job(8, 108, {"sh", "-c", "exit 4"}));
  BOOST_TEST(c.wait_finished(8, 5s).as<fb::RunFinished>()->exit_code() == 4);
  BOOST_TEST((std::chrono::steady_clock::now() - t0 < 2s));
  // `ty logs` answers, refusing what is not a regular file.
  auto out = c.read_log(107, false);
  BOOST_REQUIRE(!out);
  BOOST_TEST(out.status().code() == fb::ErrorCode::FailedPrecondition);
  BOOST_TEST(out.status().message().find("symbolic link") != std::string::npos, out.status().message());
  auto err = c.read_log(107, true);
  BOOST_REQUIRE(!err);
  BOOST_TEST(err.status().message().find("regular file") != std::string::npos, err.status().message());
  BOOST_TEST(read_file(secret) == "not the job's\n");
  // The metric written before the swap still arrived.
  BOOST_TEST(wait_until(
      [&] {
        for (auto& s : c.broker().events("metric.batch")) {
          auto* mb = s.as<fb::MetricBatch>();
          if (mb->job_id() == 107 && mb->names()->size() > 0 && mb->names()->Get(0)->str() == "loss") return true;
        }
        return false;
      },
      5s));
  BOOST_TEST(c.wait_finished(7, 10s).as<fb::RunFinished>()->outcome() == fb::RunOutcome::Succeeded);
  BOOST_TEST(c.agent_log().find("refused a file the job can write") != std::string::npos);
  a_normal_job_runs_right(c, 9, 109);
}

BOOST_AUTO_TEST_CASE(a_job_writing_fake_records_wherever_it_reaches_changes_nothing) {
  Cluster c;
  // It knows the layout: its run directory, the runs directory, and the
  // agent's state directory beside it (reachable here: same uid).
  std::string script =
      "name=$(basename \"$PWD\"); "
      "for d in \"$PWD\" \"$PWD/..\" \"$PWD/../../run-state/$name\"; do "
      "  printf '{\"exit_code\":0,\"signal\":0,\"end_ns\":1}' > \"$d/exit.json\"; "
      "  printf '{\"pid\":1,\"start_ns\":1,\"supervisor_pid\":1}' > \"$d/job.json\"; "
      "done; touch faked; sleep 1.5; exit 3";
  int64_t t0 = wall_ns();
  Grant g = job(10, 110, {"sh", "-c", script});
  g.gpus = {0, 1, 2, 3};
  g.cpus = 3;
  g.memory_mb = 3000;
  c.broker().grant(g);
  BOOST_REQUIRE(wait_until([&] { return file_exists(c.run_dir(110, 1, 10) + "/faked"); }, 5s));
  BOOST_REQUIRE(file_exists(c.state_dir(110, 1, 10) + "/exit.json"));  // it did reach the state
  auto f_seen = c.wait_finished(10);
  auto* f = f_seen.as<fb::RunFinished>();
  BOOST_TEST(f->exit_code() == 3);
  BOOST_TEST(f->outcome() == fb::RunOutcome::Failed);
  int64_t start = c.wait_started(10).as<fb::RunStarted>()->start_time_ns();
  int64_t end = f->end_time_ns();
  BOOST_TEST(start >= t0);
  BOOST_TEST(end - start >= 1'500'000'000);
  BOOST_TEST(end <= wall_ns());
  BOOST_REQUIRE(wait_until(
      [&] {
        auto ticks = c.for_lease<fb::UsageTick>("usage.tick", 10);
        return !ticks.empty() && ticks.back().as<fb::UsageTick>()->final();
      },
      5s));
  int64_t sum = 0;
  for (auto& t : c.for_lease<fb::UsageTick>("usage.tick", 10)) {
    auto* u = t.as<fb::UsageTick>();
    BOOST_TEST(u->gpus() == 4u);
    BOOST_TEST(u->cpus() == 3u);
    BOOST_TEST(u->memory_mb() == 3000u);
    sum += u->end_ns() - u->start_ns();
  }
  BOOST_TEST(sum == end - start);
  // The supervisor's own record replaced the forged one.
  auto ex = read_json(c.state_dir(110, 1, 10) + "/exit.json");
  BOOST_REQUIRE(ex);
  BOOST_TEST((*ex)["exit_code"].get<int>() == 3);
  a_normal_job_runs_right(c, 11, 111);
}

BOOST_AUTO_TEST_CASE(forged_records_written_while_the_agent_is_down_change_nothing_after_its_restart) {
  Cluster c;
  // While the agent is down it can only learn from the state directory:
  // the job forges a start at the epoch and a successful end there.
  std::string script =
      "state=\"$PWD/../../run-state/$(basename \"$PWD\")\"; "
      "while [ ! -f go ]; do sleep 0.05; done; "
      "printf '{\"exit_code\":0,\"signal\":0,\"end_ns\":1}' > \"$state/exit.json\"; "
      "printf '{\"pid\":1,\"start_ns\":1,\"supervisor_pid\":1}' > \"$state/job.json\"; "
      "touch faked; sleep 1; exit 5";
  c.broker().grant(job(19, 119, {"sh", "-c", script}));
  int64_t start = c.wait_started(19).as<fb::RunStarted>()->start_time_ns();
  c.agent().kill9();
  std::ofstream(c.run_dir(119, 1, 19) + "/go") << "";
  BOOST_REQUIRE(wait_until([&] { return file_exists(c.run_dir(119, 1, 19) + "/faked"); }, 5s));
  c.start_agent();
  auto f_seen = c.wait_finished(19);
  auto* f = f_seen.as<fb::RunFinished>();
  BOOST_TEST(f->exit_code() == 5);
  BOOST_TEST(f->outcome() == fb::RunOutcome::Failed);
  BOOST_TEST(c.for_lease<fb::RunStarted>("run.started", 19).size() == 1u);
  BOOST_TEST(f->end_time_ns() - start >= 1'000'000'000);
  BOOST_TEST(f->end_time_ns() <= wall_ns());
  BOOST_REQUIRE(wait_until(
      [&] {
        auto ticks = c.for_lease<fb::UsageTick>("usage.tick", 19);
        return !ticks.empty() && ticks.back().as<fb::UsageTick>()->final();
      },
      5s));
  int64_t sum = 0;
  for (auto& t : c.for_lease<fb::UsageTick>("usage.tick", 19)) {
    sum += t.as<fb::UsageTick>()->end_ns() - t.as<fb::UsageTick>()->start_ns();
  }
  BOOST_TEST(sum == f->end_time_ns() - start);
  a_normal_job_runs_right(c, 20, 120);
}

BOOST_AUTO_TEST_CASE(a_pre_created_run_directory_or_symlink_is_refused) {
  Cluster c;
  // Predictable names: <job>-<attempt>-<lease>. One symlink to elsewhere,
  // one directory holding forged records.
  std::string target = c.path("elsewhere");
  std::filesystem::create_directories(target);
  BOOST_REQUIRE(::symlink(target.c_str(), c.run_dir(112, 1, 12).c_str()) == 0);
  std::filesystem::create_directories(c.run_dir(113, 1, 13));
  std::ofstream(c.run_dir(113, 1, 13) + "/job.json") << R"({"pid":1,"start_ns":1,"supervisor_pid":1})";
  std::ofstream(c.run_dir(113, 1, 13) + "/exit.json") << R"({"exit_code":0,"signal":0,"end_ns":1})";
  c.broker().grant(job(12, 112, {"sh", "-c", "echo ran > ran; sleep 0.2"}));
  c.broker().grant(job(13, 113, {"sh", "-c", "echo ran > ran; sleep 0.2"}));
  for (uint64_t lease : {12u, 13u}) {
    auto f_seen = c.wait_finished(lease);
    auto* f = f_seen.as<fb::RunFinished>();
    BOOST_TEST(f->outcome() == fb::RunOutcome::Failed);
    BOOST_TEST(f->exit_code() == 127);
    BOOST_TEST(f->reason()->str().find("already exists") != std::string::npos, f->reason()->str());
    BOOST_TEST(c.for_lease<fb::RunStarted>("run.started", lease).empty());
    BOOST_TEST(c.for_lease<fb::UsageTick>("usage.tick", lease).empty());  // nothing billed
  }
  BOOST_TEST(std::filesystem::is_empty(target));
  BOOST_TEST(!file_exists(c.run_dir(113, 1, 13) + "/ran"));
  a_normal_job_runs_right(c, 14, 114);
}

BOOST_AUTO_TEST_CASE(a_metric_flood_of_two_million_lines_and_100k_names_is_capped_with_one_warning_each) {
  Cluster c("max_points_per_s = 2000\nmax_series_per_run = 50\nmax_metric_name_bytes = 32");
  // 2,000,000 lines naming 100,000 distinct metrics (and "loss" on each),
  // one name of 40 bytes, one name in Latin-1, as fast as Python writes:
  // 4 million points, 30 times what the caps let through, in a file of
  // 80 MB (ten million lines made 400 MB, the most disk of any test, and
  // proved nothing more).
  const std::string flood = R"(
import os
with open(os.environ["TY_METRICS_FILE"], "ab") as f:
    f.write(b'{"step": 0, "' + b"x" * 40 + b'": 1, "caf\xe9": 2}\n')
    for i in range(2000000):
        f.write(b'{"step": %d, "loss": 0.5, "m%d": %d}\n' % (i, i % 100000, i))
)";
  auto t0 = std::chrono::steady_clock::now();
  c.broker().grant(job(1, 901, {"python3", "-c", flood}));
  auto f_seen = c.wait_finished(1, 400s);
  BOOST_TEST(f_seen.as<fb::RunFinished>()->outcome() == fb::RunOutcome::Succeeded);
  std::set<std::string> names;
  uint64_t points = 0;
  // Every line is read (the follower finishes the file), and what is kept
  // is bounded by the caps, not by the flood.
  BOOST_REQUIRE(wait_until(
      [&] {
        names.clear();
        points = 0;
        for (auto& s : c.broker().events("metric.batch")) {
          auto* mb = s.as<fb::MetricBatch>();
          if (mb->job_id() != 901) continue;
          points += mb->points()->size();
          for (auto* p : *mb->points()) {
            auto name = mb->names()->Get(p->name())->str();
            if (name.rfind("sys/", 0) != 0) names.insert(name);  // the agent's own samples are not the job's
          }
        }
        return points > 0;
      },
      30s));
  auto took = std::chrono::steady_clock::now() - t0;
  double seconds = std::chrono::duration<double>(took).count();
  BOOST_TEST_MESSAGE("flood: " << points << " points kept of 4,000,002, " << names.size() << " names, run over in "
                               << seconds << " s");
  BOOST_TEST(names.size() <= 50u);
  BOOST_TEST(points <= static_cast<uint64_t>(2000 * (60 + seconds + 1)));  // burst + rate
  BOOST_TEST(!names.count(std::string(40, 'x')));
  BOOST_TEST(names.count("caf\xEF\xBF\xBD"));  // repaired, kept
  // One warning per cap in the job's stderr, not one per dropped point.
  // The follower reads the whole file after the run ends: wait for it.
  std::string text;
  BOOST_CHECK(wait_until(
      [&] {
        auto err = c.read_log(901, true);
        text = err ? chunk_text(*err) : std::string();
        return text.find("agent.max_points_per_s") != std::string::npos;
      },
      60s));
  auto count = [&](const std::string& needle) {
    size_t n = 0;
    for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
    return n;
  };
  BOOST_TEST(count("agent.max_metric_name_bytes") == 1u, text);
  BOOST_TEST(count("agent.max_series_per_run") == 1u, text);
  BOOST_TEST(count("agent.max_points_per_s") == 1u, text);
  a_normal_job_runs_right(c, 2, 902);
}

// srun, salloc and interactive sessions on a real two-node Trainyard
// (tests/support/cluster.h): srun inside a job starts its tasks with their
// ranks and exits as srun does; a multi-node step runs each rank once, on
// its node; srun outside a job allocates, streams and returns the exit
// code; `ty run --pty sh` is driven through a real pseudo-terminal.
#define BOOST_TEST_MODULE srun
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <pwd.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "cluster_client.h"

using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace tt = trainyard::testing;

namespace {

tt::Cluster& cluster() {
  static tt::Cluster c;
  return c;
}

std::string bin_dir() { return fs::path(tt::bin("ty")).parent_path().string(); }

std::map<std::string, std::string> user_env() {
  const char* path = std::getenv("PATH");
  return {{"TY_CONFIG", cluster().ty_config()}, {"PATH", bin_dir() + ":" + (path ? path : "/usr/bin:/bin")}};
}

// Submits `script` (a bash script with #SBATCH lines) and waits for it;
// returns the job id.
std::string run_script(const std::string& name, const std::string& script) {
  auto& c = cluster();
  std::string path = c.dir() + "/" + name;
  std::ofstream(path) << script;
  auto [rc, out] = c.ty({"submit", "--parsable", "-D", c.dir(), path});
  BOOST_REQUIRE_MESSAGE(rc == 0, out);
  std::string id = out.substr(0, out.find('\n'));
  auto [wrc, wout] = c.ty({"wait", id, "--timeout", "60"}, 90s);
  BOOST_TEST_INFO(wout << c.logs());
  return id;
}

std::multiset<std::string> lines_of(const std::string& text) {
  std::multiset<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.insert(l);
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(srun_in_a_job_starts_ntasks_tasks_each_with_its_rank) {
  auto& c = cluster();
  std::string id = run_script("ranks.sh", "#!/bin/bash\n#SBATCH --time=5 --output=ranks-%j.out\n"
                                          "srun -n 4 sh -c 'echo $SLURM_PROCID/$SLURM_LOCALID/$SLURM_NTASKS'\n"
                                          "srun -n 2 --label echo hello\n");
  std::string out = tt::read_file(c.dir() + "/ranks-" + id + ".out");
  BOOST_TEST((lines_of(out) == std::multiset<std::string>{"0/0/4", "1/1/4", "2/2/4", "3/3/4", "0: hello",
                                                          "1: hello"}),
             out);
}

BOOST_AUTO_TEST_CASE(srun_exits_with_the_failing_tasks_code_and_128_plus_a_killing_signal) {
  auto& c = cluster();
  std::string id = run_script("codes.sh", "#!/bin/bash\n#SBATCH --time=5 --output=codes-%j.out\n"
                                          "srun -n 3 sh -c 'exit $((SLURM_PROCID == 1 ? 7 : 0))'; echo code=$?\n"
                                          "srun -n 2 sh -c 'kill -9 $$'; echo killed=$?\n"
                                          "srun -n 2 true; echo ok=$?\n"
                                          "srun -n 1 no-such-command-here 2>/dev/null; echo missing=$?\n"
                                          // SIGTERM to srun alone: it passes it on to its tasks.
                                          "srun -n 2 sleep 100 & p=$!; sleep 1; kill $p; wait $p; echo term=$?\n");
  BOOST_TEST(tt::read_file(c.dir() + "/codes-" + id + ".out") ==
             "code=7\nkilled=137\nok=0\nmissing=127\nterm=143\n");
}

BOOST_AUTO_TEST_CASE(a_two_node_step_runs_each_rank_once_on_its_node) {
  auto& c = cluster();
  // As torchrun-style launchers read it: a global rank, a local rank, a node.
  // Node 1 is slower here: a gang ends when every node's run has ended,
  // not with node 0's, so node 1's ranks still print.
  std::string id = run_script("multi.sh", "#!/bin/bash\n#SBATCH -N 2 --ntasks-per-node=2 --time=5 --output=multi-%j-%n.out\n"
                                          "srun sh -c 'echo rank=$SLURM_PROCID local=$SLURM_LOCALID "
                                          "node=$SLURM_NODEID of=$SLURM_NTASKS'\n"
                                          "if [ \"$SLURM_NODEID\" = 1 ]; then sleep 2; fi\n");
  std::string both = tt::read_file(c.dir() + "/multi-" + id + "-0.out") +
                     tt::read_file(c.dir() + "/multi-" + id + "-1.out");
  BOOST_TEST((lines_of(both) == std::multiset<std::string>{"rank=0 local=0 node=0 of=4", "rank=1 local=1 node=0 of=4",
                                                           "rank=2 local=0 node=1 of=4",
                                                           "rank=3 local=1 node=1 of=4"}),
             both);
}

BOOST_AUTO_TEST_CASE(srun_outside_a_job_allocates_streams_the_output_and_returns_the_exit_code) {
  auto& c = cluster();
  std::string err = c.dir() + "/outside.err";
  auto [rc, out] = tt::run({"bash", "-c",
                            "srun -n 2 --label --time=1 sh -c 'echo out $SLURM_PROCID; echo oops >&2; exit 5' 2>" +
                                err},
                           60s, user_env());
  BOOST_TEST(rc == 5, out);
  BOOST_TEST((lines_of(out) == std::multiset<std::string>{"0: out 0", "1: out 1"}), out);
  BOOST_TEST(tt::read_file(err).find("0: oops") != std::string::npos, tt::read_file(err));
  auto [rc0, out0] = tt::run({"bash", "-c", "srun -t 1 echo fine"}, 60s, user_env());
  BOOST_TEST(rc0 == 0);
  BOOST_TEST(out0 == "fine\n");
}

namespace {

// `ty run --pty sh` on a pseudo-terminal of the test's own.
struct Session {
  int master = -1;
  pid_t pid = -1;
  std::string seen;
  std::string before;  // what came before the last expected text

  // `argv` from build/bin: {"ty", "run", "--pty", ...} or {"salloc", ...}.
  explicit Session(std::vector<std::string> argv = {"ty", "run", "--pty", "--time=2", "sh"}) {
    winsize ws{30, 100, 0, 0};
    auto env = user_env();
    argv[0] = bin_dir() + "/" + argv[0];
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    pid = forkpty(&master, nullptr, nullptr, &ws);
    if (pid == 0) {
      for (auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
      setenv("PS1", "$ ", 1);
      setenv("SHELL", "/bin/sh", 1);
      execv(args[0], args.data());
      _exit(127);
    }
  }
  ~Session() {
    if (pid > 0 && waitpid(pid, nullptr, WNOHANG) == 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
    if (master >= 0) close(master);
  }
  void type(const std::string& text) { BOOST_REQUIRE(write(master, text.data(), text.size()) == ssize_t(text.size())); }
  // Reads until `want` appears after what was already consumed.
  bool expect(const std::string& want, std::chrono::milliseconds timeout = 30s) {
    auto until = std::chrono::steady_clock::now() + timeout;
    while (seen.find(want) == std::string::npos) {
      if (std::chrono::steady_clock::now() > until) return false;
      pollfd p{master, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      char buf[4096];
      ssize_t n = read(master, buf, sizeof buf);
      if (n <= 0) return seen.find(want) != std::string::npos;
      seen.append(buf, static_cast<size_t>(n));
    }
    before = seen.substr(0, seen.find(want));
    seen.erase(0, seen.find(want) + want.size());
    return true;
  }
  std::optional<int> exit_code(std::chrono::milliseconds timeout) {
    int st = 0;
    if (!tt::wait_until([&] { return waitpid(pid, &st, WNOHANG) == pid; }, timeout)) return std::nullopt;
    pid = -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  }
};

}  // namespace

BOOST_AUTO_TEST_CASE(ty_run_pty_gives_a_terminal_with_resize_ctrl_c_and_the_shells_exit_code) {
  Session s;
  BOOST_REQUIRE(s.master >= 0);
  BOOST_REQUIRE_MESSAGE(s.expect("$ "), "no prompt: " << s.seen << cluster().logs());
  s.type("stty size\r");
  BOOST_TEST_REQUIRE(s.expect("30 100"), s.seen);
  winsize ws{40, 120, 0, 0};
  ioctl(s.master, TIOCSWINSZ, &ws);  // the user's window grows: ty gets SIGWINCH
  std::this_thread::sleep_for(500ms);
  s.type("stty size\r");
  BOOST_TEST_REQUIRE(s.expect("40 120"), s.seen);
  s.type("sleep 60; echo not-interrupted\r");
  BOOST_TEST_REQUIRE(s.expect("not-interrupted\r\n"), s.seen);  // the line as typed, echoed
  std::this_thread::sleep_for(500ms);
  s.type("\x03");  // Ctrl-C: the job's terminal interrupts the sleep, the prompt comes back well before 60 s
  BOOST_TEST_REQUIRE(s.expect("$ "), s.seen);
  // What the shell prints, never what the terminal echoes of the typed line
  // (which may come before the new prompt when the machine is slow).
  s.type("echo after-ctrl-c-$((6*7))\r");
  BOOST_TEST_REQUIRE(s.expect("after-ctrl-c-42"), s.seen);
  s.type("echo hi-$((1+1)); exit 3\r");
  BOOST_TEST(s.expect("hi-2"), s.seen);
  BOOST_TEST(s.exit_code(30s).value_or(-1) == 3);
}

BOOST_AUTO_TEST_CASE(salloc_gives_a_shell_in_an_allocation_that_ends_with_it_and_ty_logs_shows_the_session) {
  Session s({"salloc", "-t", "1"});
  BOOST_REQUIRE_MESSAGE(s.expect("$ "), "no prompt: " << s.seen);
  s.type("echo job-$SLURM_JOB_ID-$SLURM_NTASKS-end; exit\r");
  BOOST_TEST_REQUIRE(s.expect("\njob-"), s.seen);
  BOOST_TEST_REQUIRE(s.expect("-1-end"), s.seen);
  BOOST_TEST(s.exit_code(30s).value_or(-1) == 0);
  std::string id = s.before;
  BOOST_TEST_REQUIRE(!id.empty());
  // The session's output is in its log, as a batch job's is.
  auto [rc, out] = tt::run({bin_dir() + "/ty", "logs", id}, 30s, user_env());
  BOOST_TEST_INFO(out);
  BOOST_TEST(rc == 0);
  BOOST_TEST(out.find("job-" + id + "-1-end") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(only_the_jobs_user_may_attach_to_its_terminal) {
  Session s;
  BOOST_REQUIRE_MESSAGE(s.expect("$ "), "no prompt: " << s.seen);
  const char* user = std::getenv("USER");
  auto me = tt::connect(cluster(), "user:" + std::string(user && *user ? user : getpwuid(getuid())->pw_name));
  trainyard::client::JobFilter f;
  f.states = {trainyard::fb::JobState::Running};
  auto jobs = me.list(f);
  BOOST_REQUIRE(jobs && !jobs->empty());
  auto& job = jobs->back();
  auto other = tt::connect(cluster(), "user:bob");
  auto r = other.terminal_io(job.nodes.at(0), job.job_id, "echo pwned\r", 0, 0, 0, 0);
  BOOST_TEST((!r && r.status().code() == trainyard::ErrorCode::PermissionDenied), r.status().message());
  s.type("exit 0\r");
  BOOST_TEST(s.exit_code(30s).value_or(-1) == 0);
  BOOST_TEST(s.seen.find("pwned") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(an_interactive_session_on_two_nodes_is_refused_naming_why) {
  auto [rc, out] = tt::run({bin_dir() + "/ty", "run", "--pty", "-N", "2", "-t", "1", "sh"}, 30s, user_env());
  BOOST_TEST(rc == 2);
  BOOST_TEST(out.find("one terminal on one node") != std::string::npos, out);
}

// Jobs run as their submitting user (issue 11), with real Unix users that
// the test creates with useradd: each job prints its own uid, its logs are
// its user's, and one user's job can neither signal another's processes
// nor read its logs. Needs root (to create users and let the agent switch
// to them); anywhere else it says it skipped.
#define BOOST_TEST_MODULE run_as
#include <boost/test/unit_test.hpp>

#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <regex>
#include <sstream>

#include "cluster.h"
#include "cluster_client.h"
#include "trainyard/client.h"

using namespace std::chrono_literals;
using namespace trainyard;
using trainyard::testing::Cluster;
using trainyard::testing::ClusterOptions;
using trainyard::testing::connect;
using trainyard::testing::read_file;
using trainyard::testing::run;
using trainyard::testing::wait_until;

namespace {

const char* kUsers[] = {"tysec1", "tysec2"};

struct Users {
  bool ok = false;
  std::string why;
  Users() {
    if (::geteuid() != 0) {
      why = "not root";
      return;
    }
    for (auto* u : kUsers) {
      if (::getpwnam(u)) continue;
      auto added = run({"useradd", "--no-create-home", "--shell", "/bin/sh", u});
      if (added.first != 0) {
        why = "useradd " + std::string(u) + " failed: " + added.second;
        return;
      }
    }
    ok = true;
  }
  ~Users() {
    for (auto* u : kUsers) run({"userdel", u});
  }
};

uid_t uid_of(const char* user) { return ::getpwnam(user)->pw_uid; }

fb::JobSpecT job(const std::string& shell) {
  fb::JobSpecT s;
  s.name = "whoami";
  s.account = "research";
  s.command = {"sh", "-c", shell};
  s.time_limit_s = 120;
  s.grace_s = 1;
  return s;
}

// One node, "node-a", whose agent runs each job as its submitting user
// (plus `extra` settings), for `users`.
ClusterOptions one_node_as_users(std::vector<std::string> users, std::vector<std::string> extra = {}) {
  ClusterOptions o;
  o.agents = {{"node-a", 0}};
  o.agents[0].extra = {"agent.run_as=submitter"};
  o.agents[0].extra.insert(o.agents[0].extra.end(), extra.begin(), extra.end());
  o.users = std::move(users);
  return o;
}

}  // namespace

BOOST_AUTO_TEST_CASE(jobs_run_as_their_users_and_cannot_touch_each_other) {
  Users users;
  if (!users.ok) {
    BOOST_TEST_MESSAGE("SKIPPED: jobs as real Unix users need root and useradd (" << users.why << ")");
    return;
  }
  Cluster c(one_node_as_users({kUsers[0], kUsers[1]}));
  ::chmod(c.dir().c_str(), 0711);  // users pass through the test's directory to their run directories
  auto u1 = connect(c, std::string("user:") + kUsers[0]);
  auto u2 = connect(c, std::string("user:") + kUsers[1]);

  auto first = u1.submit(job("id -u; sleep 60"));
  BOOST_REQUIRE_MESSAGE(first.ok(), first.status().to_string());
  uint64_t id1 = first->job_ids[0];
  // Its log, found as root: the other user's job will try to read it.
  std::string log1;
  BOOST_REQUIRE(wait_until(
      [&] {
        for (auto& e : std::filesystem::directory_iterator(c.dir() + "/node-a.runs")) {
          if (e.path().filename().string().rfind(std::to_string(id1) + "-", 0) == 0) log1 = e.path() / "stdout";
        }
        return !log1.empty() && read_file(log1).find('\n') != std::string::npos;
      },
      30s));
  BOOST_TEST(read_file(log1) == std::to_string(uid_of(kUsers[0])) + "\n");
  struct stat st{};
  BOOST_REQUIRE_EQUAL(::stat(log1.c_str(), &st), 0);
  BOOST_TEST(st.st_uid == uid_of(kUsers[0]));

  std::string probe = "id -u; for p in $(pgrep -u " + std::string(kUsers[0]) +
                      "); do kill -TERM $p 2>/dev/null && echo signalled; done; echo done-signalling; "
                      "cat " + log1 + " >/dev/null 2>&1 && echo read-it || echo read-refused";
  auto second = u2.submit(job(probe));
  BOOST_REQUIRE(second.ok());
  auto end = u2.wait({second->job_ids[0]}, 60s);
  BOOST_REQUIRE_MESSAGE(end.ok(), end.status().to_string() + c.logs());
  std::string out;
  BOOST_REQUIRE(u2.logs(second->job_ids[0], {}, [&](std::string_view s) { out += s; }).ok());
  BOOST_TEST(out == std::to_string(uid_of(kUsers[1])) + "\ndone-signalling\nread-refused\n");
  // The first job is still running: nothing of the other user reached it.
  auto rec = u1.status(id1);
  BOOST_REQUIRE(rec.ok());
  BOOST_TEST((rec->state == fb::JobState::Running));
  BOOST_TEST(u1.cancel(id1).ok());
}

BOOST_AUTO_TEST_CASE(a_user_without_an_account_on_the_node_is_refused_with_a_reason) {
  if (::geteuid() != 0) {
    BOOST_TEST_MESSAGE("SKIPPED: the agent switches users only as root");
    return;
  }
  Cluster c(one_node_as_users({"nosuchuser"}));
  auto cl = connect(c, "user:nosuchuser");
  auto sub = cl.submit(job("true"));
  BOOST_REQUIRE(sub.ok());
  auto end = cl.wait({sub->job_ids[0]}, 60s);
  BOOST_REQUIRE(end.ok());
  BOOST_TEST((end->at(0).state == fb::JobState::Failed));
  BOOST_TEST(end->at(0).reason.find("user nosuchuser has no account on node node-a") != std::string::npos,
             end->at(0).reason);
}

namespace {

// The host's cgroup v2 mount: /sys/fs/cgroup, or /sys/fs/cgroup/unified on
// a hybrid host. Empty when there is none.
std::string cgroup2_mount() {
  std::istringstream is(read_file("/proc/self/mounts"));
  for (std::string dev, dir, type, rest; is >> dev >> dir >> type && std::getline(is, rest);) {
    if (type == "cgroup2") return dir;
  }
  return "";
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_job_in_its_cgroup_cannot_leave_it_change_it_or_outlive_it) {
  Users users;
  std::string mount = cgroup2_mount();
  if (!users.ok || mount.empty()) {
    BOOST_TEST_MESSAGE("SKIPPED: needs root, useradd and a cgroup v2 mount ("
                       << (users.ok ? std::string("no cgroup2 in /proc/self/mounts") : users.why) << ")");
    return;
  }
  // A root-owned directory delegated to this test's agent, as an admin
  // would (agent.cgroup_root), left when the test ends.
  std::string root = mount + "/trainyard-test-" + std::to_string(::getpid());
  BOOST_REQUIRE_MESSAGE(::mkdir(root.c_str(), 0755) == 0 || errno == EEXIST, "mkdir " << root);
  struct Rmdir {
    std::string path;
    ~Rmdir() { ::rmdir(path.c_str()); }
  } rmdir_root{root};
  Cluster c(one_node_as_users({kUsers[0]}, {"agent.cgroup_root=" + root}));
  ::chmod(c.dir().c_str(), 0711);
  auto u1 = connect(c, std::string("user:") + kUsers[0]);
  // The job tries to move itself to the hierarchy's root and to its parent,
  // to change its own cgroup's files and to make a cgroup below it; then
  // leaves a daemon (setsid, double fork) and waits.
  std::string m = mount;
  std::string script =
      "cg=$(sed -n 's/^0:://p' /proc/self/cgroup); echo \"cgroup=$cg\"; "
      "echo $$ > " + m + "/cgroup.procs 2>/dev/null && echo left-to-root || echo root-refused; "
      "echo $$ > " + m + "$(dirname $cg)/cgroup.procs 2>/dev/null && echo left-to-parent || echo parent-refused; "
      "echo 1 > " + m + "$cg/cgroup.max.descendants 2>/dev/null && echo changed-it || echo change-refused; "
      "mkdir " + m + "$cg/escape 2>/dev/null && echo made-a-child || echo child-refused; "
      "(setsid sleep 300 </dev/null >/dev/null 2>&1 & echo \"daemon=$!\"); "
      "echo ready; sleep 300";
  auto sub = u1.submit(job(script));
  BOOST_REQUIRE_MESSAGE(sub.ok(), sub.status().to_string());
  uint64_t id = sub->job_ids[0];
  std::string out;
  BOOST_REQUIRE_MESSAGE(wait_until(
                            [&] {
                              out.clear();
                              (void)u1.logs(id, {}, [&](std::string_view s) { out += s; });
                              return out.find("ready\n") != std::string::npos;
                            },
                            30s),
                        out + c.logs());
  BOOST_TEST_INFO(out);
  std::smatch cg, daemon;
  BOOST_REQUIRE(std::regex_search(out, cg, std::regex("cgroup=(/[^\n]*)\n")));
  BOOST_REQUIRE(std::regex_search(out, daemon, std::regex("daemon=(\\d+)\n")));
  std::string run_cgroup = mount + cg[1].str();
  // The run's cgroup is the agent's, below the delegated root.
  BOOST_TEST(run_cgroup.rfind(root + "/", 0) == 0u);
  BOOST_TEST(out.find("root-refused\nparent-refused\nchange-refused\nchild-refused\n") != std::string::npos);
  pid_t pid = std::stoi(daemon[1]);
  // The daemon is still in the run's cgroup.
  BOOST_TEST(read_file("/proc/" + std::to_string(pid) + "/cgroup").find("0::" + cg[1].str()) != std::string::npos);

  BOOST_REQUIRE(u1.cancel(id).ok());
  auto end = u1.wait({id}, 60s);
  BOOST_REQUIRE_MESSAGE(end.ok(), end.status().to_string());
  BOOST_TEST((end->at(0).state == fb::JobState::Cancelled));
  // Nothing of the job is left, and neither is its cgroup.
  BOOST_TEST(wait_until([&] { return ::kill(pid, 0) != 0 && errno == ESRCH; }, 10s));
  BOOST_TEST(wait_until([&] { return !std::filesystem::exists(run_cgroup); }, 10s));
}

BOOST_AUTO_TEST_CASE(a_job_run_as_its_user_can_call_srun) {
  Users users;
  if (!users.ok) {
    BOOST_TEST_MESSAGE("SKIPPED: jobs as real Unix users need root and useradd (" << users.why << ")");
    return;
  }
  Cluster c(one_node_as_users({kUsers[0]}));
  ::chmod(c.dir().c_str(), 0711);
  auto u1 = connect(c, std::string("user:") + kUsers[0]);
  // The srun on the job's PATH (the agent's link to ty) must be reachable
  // and runnable by the job's user, and its tasks run as that user too.
  auto sub = u1.submit(job("srun -n 2 sh -c 'echo rank=$SLURM_PROCID uid=$(id -u)' | sort"));
  BOOST_REQUIRE_MESSAGE(sub.ok(), sub.status().to_string());
  auto end = u1.wait({sub->job_ids[0]}, 60s);
  BOOST_REQUIRE_MESSAGE(end.ok(), end.status().to_string());
  std::string out;
  BOOST_REQUIRE(u1.logs(sub->job_ids[0], {}, [&](std::string_view s) { out += s; }).ok());
  BOOST_TEST_INFO(out + c.logs());
  BOOST_TEST((end->at(0).state == fb::JobState::Succeeded));
  std::string uid = std::to_string(uid_of(kUsers[0]));
  BOOST_TEST(out == "rank=0 uid=" + uid + "\nrank=1 uid=" + uid + "\n");
}

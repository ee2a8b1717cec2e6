// Jobs end to end: the real bus, scheduler, resource broker and two agents
// with declared GPUs, driven through the client library and `ty` as a
// researcher would. Jobs are real child processes.
#define BOOST_TEST_MODULE jobs_e2e
#include <boost/test/unit_test.hpp>

#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "cluster.h"
#include "cluster_client.h"
#include "cluster_jobs.h"
#include "trainyard/client.h"

using namespace std::chrono_literals;
using namespace trainyard;
using trainyard::testing::Cluster;
using trainyard::testing::ClusterOptions;
using trainyard::testing::connect;
using trainyard::testing::job;
using trainyard::testing::read_file;
using trainyard::testing::submit;
using trainyard::testing::wait_until;

namespace {

fb::JobRecordT wait_job(client::Client& cl, Cluster& c, uint64_t id, std::chrono::seconds timeout = 60s) {
  auto r = cl.wait({id}, timeout);
  BOOST_REQUIRE_MESSAGE(r.ok(), "job " << id << ": " << r.status().to_string() << "\n" << c.logs());
  return r->at(0);
}

bool pid_alive(pid_t pid) { return ::kill(pid, 0) == 0; }

std::string state_name(fb::JobState s) { return fb::EnumNameJobState(s); }

std::string history(const fb::JobRecordT& r) {
  std::string out;
  for (auto& t : r.history) {
    if (t) out += "  -> " + state_name(t->to) + " at " + std::to_string(t->time_ns) + ": " + t->reason + "\n";
  }
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_job_runs_a_real_command_and_its_exit_code_and_logs_arrive) {
  Cluster c;
  auto cl = connect(c);
  auto ok = submit(cl, job("echo hello from $TY_JOB_ID; echo oops >&2"));
  auto bad = submit(cl, job("echo failing; exit 3"));
  auto r = wait_job(cl, c, ok);
  BOOST_CHECK_EQUAL(state_name(r.state), "Succeeded");
  BOOST_CHECK_EQUAL(r.exit_code, 0);
  auto f = wait_job(cl, c, bad);
  BOOST_CHECK_EQUAL(state_name(f.state), "Failed");
  BOOST_CHECK_EQUAL(f.exit_code, 3);

  std::string out, err;
  BOOST_REQUIRE(cl.logs(ok, {}, [&](std::string_view s) { out += s; }).ok());
  client::LogOptions eo;
  eo.stderr_stream = true;
  BOOST_REQUIRE(cl.logs(ok, eo, [&](std::string_view s) { err += s; }).ok());
  BOOST_CHECK_EQUAL(out, "hello from " + std::to_string(ok) + "\n");
  BOOST_CHECK_NE(err.find("oops"), std::string::npos);
  // The history records every transition.
  BOOST_CHECK_GE(r.history.size(), 3u);
  BOOST_CHECK_EQUAL(state_name(r.history.back()->to), "Succeeded");
}

BOOST_AUTO_TEST_CASE(each_job_sees_only_its_gpus_and_two_jobs_never_share_one) {
  Cluster c;  // two nodes x two GPUs
  auto cl = connect(c);
  std::string marks = c.dir() + "/gpus.txt";
  std::vector<uint64_t> ids;
  for (int i = 0; i < 6; ++i) {
    ids.push_back(submit(cl, job("echo \"$TY_JOB_ID $CUDA_VISIBLE_DEVICES $(date +%s%N) start\" >> " + marks +
                                 "; sleep 1; echo \"$TY_JOB_ID $CUDA_VISIBLE_DEVICES $(date +%s%N) end\" >> " + marks)));
  }
  auto r = cl.wait(ids, 90s);
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().to_string() << c.logs());
  // Per (node, gpu): the intervals of the jobs that held it.
  std::map<std::pair<std::string, std::string>, std::vector<std::pair<int64_t, int64_t>>> held;
  std::map<uint64_t, int64_t> starts, ends;
  std::map<uint64_t, std::string> visible;
  std::istringstream in(read_file(marks));
  uint64_t id;
  std::string gpu, what;
  int64_t t;
  while (in >> id >> gpu >> t >> what) {
    (what == "start" ? starts : ends)[id] = t;
    visible[id] = gpu;
  }
  for (auto& rec : *r) {
    BOOST_CHECK_EQUAL(state_name(rec.state), "Succeeded");
    BOOST_REQUIRE_EQUAL(rec.gpu_indices.size(), 1u);
    BOOST_REQUIRE_EQUAL(rec.nodes.size(), 1u);
    // The job saw exactly the GPU it was granted, nothing else.
    BOOST_CHECK_EQUAL(visible[rec.job_id], std::to_string(rec.gpu_indices[0]));
    held[{rec.nodes[0], visible[rec.job_id]}].push_back({starts[rec.job_id], ends[rec.job_id]});
  }
  for (auto& [where, intervals] : held) {
    std::sort(intervals.begin(), intervals.end());
    for (size_t i = 1; i < intervals.size(); ++i) {
      BOOST_CHECK_MESSAGE(intervals[i].first >= intervals[i - 1].second,
                          "two jobs shared GPU " << where.second << " of " << where.first);
    }
  }
  BOOST_CHECK_EQUAL(held.size(), 4u);  // the six jobs spread over all four GPUs
}

BOOST_AUTO_TEST_CASE(cancel_kills_the_whole_process_group) {
  Cluster c;
  auto cl = connect(c);
  std::string d = c.dir();
  auto id = submit(cl, job("sleep 300 & echo $! > " + d + "/child.pid; echo $$ > " + d + "/parent.pid; wait"));
  BOOST_REQUIRE_MESSAGE(wait_until([&] { return !read_file(d + "/child.pid").empty() && !read_file(d + "/parent.pid").empty(); }, 30s),
                        c.logs());
  pid_t child = std::stoi(read_file(d + "/child.pid"));
  pid_t parent = std::stoi(read_file(d + "/parent.pid"));
  BOOST_CHECK(pid_alive(child));
  BOOST_REQUIRE(cl.cancel(id, "no longer needed").ok());
  auto r = wait_job(cl, c, id, 30s);
  BOOST_CHECK_EQUAL(state_name(r.state), "Cancelled");
  BOOST_CHECK(wait_until([&] { return !pid_alive(child) && !pid_alive(parent); }, 10s));
}

BOOST_AUTO_TEST_CASE(a_job_over_its_time_limit_is_stopped_and_marked_timed_out) {
  Cluster c;
  auto cl = connect(c);
  auto spec = job("trap '' TERM; sleep 300", 1, 1);  // ignores SIGTERM: needs the SIGKILL
  spec.grace_s = 1;
  auto started = std::chrono::steady_clock::now();
  auto id = submit(cl, spec);
  auto r = wait_job(cl, c, id, 30s);
  BOOST_CHECK_EQUAL(state_name(r.state), "TimedOut");
  BOOST_CHECK_LT(std::chrono::steady_clock::now() - started, 15s);
}

BOOST_AUTO_TEST_CASE(an_array_of_20_with_limit_4_never_runs_more_than_4_at_once) {
  ClusterOptions o;
  o.agents = {{"node-a", 4}, {"node-b", 4}};  // 8 GPUs: only the %4 limit holds tasks back
  Cluster c(o);
  auto cl = connect(c);
  std::string marks = c.dir() + "/array.txt";
  auto spec = job("echo \"$(date +%s%N) 1 $TY_ARRAY_INDEX\" >> " + marks + "; sleep 0.3; echo \"$(date +%s%N) -1 $TY_ARRAY_INDEX\" >> " + marks);
  spec.array = "0-19%4";
  auto sub = cl.submit(spec);
  BOOST_REQUIRE_MESSAGE(sub.ok(), sub.status().to_string());
  BOOST_REQUIRE_EQUAL(sub->job_ids.size(), 20u);
  auto r = cl.wait(sub->job_ids, 120s);
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().to_string() << c.logs());
  for (auto& rec : *r) BOOST_CHECK_EQUAL(state_name(rec.state), "Succeeded");
  std::vector<std::pair<int64_t, int>> events;
  std::set<int> indices;
  std::istringstream in(read_file(marks));
  int64_t t;
  int delta, index;
  while (in >> t >> delta >> index) {
    events.push_back({t, delta});
    indices.insert(index);
  }
  BOOST_CHECK_EQUAL(indices.size(), 20u);
  std::sort(events.begin(), events.end());  // at equal times the end (-1) comes first
  int running = 0, peak = 0;
  for (auto& [time, d] : events) peak = std::max(peak, running += d);
  BOOST_CHECK_LE(peak, 4);
  BOOST_CHECK_GE(peak, 2);  // and it did run tasks side by side
}

BOOST_AUTO_TEST_CASE(a_dependent_job_waits_for_its_dependency) {
  Cluster c;
  auto cl = connect(c);
  auto first = submit(cl, job("sleep 1"));
  auto then = job("true");
  then.dependencies.push_back(std::make_unique<fb::DependencyT>());
  then.dependencies.back()->kind = fb::DependencyKind::AfterOk;
  then.dependencies.back()->job_id = first;
  auto second = submit(cl, then);
  auto failing = submit(cl, job("exit 1"));
  auto never = job("true");
  never.dependencies.push_back(std::make_unique<fb::DependencyT>());
  never.dependencies.back()->kind = fb::DependencyKind::AfterOk;
  never.dependencies.back()->job_id = failing;
  auto orphan = submit(cl, never);

  auto a = wait_job(cl, c, first);
  auto b = wait_job(cl, c, second);
  BOOST_CHECK_EQUAL(state_name(b.state), "Succeeded");
  BOOST_CHECK_GE(b.start_time_ns, a.end_time_ns);
  auto o = wait_job(cl, c, orphan);
  BOOST_CHECK_NE(state_name(o.state), "Succeeded");
  BOOST_CHECK_EQUAL(o.start_time_ns, 0);  // it never ran
}

BOOST_AUTO_TEST_CASE(a_job_asking_for_more_gpus_than_any_node_has_is_refused_at_submit) {
  Cluster c;
  auto cl = connect(c);
  auto r = cl.submit(job("true", 64));
  BOOST_REQUIRE(!r.ok());
  BOOST_CHECK(r.status().code() == ErrorCode::InvalidArgument);
  BOOST_CHECK_NE(r.status().message().find("GPU"), std::string::npos);
}

BOOST_AUTO_TEST_CASE(killing_an_agent_requeues_its_jobs_onto_the_other_node) {
  Cluster c;
  auto cl = connect(c);
  auto spec = job("sleep 300");
  spec.max_retries = 2;
  auto id = submit(cl, spec);
  std::string first_node;
  BOOST_REQUIRE(wait_until(
      [&] {
        auto s = cl.status(id);
        if (!s.ok() || s->state != fb::JobState::Running) return false;
        first_node = s->nodes.at(0);
        return true;
      },
      30s));
  // The node dies: its agent and everything it ran.
  c.kill9(first_node);
  trainyard::testing::kill_processes_mentioning(c.dir() + "/" + first_node + ".runs");
  std::string second_node;
  BOOST_REQUIRE_MESSAGE(wait_until(
                            [&] {
                              auto s = cl.status(id);
                              if (!s.ok() || s->state != fb::JobState::Running || s->attempt < 2) return false;
                              second_node = s->nodes.at(0);
                              return true;
                            },
                            60s),
                        c.logs());
  BOOST_CHECK_NE(second_node, first_node);
  BOOST_REQUIRE(cl.cancel(id).ok());
}

BOOST_AUTO_TEST_CASE(a_node_whose_agent_comes_back_with_a_wiped_directory_requeues_what_it_ran) {
  // A disk swap or a reimage: the agent's directory is gone and it comes
  // back under the same name before the broker's node timeout. The runs it
  // held are gone with it; their jobs must run again, not stay "Running".
  ClusterOptions o;
  o.agents = {{"node-a"}};
  Cluster c(o);
  auto cl = connect(c);
  auto spec = job("sleep 300");
  spec.max_retries = 2;
  auto id = submit(cl, spec);
  BOOST_REQUIRE(wait_until(
      [&] {
        auto s = cl.status(id);
        return s.ok() && s->state == fb::JobState::Running;
      },
      30s));
  c.kill9("node-a");
  // Everything of the node goes: its jobs (cwd in node-a.runs) and their
  // supervisors (whose command lines name node-a.db/run-state), which would
  // otherwise write an exit file into the directory being wiped.
  BOOST_REQUIRE(trainyard::testing::kill_processes_mentioning_until_gone(c.dir() + "/node-a."));
  std::filesystem::remove_all(c.dir() + "/node-a.db");
  std::filesystem::remove_all(c.dir() + "/node-a.runs");
  c.start("node-a");
  fb::JobRecordT last;
  std::string error;
  BOOST_REQUIRE_MESSAGE(wait_until(
                            [&] {
                              auto s = cl.status(id);
                              if (s.ok()) last = *s;
                              if (!s.ok()) error = s.status().to_string();
                              return s.ok() && s->state == fb::JobState::Running && s->attempt >= 2;
                            },
                            30s),
                        "job " << id << " is " << state_name(last.state) << " attempt " << last.attempt << ": "
                               << last.reason << " " << error << "\n"
                               << history(last) << c.logs());
  BOOST_REQUIRE(cl.cancel(id).ok());
}

BOOST_AUTO_TEST_CASE(sigkill_of_scheduler_and_broker_in_the_middle_of_200_jobs_loses_none_and_runs_none_twice) {
  ClusterOptions o;
  o.agents = {{"node-a", 4}, {"node-b", 4}};
  Cluster c(o);
  auto cl = connect(c);
  std::string runs = c.dir() + "/runs.txt";
  std::vector<uint64_t> ids;
  for (int i = 0; i < 200; ++i) ids.push_back(submit(cl, job("echo $TY_JOB_ID >> " + runs + "; sleep 0.2")));
  auto done_count = [&] {
    auto text = read_file(runs);
    return std::count(text.begin(), text.end(), '\n');
  };
  BOOST_REQUIRE(wait_until([&] { return done_count() >= 40; }, 60s));
  c.kill9("scheduler");
  c.start("scheduler");
  BOOST_REQUIRE(wait_until([&] { return done_count() >= 100; }, 60s));
  c.kill9("broker");
  c.start("broker");
  auto r = cl.wait(ids, 240s);
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().to_string() << c.logs());
  for (auto& rec : *r) BOOST_CHECK_EQUAL(state_name(rec.state), "Succeeded");
  std::map<uint64_t, int> times;
  std::istringstream in(read_file(runs));
  uint64_t id;
  while (in >> id) ++times[id];
  BOOST_CHECK_EQUAL(times.size(), 200u);
  for (auto& [job_id, n] : times) BOOST_CHECK_MESSAGE(n == 1, "job " << job_id << " ran " << n << " times");
}

BOOST_AUTO_TEST_CASE(an_sbatch_script_runs_unchanged_and_a_bad_one_is_refused_with_its_line) {
  Cluster c;
  std::string script = c.dir() + "/train.sh";
  std::ofstream(script) << "#!/bin/bash\n#SBATCH --job-name=resnet\n#SBATCH -A vision\n#SBATCH --gres=gpu:A100:1\n"
                           "#SBATCH --time=00:05:00\n#SBATCH --cpus-per-task=2\n#SBATCH --mem=1G\n"
                           "echo \"trained on $CUDA_VISIBLE_DEVICES\"\n";
  auto [rc, out] = c.ty({"submit", script, "--wait"}, 60s);
  BOOST_CHECK_MESSAGE(rc == 0, out << c.logs());
  auto [qrc, queue] = c.ty({"queue", "--all", "--json"});
  BOOST_CHECK_EQUAL(qrc, 0);
  BOOST_CHECK_NE(queue.find("resnet"), std::string::npos);
  auto [lrc, table] = c.ty({"queue", "--all", "-l"});
  BOOST_CHECK_EQUAL(lrc, 0);
  BOOST_CHECK_NE(table.find("FAIRSHARE"), std::string::npos);

  std::string bad = c.dir() + "/bad.sh";
  std::ofstream(bad) << "#!/bin/bash\n#SBATCH --job-name=x\n#SBATCH --time=soon\necho hi\n";
  auto [brc, bout] = c.ty({"submit", bad});
  BOOST_CHECK_EQUAL(brc, 2);
  BOOST_CHECK_NE(bout.find("line 3"), std::string::npos);
}

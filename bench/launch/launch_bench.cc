// bench-launch: submit-to-process-started latency on an idle node, through
// the real bus, scheduler, resource broker and agent (real processes on
// loopback). Each job writes the wall time at which its process began; the
// latency is that minus the time the client sent the submission.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>

#include <CLI/CLI.hpp>

#include "cluster.h"
#include "cluster_client.h"
#include "trainyard/client.h"

using namespace trainyard;
using namespace std::chrono_literals;

int main(int argc, char** argv) {
  CLI::App app{"bench-launch: submit-to-process-started latency on an idle node"};
  int n = 100;
  app.add_option("-n,--jobs", n, "jobs, submitted one at a time");
  CLI11_PARSE(app, argc, argv);

  testing::ClusterOptions o;
  o.agents = {{"node-a", 8}};
  testing::Cluster c(o);
  // As a user does: with their own key (the cluster runs under CURVE).
  client::Client cl = testing::connect(c, "user:alice");
  std::string dir = c.dir() + "/starts";
  std::filesystem::create_directories(dir);

  std::vector<double> ms;
  for (int i = 0; i < n; ++i) {
    fb::JobSpecT s;
    s.name = "launch";
    s.user = "alice";
    s.account = "vision";
    s.gpus_per_node = 1;
    s.time_limit_s = 60;
    // `date` runs first thing: its time is when the job's process began.
    s.command = {"/bin/sh", "-c", "date +%s%N > " + dir + "/$TY_JOB_ID"};
    auto sent = std::chrono::duration_cast<std::chrono::nanoseconds>(
                    std::chrono::system_clock::now().time_since_epoch()).count();
    auto r = cl.submit(s);
    if (!r.ok()) {
      std::fprintf(stderr, "submit failed: %s\n", r.status().to_string().c_str());
      return 1;
    }
    auto w = cl.wait(r->job_ids, 30s);
    if (!w.ok()) {
      std::fprintf(stderr, "wait failed: %s\n%s\n", w.status().to_string().c_str(), c.logs().c_str());
      return 1;
    }
    auto text = testing::read_file(dir + "/" + std::to_string(r->job_ids[0]));
    if (text.empty()) continue;
    ms.push_back((std::stoll(text) - sent) / 1e6);
  }
  std::sort(ms.begin(), ms.end());
  auto pct = [&](double p) { return ms[std::min(ms.size() - 1, static_cast<size_t>(p * ms.size()))]; };
  std::printf("bench-launch: %zu jobs, submit -> process started on an idle node (bus, scheduler, broker, agent)\n",
              ms.size());
  std::printf("  p50 %.1f ms (target <= 20)   p99 %.1f ms (target <= 100)   min %.1f   max %.1f\n", pct(0.5),
              pct(0.99), ms.front(), ms.back());
  return 0;
}

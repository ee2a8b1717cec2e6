// bench-schedule: the scheduler core alone (no sockets, no disk) with
// 10,000 nodes of 8 GPUs and 100,000 pending jobs of mixed sizes: the time
// of a full cycle, of the incremental cycle after one job ends, and the
// process's memory. Prints each figure next to the target. By
// default the full policy is on (--policy fairshare+backfill: fair share,
// EASY reservations, quotas with a guarantee, preemption by tier);
// --policy priority is the plain tier-then-submission order.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "core/policy.h"
#include "core/scheduler.h"

using namespace trainyard;
using namespace trainyard::scheduler;
using Clock = std::chrono::steady_clock;

namespace {

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

long status_kb(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field, 0) == 0) return std::stol(line.substr(std::strlen(field)));
  }
  return -1;
}

fb::NodeInfoT make_node(int i) {
  fb::NodeInfoT n;
  n.name = "node-" + std::to_string(i);
  for (uint32_t g = 0; g < 8; ++g) {
    auto gpu = std::make_unique<fb::GpuInfoT>();
    gpu->index = g;
    gpu->type = i % 2 ? "H100" : "A100";
    n.gpus.push_back(std::move(gpu));
  }
  n.cpus = 128;
  n.memory_mb = 1'024'000;
  return n;
}

}  // namespace

int main(int argc, char** argv) {
  int nodes = 10'000, jobs = 100'000, rounds = 200;
  std::string policy = "fairshare+backfill";
  bool quotas = true;  // --quotas 0: no quotas, guarantee or preemption
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--nodes")) nodes = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--jobs")) jobs = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--rounds")) rounds = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--policy")) policy = argv[i + 1];
    if (!std::strcmp(argv[i], "--quotas")) quotas = std::atoi(argv[i + 1]) != 0;
  }
  std::mt19937_64 rng(42);
  SchedulerConfig config;
  bool full_policy = policy != "priority" && policy != "fifo" && quotas;
  config.backfill = backfill_for(policy);
  if (full_policy) {
    // Shares, a capped account, a guaranteed one, preemption by tier.
    for (int a = 0; a < 10; ++a) config.fairshare.shares["acct" + std::to_string(a)] = 1 + a % 3;
    config.quotas["acct0"].max_gpus = {{"", 12'000}, {"A100", 6'000}};
    config.quotas["acct1"].guaranteed_gpus = {{"", 8'000}};
    config.preemption.tiers = true;
  }
  auto made = make_policy(policy, config.fairshare);
  if (!made) {
    std::fprintf(stderr, "--policy: unknown policy '%s'\n", policy.c_str());
    return 2;
  }
  Scheduler s{config, std::move(made)};
  int64_t now = 1'000'000'000;
  for (int i = 0; i < nodes; ++i) s.node_up(make_node(i));

  // Mixed sizes, as on a deep-learning cluster: mostly small jobs, some
  // whole nodes, a few 2-node gangs; most take any GPU type.
  auto t = Clock::now();
  for (int i = 0; i < jobs; ++i) {
    fb::JobSpecT spec;
    spec.user = "user" + std::to_string(i % 50);
    spec.account = "acct" + std::to_string(i % 10);
    spec.command = {"train"};
    spec.time_limit_s = 3600;
    int r = static_cast<int>(rng() % 100);
    spec.gpus_per_node = r < 50 ? 1 : r < 70 ? 2 : r < 85 ? 4 : 8;
    if (r >= 95) spec.nodes = 2;
    spec.cpus = spec.gpus_per_node * 4;
    spec.memory_mb = spec.gpus_per_node * 32'000;
    int tr = static_cast<int>(rng() % 10);
    spec.gpu_type = tr == 0 ? "A100" : tr == 1 ? "H100" : "";
    spec.priority = rng() % 10 == 0 ? 1 : 0;
    auto res = s.submit(spec, now);
    if (!res) {
      std::fprintf(stderr, "submit failed: %s\n", res.status().to_string().c_str());
      return 1;
    }
  }
  double submit_ms = ms_since(t);
  s.take_output();
  long rss_pending = status_kb("VmRSS:");

  uint64_t next_lease = 1;
  std::map<JobId, std::vector<uint64_t>> running;
  auto grant = [&](const Output& out) {
    for (auto& a : out.allocations) {
      std::vector<uint64_t> ids;
      for (size_t r = 0; r < a.nodes.size(); ++r) ids.push_back(next_lease++);
      s.allocated(a.job, a.attempt, ids, now);
      for (size_t r = 0; r < a.nodes.size(); ++r) {
        s.lease_granted(Grant{ids[r], a.job, a.attempt, a.nodes[r].node, a.nodes[r].gpus, a.nodes[r].cpus,
                              a.nodes[r].memory_mb, static_cast<uint32_t>(r)},
                        now);
      }
      s.run_started(a.job, a.attempt, ids[0], now, now);
      running[a.job] = ids;
    }
  };

  t = Clock::now();
  s.tick(now);
  size_t placed = s.cycle(now);
  double full_ms = ms_since(t);
  grant(s.take_output());
  s.take_output();

  // One job ends, then a cycle: repeated, with the median and worst.
  std::vector<double> inc;
  size_t inc_placed = 0;
  for (int i = 0; i < rounds && !running.empty(); ++i) {
    now += 1'000'000;
    auto it = running.begin();
    std::advance(it, static_cast<long>(rng() % running.size()));
    JobId id = it->first;
    auto leases = it->second;
    running.erase(it);
    uint32_t attempt = s.job(id)->attempt;
    for (auto l : leases) s.run_finished(RunEnd{id, attempt, l, fb::RunOutcome::Succeeded, 0, 0, ""}, now);
    for (auto l : leases) s.lease_released(l, id, now);
    s.take_output();
    t = Clock::now();
    inc_placed += s.cycle(now);
    inc.push_back(ms_since(t));
    grant(s.take_output());
    s.take_output();
  }
  // The periodic tick: usage accrued and decayed, factors recomputed,
  // then a full pass over every waiting job.
  now += 1'000'000'000;
  s.tick(now);
  t = Clock::now();
  s.tick(now + 1);
  s.cycle(now + 1);
  double tick_ms = ms_since(t);
  grant(s.take_output());
  s.take_output();
  double inc_first = inc.empty() ? 0 : inc.front();
  std::sort(inc.begin(), inc.end());
  double inc_p90 = inc.empty() ? 0 : inc[inc.size() * 9 / 10];
  double inc_median = inc.empty() ? 0 : inc[inc.size() / 2];
  double inc_max = inc.empty() ? 0 : inc.back();
  long rss = status_kb("VmRSS:"), hwm = status_kb("VmHWM:");

  std::printf("bench-schedule: %d nodes x 8 GPUs, %d pending jobs (1/2/4/8 GPUs, 5%% 2-node gangs, 20%% typed), "
              "policy %s%s\n",
              nodes, jobs, policy.c_str(),
              full_policy ? " (fair share, EASY backfill, quotas + guarantee, preemption by tier)" : "");
  std::printf("  submit (validate + queue)        %8.1f ms  (%.0f jobs/s)\n", submit_ms, jobs / (submit_ms / 1000));
  std::printf("  full cycle                       %8.1f ms  target <= 100 ms   (%zu jobs placed, %zu still pending)\n",
              full_ms, placed, s.queued());
  std::printf("  incremental cycle after 1 ends   %8.3f ms  target <= 10 ms    (median of %zu; p90 %.3f ms; worst %.3f ms; "
              "first %.3f ms; %zu placed)\n",
              inc_median, inc.size(), inc_p90, inc_max, inc_first, inc_placed);
  std::printf("  periodic tick + full cycle        %8.1f ms  target <= 100 ms   (%llu reservations, %llu preemptions asked)\n",
              tick_ms, static_cast<unsigned long long>(s.stats().reservations),
              static_cast<unsigned long long>(s.stats().preempt_requests));
  auto f = s.cluster().fragmentation();
  std::printf("  fragmentation                    %8.1f %%  of %llu free GPUs on partly used nodes (%llu whole nodes free)\n",
              100 * f.ratio(), static_cast<unsigned long long>(f.free_gpus),
              static_cast<unsigned long long>(f.whole_free_nodes));
  std::printf("  RSS with %d jobs pending     %8.1f MiB target <= 500 MiB (now %.1f MiB, peak %.1f MiB)\n", jobs,
              rss_pending / 1024.0, rss / 1024.0, hwm / 1024.0);
  return 0;
}

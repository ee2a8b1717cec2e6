// bench-billing: how many usage ticks per second trainyard-billing applies,
// exactly once, through a real trainyard-bus into its RocksDB ledger. This
// process is the agent: a durable bus::Publisher (outbox in its own RocksDB,
// replay on its ROUTER) publishing usage.tick events. Two phases:
//  1. live: --ticks ticks published as fast as this process can while billing
//     applies them (bounded by the slower of the two);
//  2. backlog: billing is SIGSTOPped, --ticks more are published into the bus,
//     billing is SIGCONTinued and timed until its ledger holds them all: the
//     rate billing itself applies ticks at (the figure against the target).
// After each phase the ledger's totals must equal the sum of the ticks sent,
// to the millisecond and the micro-unit. Target: >= 200,000 ticks/s.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <thread>

#include <CLI/CLI.hpp>

#include "bus/publisher.h"
#include "process.h"
#include "rpc/client.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/runtime.h"

using namespace trainyard;
using namespace trainyard::testing;
using namespace std::chrono_literals;

namespace {

constexpr int64_t kTickNs = 3'600'000'000;  // 3.6 s: every price below then costs whole micro-units
constexpr int64_t kStart = 1773100800LL * 1'000'000'000;  // 2026-03-10T00:00Z
constexpr int64_t kA100 = 2'500'000, kH100 = 4'000'000, kCore = 40'000, kGb = 5'000;  // micro-EUR per hour

// CPU seconds a process has used (user + system).
double cpu_seconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), {});
  auto close = stat.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(stat.substr(close + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

struct Totals {
  uint64_t gpu_ms = 0, cpu_ms = 0, memory_mb_ms = 0;
  int64_t cost = 0;
  bool operator==(const Totals&) const = default;
};

}  // namespace

int main(int argc, char** argv) {
  block_termination_signals();
  CLI::App app{"bench-billing: usage ticks applied per second through the bus into billing's ledger"};
  uint64_t count = 1'000'000, batch_size = 2000, jobs = 64;
  int timeout_s = 300;
  app.add_option("--ticks", count, "usage ticks to send");
  app.add_option("--batch", batch_size, "ticks per publisher commit");
  app.add_option("--jobs", jobs, "concurrent jobs (leases) the ticks belong to");
  app.add_option("--timeout", timeout_s, "give up after this many seconds");
  CLI11_PARSE(app, argc, argv);
  init_logging("bench-billing", "warn");

  TempDir dir;
  auto bus = start_bus(dir.path());  // throws naming its log if it does not start
  const std::string& frontend = bus.frontend;
  const std::string& backend = bus.backend;
  std::ofstream(dir / "rates.toml") << "[[period]]\ncpu_core_hour = \"0.04\"\nmemory_gb_hour = \"0.005\"\n"
                                       "[period.gpu_hour]\nA100 = \"2.50\"\nH100 = \"4.00\"\n";
  Process billing({bin("trainyard-billing"), "--set", "billing.endpoint=tcp://127.0.0.1:*", "--set",
                   "billing.data=" + dir / "billing", "--set", "billing.rates=" + dir / "rates.toml", "--set",
                   "billing.currency=EUR", "--set", "bus.frontend=" + frontend, "--set", "bus.backend=" + backend,
                   "--ready-file", dir / "billing.ready", "--log-level", "warn"},
                  dir / "billing.log");
  auto ready = wait_json(dir / "billing.ready", 15s);
  if (!ready.contains("endpoint")) {
    std::fprintf(stderr, "billing did not start: %s\n", billing.log().c_str());
    return 1;
  }
  std::string endpoint = ready["endpoint"];

  auto opened = storage::Store::open(dir / "agent", storage::Options{bus::Publisher::column_families(), {}, {}});
  if (!opened) {
    std::fprintf(stderr, "%s\n", opened.status().message().c_str());
    return 1;
  }
  auto& store = **opened;
  zmq::context_t ctx(1);
  SystemClock clock;
  Runtime runtime(&store);
  rpc::Server server(ctx, "tcp://127.0.0.1:*", "bench-agent");
  bus::PublisherOptions po;
  po.instance = "bench-node";
  po.bus_endpoints = {frontend};
  po.heartbeat_ms = 200;
  bus::Publisher publisher(ctx, store, server, po, clock);
  runtime.watch(server.socket(), [&] { server.poll_in(); });
  runtime.after_commit([&] { server.flush(); });
  publisher.attach(runtime);

  // Let billing's subscription reach the bus before the first tick (a miss
  // would be healed by replay, but would not measure the live path).
  std::this_thread::sleep_for(500ms);

  Totals sent;
  uint64_t i = 0, target = count;  // ticks to have published by the end of the phase
  int phase = 0;                   // 0 live, 1 backlog publishing, 2 backlog draining
  int64_t t0 = monotonic_ms(), published_ms = 0, done_ms = 0, cont_ms = 0;
  double live_rate = 0, offered_rate = 0, backlog_rate = 0, cpu_at_cont = 0, backlog_cpu = 0;
  bool live_exact = false;
  const char* accounts[] = {"vision", "nlp", "speech", "robotics"};
  runtime.each_iteration([&] {
    if (i >= target || phase == 2) return false;
    auto& batch = runtime.batch();
    for (uint64_t n = 0; n < batch_size && i < target; ++n, ++i) {
      uint64_t job = i % jobs;
      uint32_t gpus = static_cast<uint32_t>(1 + job % 8), cpus = static_cast<uint32_t>(4 + job % 13);
      uint64_t memory_mb = 1024 * (1 + job % 32);
      bool h100 = job % 3 == 0;
      int64_t start = kStart + static_cast<int64_t>(i / jobs) * kTickNs;
      auto& b = publisher.builder();
      auto tick = fb::CreateUsageTickDirect(b, job + 1, job + 1, accounts[job % 4], "bench", "batch", "bench-node",
                                            h100 ? "H100" : "A100", gpus, cpus, memory_mb, start, start + kTickNs,
                                            false);
      publisher.append(batch, "usage.tick", fb::Payload::UsageTick, tick.Union());
      sent.gpu_ms += gpus * 3600;
      sent.cpu_ms += cpus * 3600;
      sent.memory_mb_ms += memory_mb * 3600;
      // 3.6 s = 1/1000 h: each price / 1000, memory per GB.
      sent.cost += gpus * (h100 ? kH100 : kA100) / 1000 + cpus * kCore / 1000 +
                   static_cast<int64_t>(memory_mb / 1024) * kGb / 1000;
    }
    if (i >= target) published_ms = monotonic_ms();
    return i < target;
  });

  rpc::ClientOptions co;
  co.timeout_ms = 10000;
  rpc::Client client(ctx, "billing", endpoint, co);
  Totals ledger;
  auto read_ledger = [&] {
    auto r = client.call(fb::RequestBody::QueryUsage, [](flatbuffers::FlatBufferBuilder& b) {
      return fb::CreateQueryUsageDirect(b, "", "", 0, 0, 0, "account").Union();
    });
    Totals t;
    if (!r) return t;
    for (auto* row : *r->body<fb::UsageReport>()->rows()) {
      t.gpu_ms += row->gpu_ms();
      t.cpu_ms += row->cpu_ms();
      t.memory_mb_ms += row->memory_mb_ms();
      t.cost += row->cost_micros();
    }
    return t;
  };
  runtime.every(20, [&] {
    if (monotonic_ms() - t0 > timeout_s * 1000) {
      std::fprintf(stderr, "timed out in phase %d\n", phase);
      runtime.stop();
      return;
    }
    if (phase == 0 && published_ms > 0) {
      ledger = read_ledger();
      if (ledger.gpu_ms < sent.gpu_ms) return;
      done_ms = monotonic_ms();
      offered_rate = count / ((published_ms - t0) / 1000.0);
      live_rate = count / ((done_ms - t0) / 1000.0);
      std::this_thread::sleep_for(300ms);  // anything applied twice would show now
      live_exact = read_ledger() == sent;
      billing.signal(SIGSTOP);
      phase = 1;
      target += count;
      published_ms = 0;
    } else if (phase == 1 && published_ms > 0 && monotonic_ms() - published_ms > 500) {
      // Everything has left this process; billing starts draining now.
      phase = 2;
      cpu_at_cont = cpu_seconds(billing.pid());
      cont_ms = monotonic_ms();
      billing.signal(SIGCONT);
    } else if (phase == 2) {
      ledger = read_ledger();
      if (ledger.gpu_ms < sent.gpu_ms) return;
      done_ms = monotonic_ms();
      backlog_rate = count / ((done_ms - cont_ms) / 1000.0);
      backlog_cpu = cpu_seconds(billing.pid()) - cpu_at_cont;
      runtime.stop();
    }
  });
  runtime.run();

  std::this_thread::sleep_for(500ms);  // anything applied twice would show now
  ledger = read_ledger();
  bool exact = live_exact && ledger == sent;
  std::printf("bench-billing: 2 x %llu usage ticks of %llu jobs through trainyard-bus into trainyard-billing\n",
              static_cast<unsigned long long>(count), static_cast<unsigned long long>(jobs));
  std::printf("  live:    %.0f ticks/s applied while published (this publisher offered %.0f ticks/s)\n", live_rate,
              offered_rate);
  std::printf("  backlog: %.0f ticks/s applied by billing draining %llu queued ticks (%.2f billing CPU-s: %.0f "
              "ticks per CPU-s)\n",
              backlog_rate, static_cast<unsigned long long>(count), backlog_cpu,
              backlog_cpu > 0 ? count / backlog_cpu : 0.0);
  std::printf("  target:  >= 200000 ticks/s applied: %s\n", backlog_rate >= 200'000 ? "met" : "NOT met");
  std::printf("  check:   ledger gpu_ms %llu / sent %llu, cpu_ms %llu / %llu, memory_mb_ms %llu / %llu, "
              "cost %lld / %lld micro-EUR: %s\n",
              static_cast<unsigned long long>(ledger.gpu_ms), static_cast<unsigned long long>(sent.gpu_ms),
              static_cast<unsigned long long>(ledger.cpu_ms), static_cast<unsigned long long>(sent.cpu_ms),
              static_cast<unsigned long long>(ledger.memory_mb_ms),
              static_cast<unsigned long long>(sent.memory_mb_ms), static_cast<long long>(ledger.cost),
              static_cast<long long>(sent.cost), exact ? "EXACT (after each phase)" : "MISMATCH");
  return exact ? 0 : 1;
}

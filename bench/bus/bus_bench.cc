// bench-bus: durable events per second from a publisher through the
// forwarder to a subscriber, both committing to RocksDB (WAL on, no fsync
// per event), against raw ZeroMQ PUB -> forwarder -> SUB with the same
// payload on the same machine, in the same run. Then publish-to-apply
// latency (p50/p99) at half the durable rate.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <zmq.hpp>

#include "bus/event.h"
#include "bus/forwarder.h"
#include "bus/publisher.h"
#include "bus/subscriber.h"
#include "security/site.h"
#include "storage/keys.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/runtime.h"

using namespace trainyard;
using Steady = std::chrono::steady_clock;

namespace {

int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Steady::now().time_since_epoch()).count();
}

// With CURVE on, every socket of the bench authenticates as service:bus
// (one process, one identity): keys made in a scratch directory.
security::SecurityOptions g_security;
bool g_curve = false;

std::unique_ptr<security::Site> install(zmq::context_t& ctx) {
  if (!g_curve) return nullptr;
  auto site = security::Site::install(ctx, g_security);
  if (!site) throw std::runtime_error(site.status().to_string());
  return std::move(site).value();
}

void make_keys(const std::string& dir) {
  std::filesystem::create_directories(dir);
  security::Identity id{bus::kBusPrincipal, security::generate_keypair()};
  g_security.key_file = dir + "/service-bus.key";
  g_security.authorized_keys = dir + "/authorized_keys";
  if (auto s = security::write_identity(g_security.key_file, id); !s) throw std::runtime_error(s.message());
  std::ofstream(g_security.authorized_keys) << security::public_line(id) << "\n";
}

struct Forwarding {
  explicit Forwarding(bool check_streams = true) : fwd(ctx, options(check_streams)) {}
  static bus::ForwarderOptions options(bool check) {
    bus::ForwarderOptions o;
    o.check_streams = check;
    return o;
  }
  zmq::context_t ctx{1};
  // Under CURVE its sockets are CURVE servers with this process's key.
  std::unique_ptr<security::Site> site = install(ctx);
  bus::Forwarder fwd;
  std::thread t{[this] { fwd.run(); }};
  ~Forwarding() {
    fwd.stop();
    t.join();
  }
};

double raw_rate(uint64_t n, size_t payload) {
  Forwarding f(/*check_streams=*/false);
  zmq::context_t ctx(1);
  std::atomic<bool> ready{false};
  double seconds = 0;
  std::thread sub([&] {
    zmq::socket_t s(ctx, zmq::socket_type::sub);
    (void)security::secure_client(s, bus::kBusPrincipal);
    s.set(zmq::sockopt::rcvhwm, 0);
    s.set(zmq::sockopt::subscribe, "test.");
    s.connect(f.fwd.backend());
    ready = true;
    zmq::message_t topic, body;
    uint64_t got = 0;
    Steady::time_point start;
    while (got < n) {
      (void)s.recv(topic);
      (void)s.recv(body);
      if (got == 0) start = Steady::now();
      ++got;
    }
    seconds = std::chrono::duration<double>(Steady::now() - start).count();
  });
  zmq::socket_t pub(ctx, zmq::socket_type::pub);
  (void)security::secure_client(pub, bus::kBusPrincipal);
  pub.set(zmq::sockopt::sndhwm, 0);
  pub.connect(f.fwd.frontend());
  while (!ready) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::string body(payload, 'x');
  // Warm up until the subscription has travelled through the forwarder.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  for (uint64_t i = 0; i < n; ++i) {
    pub.send(zmq::str_buffer("test.event"), zmq::send_flags::sndmore);
    pub.send(zmq::buffer(body));
  }
  sub.join();
  return n / seconds;
}

struct DurableResult {
  double rate = 0;
  std::vector<int64_t> latencies_ns;
};

// Publisher and subscriber each with their own RocksDB, as two services
// would be; `rate` 0 means as fast as possible.
DurableResult durable(uint64_t n, size_t payload, double rate, size_t batch, const std::string& dir) {
  std::filesystem::remove_all(dir);
  Forwarding f;
  zmq::context_t ctx(1);
  SystemClock clock;
  DurableResult result;
  std::atomic<bool> sub_ready{false};
  std::atomic<int64_t> first_append{0};

  std::thread sub_thread([&] {
    auto store = storage::Store::open(dir + "/sub", {{"cursors", "state"}, {}, storage::Durability::kWal});
    if (!store) throw std::runtime_error(store.status().to_string());
    auto state = (*store)->cf("state");
    Runtime runtime(store->get());
    uint64_t applied = 0;
    uint64_t checksum = 0;
    bus::SubscriberOptions o;
    o.name = "bench";
    o.bus_endpoints = {f.fwd.backend()};
    o.prefixes = {"test."};
    if (rate > 0) result.latencies_ns.reserve(n);
    // Like a service, it keeps its state in memory and writes it in the
    // same batch as the cursors, once per loop iteration.
    bool dirty = false;
    bus::Subscriber sub(ctx, **store, o, [&](const bus::Event& e, storage::Batch&) {
      auto* t = e.as<fb::TestEvent>();
      checksum = checksum * 31 + t->key();
      ++applied;
      dirty = true;
      if (rate > 0) result.latencies_ns.push_back(steady_ns() - static_cast<int64_t>(t->value()));
    });
    runtime.before_commit([&] {
      if (!dirty) return;
      runtime.batch().put(state, "checksum", storage::Key().u64(checksum).u64(applied).bytes());
      dirty = false;
    });
    sub.attach(runtime);
    Steady::time_point done;
    runtime.after_commit([&] {
      if (applied >= n) {
        done = Steady::now();
        runtime.stop();
      }
    });
    sub_ready = true;
    runtime.run();
    double seconds = (steady_ns() - first_append.load()) / 1e9;
    result.rate = n / seconds;
  });
  while (!sub_ready) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));

  auto store = storage::Store::open(dir + "/pub", {bus::Publisher::column_families(), {}, storage::Durability::kWal});
  if (!store) throw std::runtime_error(store.status().to_string());
  // The replay server is a CURVE server under --security curve: it lives on
  // the context whose ZAP handler (the process's one Site) checks clients,
  // or every gap request would go unanswered.
  rpc::Server server(f.ctx, "tcp://127.0.0.1:*", "bench");
  bus::PublisherOptions po;
  po.instance = g_curve ? "bus" : "bench";  // under CURVE a stream must be its publisher's
  po.bus_endpoints = {f.fwd.frontend()};
  bus::Publisher pub(ctx, **store, server, po, clock);
  Runtime runtime(store->get());
  runtime.watch(server.socket(), [&] { server.poll_in(); });
  runtime.after_commit([&] { server.flush(); });
  pub.attach(runtime);
  std::vector<uint8_t> blob(payload > 40 ? payload - 40 : 1, 'x');  // envelope + fields ~ payload bytes
  uint64_t sent = 0;
  int64_t start = 0;
  runtime.each_iteration([&] {
    if (sent >= n) return false;
    if (start == 0) {
      start = steady_ns();
      first_append = start;
    }
    uint64_t due = n;
    if (rate > 0) due = std::min<uint64_t>(n, static_cast<uint64_t>((steady_ns() - start) / 1e9 * rate) + 1);
    auto& b = runtime.batch();
    for (size_t i = 0; i < batch && sent < due; ++i) {
      auto& fbb = pub.builder();
      auto bl = fbb.CreateVector(blob);
      auto ev = fb::CreateTestEvent(fbb, ++sent, static_cast<uint64_t>(steady_ns()), bl);
      pub.append(b, "test.event", fb::Payload::TestEvent, ev.Union());
    }
    return sent < n;
  });
  std::thread stopper([&] {
    sub_thread.join();
    runtime.stop();
  });
  runtime.run();
  stopper.join();
  return result;
}

int64_t percentile(std::vector<int64_t>& v, double p) {
  if (v.empty()) return 0;
  size_t k = std::min(v.size() - 1, static_cast<size_t>(p * v.size()));
  std::nth_element(v.begin(), v.begin() + static_cast<long>(k), v.end());
  return v[k];
}

}  // namespace

int main(int argc, char** argv) {
  block_termination_signals();
  CLI::App app{"bench-bus: durable bus throughput and latency against raw ZeroMQ"};
  uint64_t n = 1'000'000;
  size_t payload = 100, batch = 2000;
  std::string dir = "/tmp/trainyard-bench-bus";
  app.add_option("-n,--events", n, "events per run");
  app.add_option("--payload", payload, "bytes per event");
  app.add_option("--batch", batch, "events per publisher commit");
  app.add_option("--dir", dir, "scratch directory for the two RocksDBs");
  std::string security_mode = "both";
  app.add_option("--security", security_mode, "plain, CURVE or both (none|curve|both)")
      ->check(CLI::IsMember({"none", "curve", "both"}));
  CLI11_PARSE(app, argc, argv);
  init_logging("bench", "warn");

  std::printf("bench-bus: %zu-byte payloads, %lu events, PUB -> forwarder -> SUB over loopback TCP\n", payload,
              static_cast<unsigned long>(n));
  for (bool curve : {false, true}) {
    if (curve && security_mode == "none") continue;
    if (!curve && security_mode == "curve") continue;
    g_curve = curve;
    if (curve) make_keys(dir + "-keys");
    const char* tag = curve ? "CURVE" : "plain";
    double raw = raw_rate(n, payload);
    auto d = durable(n, payload, 0, batch, dir);
    double half = d.rate / 2;
    auto l = durable(std::min<uint64_t>(n, static_cast<uint64_t>(half * 5)), payload, half, batch, dir);
    std::filesystem::remove_all(dir);
    std::printf("  %s raw ZeroMQ (no persistence):      %10.0f events/s\n", tag, raw);
    if (curve) {
      std::printf("  CURVE durable (RocksDB both ends, WAL, forwarder checks streams): %10.0f events/s   target >= 150000"
                  "   ratio to raw CURVE %.2f (target >= 0.50)\n", d.rate, d.rate / raw);
    } else {
      std::printf("  plain durable (RocksDB both ends, WAL): %10.0f events/s   target >= 250000   ratio to raw %.2f "
                  "(target >= 0.30)\n", d.rate, d.rate / raw);
    }
    std::printf("  %s latency publish->apply at %.0f events/s (half the durable rate): p50 %.2f ms, p99 %.2f ms\n",
                tag, half, percentile(l.latencies_ns, 0.50) / 1e6, percentile(l.latencies_ns, 0.99) / 1e6);
  }
  std::filesystem::remove_all(dir + "-keys");
  return 0;
}

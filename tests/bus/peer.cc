// trainyard-bus-peer: a durable publisher or subscriber of TestEvents, run as
// a real process by the bus tests (and killed with SIGKILL by them).
//
// The subscriber's state is (count, checksum) where checksum folds every
// event's value in seq order, so a lost, duplicated or reordered event
// changes it. The publisher's snapshot is its own (count, checksum).
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "bus/publisher.h"
#include "bus/subscriber.h"
#include "storage/keys.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/runtime.h"
#include "util/service_main.h"

using namespace trainyard;

namespace {

uint64_t value_of(uint64_t i) { return i * 2654435761u + 7; }
uint64_t fold(uint64_t sum, uint64_t v) { return sum * 1099511628211ull ^ v; }

struct State {
  uint64_t count = 0;
  uint64_t checksum = 0;
};

State load(storage::Store& s, storage::Cf cf) {
  State st;
  if (auto v = value_or_throw(s.get(cf, "state"))) {
    storage::KeyReader r(*v);
    st.count = r.u64();
    st.checksum = r.u64();
  }
  return st;
}

void save(storage::Batch& b, storage::Cf cf, const State& st) {
  b.put(cf, "state", storage::Key().u64(st.count).u64(st.checksum).bytes());
}


std::vector<std::string> split_endpoints(const std::string& s) {
  std::vector<std::string> out;
  for (size_t start = 0; start <= s.size();) {
    auto comma = s.find(',', start);
    if (comma == std::string::npos) comma = s.size();
    if (comma > start) out.push_back(s.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  block_termination_signals();
  CLI::App app{"trainyard-bus-peer: a test publisher/subscriber of the durable bus"};
  app.require_subcommand(1);
  std::string data, bus, replay = "tcp://127.0.0.1:*", instance = "peer", info_file, prefix = "test.";
  uint64_t count = 0, batch_size = 100, crash_after_commit = 0, payload = 100, keep_events = 1'000'000;
  double rate = 0;
  int rcvhwm = 0;
  uint64_t apply_delay_us = 0;
  size_t max_replay_endpoints = 0;
  int64_t replay_idle_close_ms = 0;
  int64_t retry_ms = 0;
  int replay_timeout_ms = 0;
  size_t max_message_bytes = bus::kDefaultMaxMessageBytes;

  auto* pub = app.add_subcommand("publish", "publish --count TestEvents on topic test.event, then serve replay until SIGTERM");
  pub->add_option("--data", data)->required();
  pub->add_option("--bus", bus, "forwarder frontend")->required();
  pub->add_option("--replay", replay, "replay ROUTER endpoint to bind");
  pub->add_option("--instance", instance);
  pub->add_option("--count", count)->required();
  pub->add_option("--batch", batch_size, "events per commit");
  pub->add_option("--rate", rate, "events per second (0: as fast as possible)");
  pub->add_option("--payload", payload, "blob bytes per event");
  pub->add_option("--keep-events", keep_events, "outbox size limit per stream");
  pub->add_option("--crash-after-commit", crash_after_commit,
                  "SIGKILL itself right after committing the batch holding this seq, before publishing it");
  pub->add_option("--info", info_file, "write {replay, published, ...} JSON here");

  auto* sub = app.add_subcommand("subscribe", "apply TestEvents into a checksum");
  sub->add_option("--data", data)->required();
  sub->add_option("--bus", bus, "forwarder backend (comma-separated for two)")->required();
  sub->add_option("--until", count, "exit once this many events are applied (0: run until SIGTERM)");
  sub->add_option("--prefix", prefix);
  sub->add_option("--rcvhwm", rcvhwm, "receive high-water mark (small values make ZeroMQ drop: gaps)");
  sub->add_option("--apply-delay-us", apply_delay_us, "sleep this long per applied event (a slow subscriber)");
  sub->add_option("--max-replay-endpoints", max_replay_endpoints, "replay sockets open at once (0: the default)");
  sub->add_option("--replay-idle-close-ms", replay_idle_close_ms,
                  "close a replay socket unused this long (0: the default)");
  sub->add_option("--max-message-bytes", max_message_bytes, "reject bigger messages");
  sub->add_option("--retry-ms", retry_ms, "first wait before asking a failed publisher again (0: the default)");
  sub->add_option("--replay-timeout-ms", replay_timeout_ms,
                  "a replay request unanswered this long fails (0: the default)");
  sub->add_option("--info", info_file, "write {count, checksum, stats} JSON here when done and every second");

  auto* status = app.add_subcommand("status", "print the stored state of a stopped peer as JSON");
  status->add_option("--data", data)->required();
  CLI11_PARSE(app, argc, argv);
  init_logging("bus-peer", "warn");

  std::vector<std::string> cfs = bus::Publisher::column_families();
  for (auto& c : bus::Subscriber::column_families()) cfs.push_back(c);
  cfs.push_back("state");
  auto opened = storage::Store::open(data, storage::Options{cfs, {}, storage::Durability::kWal});
  if (!opened) {
    std::cerr << "error: " << opened.status().message() << "\n";
    return 3;
  }
  auto& store = **opened;
  auto state_cf = store.cf("state");
  zmq::context_t ctx(1);
  SystemClock clock;
  Runtime runtime(&store);

  if (status->parsed()) {
    auto st = load(store, state_cf);
    std::cout << nlohmann::json{{"count", st.count}, {"checksum", st.checksum}}.dump() << "\n";
    return 0;
  }

  if (pub->parsed()) {
    rpc::Server server(ctx, replay, "bus-peer");
    bus::PublisherOptions o;
    o.instance = instance;
    o.bus_endpoints = split_endpoints(bus);
    o.heartbeat_ms = 200;
    o.outbox_keep_events = keep_events;
    o.trim_every_ms = 200;
    bus::Publisher publisher(ctx, store, server, o, clock);
    State st = load(store, state_cf);
    publisher.set_snapshot([&](std::string_view, flatbuffers::FlatBufferBuilder& b, const bus::EmitFn& emit) {
      auto blob = b.CreateVector(reinterpret_cast<const uint8_t*>("snapshot"), 8);
      emit("test.snapshot", fb::Payload::TestEvent, fb::CreateTestEvent(b, st.count, st.checksum, blob).Union());
    });
    runtime.watch(server.socket(), [&] { server.poll_in(); });
    runtime.after_commit([&] { server.flush(); });
    // The publisher's own post-commit flush, with the crash hook in front.
    bool crash_now = false;
    runtime.after_commit([&] {
      if (crash_now) kill(getpid(), SIGKILL);
    });
    publisher.attach(runtime);
    std::vector<uint8_t> blob(payload, 'x');
    int64_t started = monotonic_ms();
    runtime.each_iteration([&] {
      if (st.count >= count) return false;
      if (rate > 0) {
        double due = (monotonic_ms() - started) / 1000.0 * rate;
        if (static_cast<double>(st.count) >= due) return false;
      }
      auto& batch = runtime.batch();
      for (uint64_t i = 0; i < batch_size && st.count < count; ++i) {
        uint64_t key = st.count + 1;
        auto& b = publisher.builder();
        auto bl = b.CreateVector(blob);
        auto ev = fb::CreateTestEvent(b, key, value_of(key), bl);
        publisher.append(batch, "test.event", fb::Payload::TestEvent, ev.Union());
        st.count = key;
        st.checksum = fold(st.checksum, value_of(key));
        if (key == crash_after_commit) crash_now = true;
      }
      save(batch, state_cf, st);
      return st.count < count;
    });
    runtime.every(100, [&] {
      if (!info_file.empty()) {
        write_json_atomic(info_file, {{"replay", server.endpoint()},
                               {"published", publisher.stats().published},
                               {"count", st.count},
                               {"republished", publisher.stats().republished},
                               {"trimmed", publisher.stats().trimmed}});
      }
    });
    runtime.run();
    return 0;
  }

  // subscribe
  State st = load(store, state_cf);
  bus::SubscriberOptions o;
  o.name = "bus-peer";
  o.prefixes = {prefix};
  o.bus_endpoints = split_endpoints(bus);
  o.max_message_bytes = max_message_bytes;
  if (rcvhwm > 0) o.rcvhwm = rcvhwm;
  if (max_replay_endpoints > 0) o.max_replay_endpoints = max_replay_endpoints;
  if (replay_idle_close_ms > 0) o.replay_idle_close_ms = replay_idle_close_ms;
  if (retry_ms > 0) o.retry_ms = retry_ms;
  if (replay_timeout_ms > 0) o.replay_timeout_ms = replay_timeout_ms;
  bus::Subscriber subscriber(ctx, store, o, [&](const bus::Event& e, storage::Batch& batch) {
    auto* t = e.as<fb::TestEvent>();
    if (!t) return;
    if (t->blob() && t->blob()->size() == 8 && std::memcmp(t->blob()->data(), "snapshot", 8) == 0) {
      st.count = t->key();
      st.checksum = t->value();
    } else {
      st.count += 1;
      st.checksum = fold(st.checksum, t->value());
    }
    save(batch, state_cf, st);
    if (apply_delay_us) usleep(static_cast<useconds_t>(apply_delay_us));
  });
  subscriber.on_snapshot([&](std::string_view, storage::Batch&) { st = State{}; });
  subscriber.attach(runtime);
  auto dump = [&] {
    if (info_file.empty()) return;
    auto& s = subscriber.stats();
    write_json_atomic(info_file, {{"count", st.count},
                                  {"checksum", st.checksum},
                                  {"received", s.received},
                                  {"duplicates", s.duplicates},
                                  {"gaps", s.gaps},
                                  {"replayed", s.replayed},
                                  {"rejected", s.rejected},
                                  {"snapshots", s.snapshots},
                                  {"new_epochs", s.new_epochs},
                                  {"replay_sockets", subscriber.replay_sockets()},
                                  {"replay_sockets_closed", s.replay_sockets_closed},
                                  {"replay_failures", s.replay_failures},
                                  {"applied", s.applied}});
  };
  runtime.every(100, dump);
  runtime.after_commit([&] {
    if (count > 0 && st.count >= count) {
      dump();
      runtime.stop();
    }
  });
  runtime.run();
  dump();
  return 0;
}

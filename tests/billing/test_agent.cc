// trainyard-billing-test-agent: publishes usage.tick events exactly as a node
// agent does (a durable bus::Publisher with its own RocksDB outbox, stream
// usage.@<node>, replay on its ROUTER), read from a JSON-lines file the test
// wrote, then serves replay until SIGTERM.
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "bus/publisher.h"
#include "storage/keys.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/runtime.h"
#include "util/service_main.h"

using namespace trainyard;

int main(int argc, char** argv) {
  block_termination_signals();
  CLI::App app{"trainyard-billing-test-agent: publishes the usage ticks of a JSON-lines file as a node agent would"};
  std::string data, bus, ticks_path, info_path, node = "node-1", replay = "tcp://127.0.0.1:*";
  uint64_t batch_size = 100;
  double rate = 0;
  app.add_option("--data", data, "its RocksDB directory")->required();
  app.add_option("--bus", bus, "bus frontend (XSUB) endpoint")->required();
  app.add_option("--ticks", ticks_path,
                 "JSON lines: {job, lease, account, user, partition, gpu_type, gpus, cpus, memory_mb, start_ns, "
                 "end_ns, final}")
      ->required();
  app.add_option("--node", node, "node name: the stream is usage.@<node>");
  app.add_option("--replay", replay, "replay ROUTER endpoint to bind");
  app.add_option("--batch", batch_size, "ticks per commit");
  app.add_option("--rate", rate, "ticks per second (0: as fast as possible)");
  app.add_option("--info", info_path, "write {replay, published, count} JSON here as it goes");
  CLI11_PARSE(app, argc, argv);
  init_logging("test-agent", "warn");

  std::vector<nlohmann::json> ticks;
  {
    std::ifstream in(ticks_path);
    std::string line;
    while (std::getline(in, line)) {
      if (!line.empty()) ticks.push_back(nlohmann::json::parse(line));
    }
  }
  std::vector<std::string> cfs = bus::Publisher::column_families();
  cfs.push_back("state");
  auto opened = storage::Store::open(data, storage::Options{cfs, {}, storage::Durability::kWal});
  if (!opened) {
    std::cerr << "error: " << opened.status().message() << "\n";
    return 3;
  }
  auto& store = **opened;
  auto state_cf = store.cf("state");
  uint64_t sent = 0;
  if (auto v = value_or_throw(store.get(state_cf, "sent"))) sent = storage::decode_u64(*v);

  zmq::context_t ctx(1);
  SystemClock clock;
  Runtime runtime(&store);
  rpc::Server server(ctx, replay, "test-agent");
  bus::PublisherOptions o;
  o.instance = node;
  o.bus_endpoints = {bus};
  o.heartbeat_ms = 200;
  bus::Publisher publisher(ctx, store, server, o, clock);
  runtime.watch(server.socket(), [&] { server.poll_in(); });
  runtime.after_commit([&] { server.flush(); });
  publisher.attach(runtime);

  int64_t started = monotonic_ms();
  uint64_t start_count = sent;
  runtime.each_iteration([&] {
    if (sent >= ticks.size()) return false;
    if (rate > 0 && static_cast<double>(sent - start_count) >= (monotonic_ms() - started) / 1000.0 * rate) return false;
    auto& batch = runtime.batch();
    for (uint64_t i = 0; i < batch_size && sent < ticks.size(); ++i, ++sent) {
      const auto& t = ticks[sent];
      auto& b = publisher.builder();
      auto tick = fb::CreateUsageTickDirect(
          b, t.value("lease", 1ull), t.value("job", 1ull), t.value("account", "").c_str(), t.value("user", "").c_str(),
          t.value("partition", "").c_str(), node.c_str(), t.value("gpu_type", "").c_str(), t.value("gpus", 0u),
          t.value("cpus", 0u), t.value("memory_mb", 0ull), t.value("start_ns", 0ll), t.value("end_ns", 0ll),
          t.value("final", false));
      publisher.append(batch, "usage.tick", fb::Payload::UsageTick, tick.Union());
    }
    batch.put(state_cf, "sent", storage::encode_u64(sent));
    return sent < ticks.size();
  });
  auto info = [&] {
    if (!info_path.empty()) {
      write_json_atomic(info_path, {{"replay", server.endpoint()},
                             {"published", publisher.stats().published},
                             {"count", sent},
                             {"total", ticks.size()}});
    }
  };
  runtime.every(100, info);
  runtime.run();
  return 0;
}

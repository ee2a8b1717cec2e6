// trainyard-resource-broker: holds the truth about nodes, GPUs and leases;
// grants Allocate only on free GPUs, declares silent nodes down.
#include <filesystem>
#include <iostream>

#include <spdlog/spdlog.h>

#include "shell.h"
#include "util/runtime.h"
#include "util/service_main.h"

using namespace trainyard;

int main(int argc, char** argv) {
  block_termination_signals();
  CLI::App app{
      "trainyard-resource-broker: agents register their nodes and heartbeat here; schedulers Allocate leases on free "
      "GPUs. Publishes node.* and lease.<node>.*, subscribes run.*. Config keys: [broker] endpoint, data, "
      "node_timeout_ms, ...; [bus] frontend, backend (see services/resource-broker/README.md)."};
  ServiceArgs args;
  add_service_flags(app, args);
  std::string ready_file;
  app.add_option("--ready-file", ready_file,
                 "Once bound and started, write {\"pid\", \"endpoint\", \"instance\", \"data\"} here as JSON");
  CLI11_PARSE(app, argc, argv);
  auto config = load_service_config(args);
  init_service_logging("resource-broker", args, config);

  broker::BrokerOptions o;
  std::string data;
  storage::Durability durability = storage::Durability::kWal;
  try {
    o.endpoint = config.get_string("broker.endpoint", o.endpoint);
    o.instance = config.get_string("broker.instance", o.instance);
    o.bus_frontend = config.get_strings("bus.frontend", {"tcp://127.0.0.1:5550"});
    o.bus_backend = config.get_strings("bus.backend", {"tcp://127.0.0.1:5551"});
    o.node_timeout_ms = config.get_int("broker.node_timeout_ms", o.node_timeout_ms, 100, 86400000);
    o.liveness_check_ms = config.get_int("broker.liveness_check_ms", o.liveness_check_ms, 0, 3600000);
    o.stream_heartbeat_ms = config.get_int("broker.stream_heartbeat_ms", o.stream_heartbeat_ms, 10, 3600000);
    o.outbox_keep_events =
        static_cast<uint64_t>(config.get_int("broker.outbox_keep_events", static_cast<int64_t>(o.outbox_keep_events), 1, INT64_MAX));
    o.outbox_keep_age_s = config.get_int("broker.outbox_keep_age_s", o.outbox_keep_age_s, 1, INT64_MAX / 1'000'000'000);
    o.outbox_trim_ms = config.get_int("broker.outbox_trim_ms", o.outbox_trim_ms, 10, 86400000);
    o.metrics_ms = config.get_int("broker.metrics_ms", o.metrics_ms, 0, 86400000);
    o.keep_ended_s = config.get_int("broker.keep_ended_s", o.keep_ended_s, 1, INT64_MAX / 1'000'000'000);
    data = config.get_string("broker.data", "data/broker");
    auto d = storage::parse_durability("broker.durability", config.get_string("broker.durability", "wal"));
    if (!d) throw std::runtime_error(d.status().message());
    durability = *d;
    if (o.node_timeout_ms <= 0) throw std::runtime_error("config key 'broker.node_timeout_ms' must be positive");
    if (o.outbox_trim_ms <= 0 || o.stream_heartbeat_ms <= 0) {
      throw std::runtime_error("config keys 'broker.outbox_trim_ms' and 'broker.stream_heartbeat_ms' must be positive");
    }
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  }

  std::error_code ec;
  std::filesystem::create_directories(data, ec);
  auto opened = storage::Store::open(data, storage::Options{broker::BrokerShell::column_families(), {}, durability});
  if (!opened) {
    spdlog::error("cannot open broker.data {}: {}", data, opened.status().message());
    return 3;
  }
  auto& store = **opened;
  zmq::context_t ctx(1);
  SystemClock clock;
  Runtime runtime(&store);
  std::unique_ptr<broker::BrokerShell> shell;
  try {
    shell = std::make_unique<broker::BrokerShell>(ctx, store, o, clock);
  } catch (const zmq::error_t& e) {
    spdlog::error("cannot bind broker.endpoint {}: {}", o.endpoint, e.what());
    return 1;
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return 3;
  }
  shell->attach(runtime);
  write_ready_file(ready_file, {{"endpoint", shell->endpoint()}, {"instance", o.instance}, {"data", data}});
  spdlog::info("resource broker {} serving on {} (node timeout {} ms)", o.instance, shell->endpoint(),
               o.node_timeout_ms);
  int sig = runtime.run();
  spdlog::info("stopping (signal {})", sig);
  return 0;
}

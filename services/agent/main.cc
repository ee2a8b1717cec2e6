// trainyard-agent: the node agent. Runs the jobs the broker leases to its
// node (or, simulated, to many nodes) and reports runs, usage and metrics.
#include <sys/prctl.h>
#include <unistd.h>

#include <climits>
#include <cstring>
#include <filesystem>
#include <iostream>

#include <spdlog/spdlog.h>

#include "core/gpu_name.h"
#include "host.h"
#include "job_files.h"
#include "nvml.h"
#include "shell.h"
#include "supervisor.h"
#include "util/runtime.h"
#include "util/service_main.h"

using namespace trainyard;
using namespace trainyard::agent;

namespace {

std::string self_exe() {
  char buf[PATH_MAX] = {};
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string("trainyard-agent");
}


}  // namespace

int main(int argc, char** argv) {
  // The hidden per-run supervisor mode (see supervisor.h); not in --help.
  if (argc >= 2 && std::strcmp(argv[1], "--supervise") == 0) {
    if (argc < 4) return 2;
    return supervise_main(argv[2], std::atoi(argv[3]));
  }
  block_termination_signals();
  CLI::App app{"trainyard-agent: the node agent. Registers this node's GPUs, CPUs and memory with the resource "
               "broker, runs the jobs leased to it (each in its own process group, with only its GPUs visible), "
               "and publishes run events, usage ticks and metrics. Config keys: see services/agent/README.md."};
  ServiceArgs args;
  add_service_flags(app, args);
  std::string ready_file;
  app.add_option("--ready-file", ready_file,
                 "Once started, write {\"pid\", \"endpoint\", \"node\", \"nodes\"} here as JSON (atomically)");
  CLI11_PARSE(app, argc, argv);
  auto config = load_service_config(args);
  init_service_logging("agent", args, config);

  AgentOptions o;
  std::string data;
  std::unique_ptr<Nvml> nvml;
  try {
    o.node = config.get_string("agent.node", host_name());
    o.simulate = static_cast<uint32_t>(config.get_int("agent.simulate", 0, 0, 100000));
    o.endpoint = config.get_string("agent.endpoint", "tcp://127.0.0.1:*");
    o.advertise_endpoint = config.get_string("agent.advertise", "");
    data = config.get_string("agent.data", "trainyard-data/agent-" + o.node);
    o.runs_dir = config.get_string("agent.runs_dir", data + "/runs");
    o.state_dir = data + "/run-state";
    o.max_grace_s = static_cast<uint32_t>(config.get_int("agent.max_grace_s", 300, 0, 86400));
    o.broker_endpoint = config.get_string("broker.endpoint", "tcp://127.0.0.1:5561");
    o.bus_frontend = config.get_strings("bus.frontend", {"tcp://127.0.0.1:5550"});
    o.bus_backend = config.get_strings("bus.backend", {"tcp://127.0.0.1:5551"});
    o.heartbeat_ms = config.get_int("agent.heartbeat_ms", 1000, 10, 3600000);
    o.usage_tick_ms = config.get_int("agent.usage_tick_ms", 10000, 10, 86400000);
    o.sample_ms = config.get_int("agent.sample_ms", 5000, 10, 86400000);
    o.check_ms = config.get_int("agent.check_ms", 100, 1, 60000);
    o.ops_ms = config.get_int("agent.ops_ms", 10000, 10, 86400000);
    o.keep_finished_s = config.get_int("agent.keep_finished_s", 7 * 24 * 3600, 0, INT64_MAX / 1'000'000'000);
    o.metrics_read_bytes = static_cast<size_t>(config.get_int("agent.metrics_read_kb", 256, 1, 65536)) * 1024;
    o.max_points_per_s = static_cast<uint32_t>(config.get_int("agent.max_points_per_s", o.max_points_per_s, 1, 10'000'000));
    o.max_series_per_run =
        static_cast<uint32_t>(config.get_int("agent.max_series_per_run", o.max_series_per_run, 1, 1'000'000));
    o.max_metric_name_bytes =
        static_cast<uint32_t>(config.get_int("agent.max_metric_name_bytes", o.max_metric_name_bytes, 1, 4096));
    o.cgroup_root = config.get_string("agent.cgroup_root", "auto");
    o.partition = config.get_string("agent.partition", "");
    o.cpus = static_cast<uint32_t>(config.get_int("agent.cpus", host_cpus(), 1, 65536));
    o.memory_mb = static_cast<uint64_t>(config.get_int("agent.memory_mb", static_cast<int64_t>(host_memory_mb()), 1, 4294967296));
    if (auto labels = config.table().at_path("agent.labels"); labels) {
      auto* t = labels.as_table();
      if (!t) throw std::runtime_error("config agent.labels must be a table like {rack = \"r1\", ib = \"yes\"}");
      for (auto& [k, v] : *t) {
        auto s = v.value<std::string>();
        if (!s) throw std::runtime_error("config agent.labels." + std::string(k.str()) + " must be a string");
        o.labels.emplace_back(std::string(k.str()), *s);
      }
    }
    if (o.heartbeat_ms <= 0 || o.usage_tick_ms <= 0 || o.sample_ms <= 0 || o.check_ms <= 0 ||
        o.ops_ms <= 0) {
      throw std::runtime_error("config agent.heartbeat_ms, usage_tick_ms, sample_ms, check_ms and ops_ms must be positive");
    }
    auto declared = declared_gpus(config);
    if (!declared) throw std::runtime_error(declared.status().message());
    o.gpus = std::move(*declared);
    std::string why;
    if (o.simulate == 0) nvml = Nvml::load(&why);
    if (!o.gpus.empty()) {
      spdlog::info("{} GPUs declared in the config", o.gpus.size());
    } else if (nvml) {
      for (auto& d : nvml->devices()) o.gpus.push_back(HostGpu{d.index, gpu_type_from_name(d.name), d.memory_mb, d.uuid});
      o.gpus_from_nvml = true;
      spdlog::info("{} GPUs found through NVML", o.gpus.size());
    } else if (o.simulate == 0) {
      spdlog::info("no GPUs: {} and none declared in agent.gpus", why);
    }
    if (o.simulate > 0 && o.gpus.empty()) {
      throw std::runtime_error("agent.simulate needs the simulated nodes' GPUs in agent.gpus "
                               "(e.g. gpus = [{type = \"A100\", memory_gb = 80, count = 8}])");
    }
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  }
  o.self_exe = self_exe();
  // What is left of a job whose supervisor was killed comes back to the
  // agent, which kills it (AgentShell::kill_orphans).
  if (o.simulate == 0) prctl(PR_SET_CHILD_SUBREAPER, 1);

  std::error_code ec;
  std::filesystem::create_directories(data, ec);
  std::filesystem::create_directories(o.runs_dir, ec);
  if (ec) {
    std::cerr << "error: cannot create the runs directory " << o.runs_dir << ": " << ec.message() << "\n";
    return 3;
  }
  // Run state (launch specs, start/exit records, locks): the agent's alone.
  if (auto s = ensure_private_dir(o.state_dir); !s) {
    std::cerr << "error: the run state directory: " << s.message() << "\n";
    return 3;
  }
  storage::Options so;
  so.column_families = AgentShell::column_families();
  auto durability = storage::parse_durability("agent.durability", config.get_string("agent.durability", "wal"));
  if (!durability) {
    std::cerr << "error: " << durability.status().message() << "\n";
    return 2;
  }
  so.durability = *durability;
  auto store = storage::Store::open(data, so);
  if (!store) {
    std::cerr << "error: " << store.status().message() << "\n";
    return 3;
  }

  zmq::context_t ctx(1);
  SystemClock clock;
  Runtime runtime(store->get());
  std::unique_ptr<AgentShell> shell;
  try {
    shell = std::make_unique<AgentShell>(ctx, **store, runtime, o, clock, std::move(nvml));
    shell->start();
  } catch (const zmq::error_t& e) {
    std::cerr << "error: cannot bind the agent endpoint " << o.endpoint << ": " << e.what() << "\n";
    return 1;
  }
  nlohmann::json ready{{"endpoint", shell->endpoint()}, {"node", o.node}};
  if (o.simulate > 0) ready["nodes"] = shell->nodes();
  write_ready_file(ready_file, ready);
  spdlog::info("agent {} up: {} node(s), endpoint {}, broker {}", o.node, shell->nodes().size(), shell->endpoint(),
               o.broker_endpoint);
  int sig = runtime.run();
  spdlog::info("stopping on signal {}; runs keep going under their supervisors", sig);
  runtime.commit_now();
  return 0;
}

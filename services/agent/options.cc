// The agent's options, every key read and range-checked here
// (AgentOptions::from_config), and the host facts the options default to.
#include <unistd.h>

#include <climits>
#include <stdexcept>

#include "host.h"
#include "security/site.h"
#include "shell.h"

namespace trainyard::agent {
namespace {

std::string executable_path() {
  char buf[PATH_MAX] = {};
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string("trainyard-agent");
}

std::vector<std::pair<std::string, std::string>> read_labels(const Config& config) {
  std::vector<std::pair<std::string, std::string>> out;
  auto labels = config.table().at_path("agent.labels");
  if (!labels) return out;
  auto* t = labels.as_table();
  if (!t) throw std::runtime_error("config agent.labels must be a table like {rack = \"r1\", ib = \"yes\"}");
  for (auto& [k, v] : *t) {
    auto s = v.value<std::string>();
    if (!s) throw std::runtime_error("config agent.labels." + std::string(k.str()) + " must be a string");
    out.emplace_back(std::string(k.str()), *s);
  }
  return out;
}

// The periods and limits of the loop.
void read_timings(const Config& config, AgentOptions& o) {
  o.heartbeat_ms = config.get_int("agent.heartbeat_ms", 1000, 10, 3600000);
  o.usage_tick_ms = config.get_int("agent.usage_tick_ms", 10000, 10, 86400000);
  o.sample_ms = config.get_int("agent.sample_ms", 5000, 10, 86400000);
  o.check_ms = config.get_int("agent.check_ms", 100, 1, 60000);
  o.ops_ms = config.get_int("agent.ops_ms", 10000, 10, 86400000);
  o.keep_finished_s = config.get_int("agent.keep_finished_s", 7 * 24 * 3600, 0, INT64_MAX / 1'000'000'000);
  o.max_grace_s = static_cast<uint32_t>(config.get_int("agent.max_grace_s", 300, 0, 86400));
  auto run_as = config.get_string("agent.run_as", "submitter");
  if (run_as != "submitter" && run_as != "agent") {
    throw std::runtime_error("agent.run_as: \"" + run_as + "\" is neither \"submitter\" nor \"agent\"");
  }
  o.run_as_submitter = run_as == "submitter";
}

// What one run may report.
void read_metric_caps(const Config& config, AgentOptions& o) {
  o.metrics_read_bytes = static_cast<size_t>(config.get_int("agent.metrics_read_kb", 256, 1, 65536)) * 1024;
  o.max_points_per_s = static_cast<uint32_t>(config.get_int("agent.max_points_per_s", o.max_points_per_s, 1, 10'000'000));
  o.max_series_per_run =
      static_cast<uint32_t>(config.get_int("agent.max_series_per_run", o.max_series_per_run, 1, 1'000'000));
  o.max_metric_name_bytes =
      static_cast<uint32_t>(config.get_int("agent.max_metric_name_bytes", o.max_metric_name_bytes, 1, 4096));
}

}  // namespace

Result<AgentOptions> AgentOptions::from_config(const Config& config) try {
  AgentOptions o;
  o.node = config.get_string("agent.node", host_name());
  o.simulate = static_cast<uint32_t>(config.get_int("agent.simulate", 0, 0, 100000));
  o.endpoint = config.get_string("agent.endpoint", "tcp://127.0.0.1:*");
  o.advertise_endpoint = config.get_string("agent.advertise", "");
  o.data = config.get_string("agent.data", "trainyard-data/agent-" + o.node);
  o.runs_dir = config.get_string("agent.runs_dir", o.data + "/runs");
  o.state_dir = o.data + "/run-state";
  o.broker_endpoint = config.get_string("broker.endpoint", "tcp://127.0.0.1:5561");
  o.broker_instance = config.get_string("broker.instance", "broker");
  auto trust = security::trust_from_config(config);
  if (!trust) return trust.status();
  o.trust = std::move(trust).value();
  o.bus_frontend = config.get_strings("bus.frontend", {"tcp://127.0.0.1:5550"});
  o.bus_backend = config.get_strings("bus.backend", {"tcp://127.0.0.1:5551"});
  read_timings(config, o);
  read_metric_caps(config, o);
  o.cgroup_root = config.get_string("agent.cgroup_root", "auto");
  o.partition = config.get_string("agent.partition", "");
  o.cpus = static_cast<uint32_t>(config.get_int("agent.cpus", host_cpus(), 1, 65536));
  o.memory_mb =
      static_cast<uint64_t>(config.get_int("agent.memory_mb", static_cast<int64_t>(host_memory_mb()), 1, 4294967296));
  o.labels = read_labels(config);
  auto declared = declared_gpus(config);
  if (!declared) return declared.status();
  o.gpus = std::move(*declared);
  if (o.simulate > 0 && o.gpus.empty()) {
    return Status::invalid("agent.simulate needs the simulated nodes' GPUs in agent.gpus "
                           "(e.g. gpus = [{type = \"A100\", memory_gb = 80, count = 8}])");
  }
  auto durability = storage::parse_durability("agent.durability", config.get_string("agent.durability", "wal"));
  if (!durability) return durability.status();
  o.durability = *durability;
  o.self_exe = executable_path();
  return o;
} catch (const std::exception& e) {
  return Status::invalid(e.what());
}

}  // namespace trainyard::agent

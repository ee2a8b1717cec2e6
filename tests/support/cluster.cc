#include "cluster.h"

#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <stdexcept>

namespace trainyard::testing {

ClusterOptions& ClusterOptions::with_test_billing(const std::string& dir) {
  std::string rates = dir + "/rates.toml";
  std::ofstream(rates) << "currency = \"EUR\"\n[[period]]\nfrom = 2020-01-01\ncpu_core_hour = \"0\"\n"
                          "memory_gb_hour = \"0\"\n[period.gpu_hour]\nA100 = \"3.60\"\n";
  billing = true;
  billing_sets.push_back("billing.rates=" + rates);
  billing_sets.push_back("billing.currency=EUR");
  return *this;
}
namespace {

std::string login_name() {
  if (const char* u = std::getenv("USER"); u && *u) return u;
  return "root";
}

}  // namespace

std::string Cluster::keys_dir() const { return options_.secure ? dir_ / "keys" : std::string(); }

std::string Cluster::user_key(const std::string& user) const { return keys_dir() + "/user-" + user + ".key"; }

// The site's keys, made as an admin makes them: `ty admin keys init`.
void Cluster::make_keys() {
  std::vector<std::string> args{bin("ty"), "admin", "keys", "init", keys_dir(), "--service", "bus", "scheduler",
                                "broker", "metrics", "billing", "gateway"};
  for (auto& a : options_.agents) args.insert(args.end(), {"--agent", a.node});
  for (auto& a : options_.agent_keys) args.insert(args.end(), {"--agent", a});
  auto users = options_.users;
  if (std::find(users.begin(), users.end(), login_name()) == users.end()) users.push_back(login_name());
  for (auto& u : users) args.insert(args.end(), {"--user", u});
  auto made = run(args);
  if (made.first != 0) throw std::runtime_error("ty admin keys init failed: " + made.second);
}

Cluster::Cluster(ClusterOptions options) : options_(std::move(options)) {
  if (options_.secure) make_keys();
  // The bus first: everyone connects to it.
  auto bus = start_bus(dir_.path(), {.extra = security_sets()});
  procs_["bus"] = std::move(bus.process);
  bus_frontend = bus.frontend;
  bus_backend = bus.backend;
  start("broker");
  start("scheduler");
  if (options_.metrics) start("metrics");
  if (options_.billing) start("billing");
  for (auto& a : options_.agents) start(a.node);
  std::ofstream(dir_ / "ty.toml") << "[scheduler]\nendpoint = \"" << scheduler << "\"\n[broker]\nendpoint = \"" << broker
                                  << "\"\n[metrics]\nendpoint = \"" << (metrics.empty() ? "tcp://127.0.0.1:9" : metrics)
                                  << "\"\n[billing]\nendpoint = \"" << (billing.empty() ? "tcp://127.0.0.1:9" : billing)
                                  << "\"\n[bus]\nbackend = \"" << bus_backend << "\"\n" << ty_security();
  ty_config_ = dir_ / "ty.toml";
}

Cluster::~Cluster() {
  // Agents first, so their runs are not orphaned while services vanish.
  for (auto& a : options_.agents) {
    auto it = procs_.find(a.node);
    if (it != procs_.end()) it->second->stop(std::chrono::milliseconds(3000));
  }
  for (auto& [name, p] : procs_) p->stop(std::chrono::milliseconds(3000));
  // Runs live in sessions of their own (they survive agent restarts): reap
  // whatever is left of this cluster's jobs.
  kill_processes_mentioning(dir_.path());
}

std::vector<std::string> Cluster::security_sets() const {
  std::vector<std::string> sets{"--set", options_.secure ? "security.keys_dir=" + keys_dir() : "security.mode=none"};
  for (auto& s : options_.site_sets) sets.insert(sets.end(), {"--set", s});
  // Whoever runs the tests operates the cluster (ty cancel, ty cloud
  // resume...), unless the test sets the directory itself.
  if (options_.site_sets.empty()) sets.insert(sets.end(), {"--set", "security.roles.admins=[\"" + login_name() + "\"]"});
  return sets;
}

std::string Cluster::ty_security() const {
  if (!options_.secure) return "[security]\nmode = \"none\"\n";
  return "[security]\nkeys_dir = \"" + keys_dir() + "\"\n[client]\nkey = \"" + user_key(login_name()) + "\"\n";
}

std::vector<std::string> Cluster::common_sets() const {
  std::vector<std::string> sets{"--set", "bus.frontend=" + bus_frontend, "--set", "bus.backend=" + bus_backend,
                                "--log-level", "info"};
  for (auto& s : security_sets()) sets.push_back(s);
  return sets;
}

void Cluster::start(const std::string& name) {
  std::string ready = dir_ / (name + ".ready");
  std::remove(ready.c_str());
  std::vector<std::string> argv;
  auto add = [&](std::initializer_list<std::string> xs) { argv.insert(argv.end(), xs); };
  auto add_sets = [&](const std::vector<std::string>& sets) {
    for (auto& s : sets) add({"--set", s});
  };
  // A restarted service binds its old port again so peers find it.
  bool first = false;
  auto endpoint_of = [&](const std::string& current) {
    if (!current.empty()) return current;
    first = true;
    return "tcp://127.0.0.1:" + std::to_string(free_loopback_port());
  };
  if (name == "broker") {
    argv = {bin("trainyard-resource-broker")};
    add({"--set", "broker.endpoint=" + endpoint_of(broker), "--set", "broker.data=" + (dir_ / "broker.db"), "--set",
         "broker.node_timeout_ms=" + std::to_string(options_.node_timeout_ms)});
    add_sets(options_.broker_sets);
  } else if (name == "scheduler") {
    argv = {bin("trainyard-scheduler")};
    add({"--set", "scheduler.endpoint=" + endpoint_of(scheduler), "--set", "scheduler.data=" + (dir_ / "scheduler.db"),
         "--set", "broker.endpoint=" + broker});
    add_sets(options_.scheduler_sets);
  } else if (name == "metrics") {
    argv = {bin("trainyard-metrics-aggregator")};
    add({"--set", "metrics.endpoint=" + endpoint_of(metrics), "--set", "metrics.data=" + (dir_ / "metrics.db")});
  } else if (name == "billing") {
    argv = {bin("trainyard-billing")};
    add({"--set", "billing.endpoint=" + endpoint_of(billing), "--set", "billing.data=" + (dir_ / "billing.db")});
    add_sets(options_.billing_sets);
  } else {
    const AgentSpec* spec = nullptr;
    for (auto& a : options_.agents) {
      if (a.node == name) spec = &a;
    }
    if (!spec) throw std::invalid_argument("no service or agent named " + name);
    std::string gpus = "[";
    for (int i = 0; i < spec->gpus; ++i) {
      gpus += std::string(i ? "," : "") + "{type=\"" + spec->gpu_type + "\",memory_gb=80}";
    }
    gpus += "]";
    argv = {bin("trainyard-agent")};
    add({"--set", "agent.node=" + name, "--set", "agent.data=" + (dir_ / (name + ".db")), "--set",
         "agent.runs_dir=" + (dir_ / (name + ".runs")), "--set", "agent.gpus=" + gpus, "--set",
         "agent.cpus=" + std::to_string(spec->cpus), "--set", "agent.memory_mb=" + std::to_string(spec->memory_mb),
         "--set", "broker.endpoint=" + broker, "--set", "agent.usage_tick_ms=1000"});
    add_sets(spec->extra);
  }
  auto sets = common_sets();
  argv.insert(argv.end(), sets.begin(), sets.end());
  add({"--ready-file", ready});
  nlohmann::json j;
  for (int attempt = 1;; ++attempt) {
    try {
      j = launch(name, argv, ready);
      break;
    } catch (const std::exception&) {
      // At a first start another test may have taken the port since it was
      // found free: try another one. A restart keeps its port.
      if (!first || attempt == 3) throw;
      std::string own = name + ".endpoint=";  // its own key, not the peers it connects to
      auto at = std::find_if(argv.begin(), argv.end(), [&](const std::string& a) { return a.rfind(own, 0) == 0; });
      if (at == argv.end()) throw;
      *at = at->substr(0, at->rfind(':') + 1) + std::to_string(free_loopback_port());
    }
  }
  std::string ep = j.value("endpoint", "");
  if (name == "broker") broker = ep;
  if (name == "scheduler") scheduler = ep;
  if (name == "metrics") metrics = ep;
  if (name == "billing") billing = ep;
}

nlohmann::json Cluster::launch(const std::string& name, const std::vector<std::string>& argv,
                               const std::string& ready) {
  std::remove(ready.c_str());
  auto& p = procs_[name];
  p = std::make_unique<Process>(argv, dir_ / (name + ".log"));
  std::optional<nlohmann::json> j;
  bool settled =
      wait_until([&] { return (j = read_json(ready)).has_value() || !p->running(); }, std::chrono::seconds(15));
  if (j) return *j;
  auto log = p->log();
  if (log.size() > 3000) log = "..." + log.substr(log.size() - 3000);
  throw std::runtime_error(name +
                           (settled ? " exited before it was ready" : " was not ready within 15 s (" + ready + ")") +
                           "; its log:\n" + log);
}

void Cluster::kill9(const std::string& name) {
  auto& p = *procs_.at(name);
  // Only the service's own pid: an agent's runs live in their own sessions.
  ::kill(p.pid(), SIGKILL);
  p.wait(std::chrono::seconds(5));
}

std::pair<int, std::string> Cluster::ty(std::vector<std::string> args, std::chrono::milliseconds timeout) {
  args.insert(args.begin(), bin("ty"));
  return run(args, timeout, {{"TY_CONFIG", ty_config_}});
}

std::string Cluster::logs() const {
  std::string out;
  for (auto& [name, p] : procs_) {
    auto log = p->log();
    if (log.size() > 4000) log = "..." + log.substr(log.size() - 4000);
    out += "---- " + name + " ----\n" + log + "\n";
  }
  return out;
}

}  // namespace trainyard::testing

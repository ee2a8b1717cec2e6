// Endpoint resolution: flags, then one config file, then defaults.
#include "trainyard/endpoints.h"

#include <signal.h>
#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "util/config.h"

namespace trainyard::client {

std::string connectable(const std::string& endpoint) {
  for (std::string_view any : {"tcp://*:", "tcp://0.0.0.0:"}) {
    if (endpoint.rfind(any, 0) == 0) return "tcp://127.0.0.1:" + endpoint.substr(any.size());
  }
  return endpoint;
}

std::string local_registry_path(const std::string& home, const std::optional<std::string>& xdg_state_home) {
  if (xdg_state_home && !xdg_state_home->empty()) return *xdg_state_home + "/trainyard/local";
  return home + "/.local/state/trainyard/local";
}

std::string running_local_config(const std::string& registry_path) {
  std::ifstream registry(registry_path);
  for (std::string dir; std::getline(registry, dir);) {
    if (dir.empty()) continue;
    std::ifstream pid_file(dir + "/run/scheduler.pid");
    long pid = 0;
    if (!(pid_file >> pid) || pid <= 0 || ::kill(static_cast<pid_t>(pid), 0) != 0) continue;
    // A pid that lives on as a zombie or was reused by another program is
    // not the scheduler.
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    std::getline(stat, line);
    auto paren = line.rfind(')');
    if (paren == std::string::npos || paren + 2 >= line.size() || line[paren + 2] == 'Z') continue;
    std::ifstream cmdline_file("/proc/" + std::to_string(pid) + "/cmdline");
    std::stringstream cmdline;
    cmdline << cmdline_file.rdbuf();
    if (cmdline.str().find("trainyard-scheduler") == std::string::npos) continue;
    std::string config = dir + "/trainyard.toml";
    struct stat st {};
    if (::stat(config.c_str(), &st) == 0) return config;
  }
  return "";
}

namespace {

std::string default_user_key(const std::string& home) {
  const char* xdg = std::getenv("XDG_CONFIG_HOME");
  std::string base = xdg && *xdg ? std::string(xdg) : home + "/.config";
  return base + "/trainyard/key";
}

Status read_security(const Config& config, Endpoints& e) {
  auto mode = config.get_string("security.mode", "curve");
  if (mode != "curve" && mode != "none") {
    return Status::invalid("security.mode: \"" + mode + "\" is neither \"curve\" nor \"none\"");
  }
  e.security.mode = mode == "none" ? security::Mode::kNone : security::Mode::kCurve;
  std::string dir = config.get_string("security.keys_dir", "/etc/trainyard/keys");
  e.security.authorized_keys = config.get_string("security.authorized_keys", dir + "/authorized_keys");
  e.security.key_file = config.get_string("client.key", e.security.key_file.string());
  e.scheduler_principal = "service:" + config.get_string("scheduler.instance", "scheduler");
  e.broker_principal = "service:" + config.get_string("broker.instance", "broker");
  e.metrics_principal = "service:" + config.get_string("metrics.instance", "metrics");
  e.billing_principal = "service:" + config.get_string("billing.instance", "billing");
  return Status::success();
}

// The config file to read: --config's, else $TY_CONFIG's (either must
// exist), else ~/.config/trainyard/config.toml, else `local_config`, when
// there; "" when there is none.
Result<std::string> config_file(const EndpointFlags& flags, const std::optional<std::string>& ty_config_env,
                                const std::string& home, const std::string& local_config) {
  std::string path;
  bool must_exist = false;
  if (flags.config && !flags.config->empty()) {
    path = *flags.config;
    must_exist = true;
  } else if (ty_config_env && !ty_config_env->empty()) {
    path = *ty_config_env;
    must_exist = true;
  } else if (!home.empty()) {
    path = home + "/.config/trainyard/config.toml";
  }
  struct stat st {};
  bool exists = !path.empty() && ::stat(path.c_str(), &st) == 0;
  if (!exists && must_exist) {
    return Status::invalid("config file " + path + " (from " + (flags.config ? "--config" : "$TY_CONFIG") +
                           ") does not exist");
  }
  if (!exists && !local_config.empty()) {
    path = local_config;
    exists = ::stat(path.c_str(), &st) == 0;
  }
  return exists ? path : std::string();
}

// The endpoints, timeout and security settings a config file gives.
Status read_config(const std::string& path, Endpoints& e) {
  auto config = Config::load(path);
  if (!config) return config.status();
  e.source = path;
  try {
    e.scheduler = config->get_string("scheduler.endpoint", e.scheduler);
    e.broker = config->get_string("broker.endpoint", e.broker);
    e.metrics = config->get_string("metrics.endpoint", e.metrics);
    e.billing = config->get_string("billing.endpoint", e.billing);
    if (config->has("bus.backend")) e.bus = config->get_strings("bus.backend");
    e.timeout_ms = static_cast<int>(config->get_int("client.timeout_ms", e.timeout_ms));
    if (auto st = read_security(*config, e); !st) return st;
  } catch (const std::runtime_error& err) {
    return Status::invalid(err.what());
  }
  return Status::success();
}

// What the flags say, over the config's.
void apply_flags(const EndpointFlags& flags, Endpoints& e) {
  if (flags.scheduler) e.scheduler = *flags.scheduler;
  if (flags.broker) e.broker = *flags.broker;
  if (flags.metrics) e.metrics = *flags.metrics;
  if (flags.billing) e.billing = *flags.billing;
  if (flags.bus) {
    e.bus.clear();
    std::string s = *flags.bus;
    for (size_t start = 0; start <= s.size();) {
      auto comma = s.find(',', start);
      auto item = s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      if (!item.empty()) e.bus.push_back(item);
      start = comma == std::string::npos ? s.size() + 1 : comma + 1;
    }
  }
  if (flags.timeout_ms) e.timeout_ms = *flags.timeout_ms;
}

}  // namespace

Result<Endpoints> resolve_endpoints(const EndpointFlags& flags, const std::optional<std::string>& ty_config_env,
                                    const std::string& home, const std::string& local_config) {
  Endpoints e;
  e.security.key_file = default_user_key(home);
  e.security.authorized_keys = "/etc/trainyard/keys/authorized_keys";
  auto path = config_file(flags, ty_config_env, home, local_config);
  if (!path) return path.status();
  if (!path->empty()) {
    if (auto s = read_config(*path, e); !s) return s;
  }
  apply_flags(flags, e);
  if (e.timeout_ms <= 0) return Status::invalid("the request timeout must be positive (client.timeout_ms / --timeout)");
  for (auto* s : {&e.scheduler, &e.broker, &e.metrics, &e.billing}) *s = connectable(*s);
  for (auto& b : e.bus) b = connectable(b);
  return e;
}

}  // namespace trainyard::client

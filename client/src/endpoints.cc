// Endpoint resolution: flags, then one config file, then defaults.
#include "trainyard/endpoints.h"

#include <sys/stat.h>

#include <stdexcept>

#include "util/config.h"

namespace trainyard::client {

std::string connectable(const std::string& endpoint) {
  for (std::string_view any : {"tcp://*:", "tcp://0.0.0.0:"}) {
    if (endpoint.rfind(any, 0) == 0) return "tcp://127.0.0.1:" + endpoint.substr(any.size());
  }
  return endpoint;
}

Result<Endpoints> resolve_endpoints(const EndpointFlags& flags, const std::optional<std::string>& ty_config_env,
                                    const std::string& home) {
  Endpoints e;
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
  if (exists) {
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
    } catch (const std::runtime_error& err) {
      return Status::invalid(err.what());
    }
  }
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
  if (e.timeout_ms <= 0) return Status::invalid("the request timeout must be positive (client.timeout_ms / --timeout)");
  for (auto* s : {&e.scheduler, &e.broker, &e.metrics, &e.billing}) *s = connectable(*s);
  for (auto& b : e.bus) b = connectable(b);
  return e;
}

}  // namespace trainyard::client

// Where the client finds the services. Each endpoint comes from, in order:
// a flag (--scheduler, --broker, --metrics, --billing, --bus), the TOML file
// named by $TY_CONFIG (or --config), ~/.config/trainyard/config.toml, and
// the local defaults of docs/flows.md. Keys as in the services' config:
// scheduler.endpoint, broker.endpoint, metrics.endpoint, billing.endpoint,
// bus.backend; plus client.timeout_ms.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "util/status.h"

namespace trainyard::client {

struct Endpoints {
  std::string scheduler = "tcp://127.0.0.1:5560";
  std::string broker = "tcp://127.0.0.1:5561";
  std::string metrics = "tcp://127.0.0.1:5562";
  std::string billing = "tcp://127.0.0.1:5563";
  std::vector<std::string> bus = {"tcp://127.0.0.1:5551"};  // forwarders' XPUB (backend)
  int timeout_ms = 1500;                                     // per request try (two tries)
  std::string source;  // the config file used, or "" when none
};

// What the command line said; unset fields fall through to the files.
struct EndpointFlags {
  std::optional<std::string> config;  // --config FILE: used instead of $TY_CONFIG
  std::optional<std::string> scheduler, broker, metrics, billing, bus;
  std::optional<int> timeout_ms;
};

// Resolves the endpoints. `ty_config_env` is $TY_CONFIG (unset or empty:
// none); `home` is $HOME (for ~/.config/trainyard/config.toml). A file named
// by --config or $TY_CONFIG must exist; the one in ~/.config may not. Errors
// (InvalidArgument) name the file, line and key.
Result<Endpoints> resolve_endpoints(const EndpointFlags& flags, const std::optional<std::string>& ty_config_env,
                                    const std::string& home);

// A bind address is not a place to connect to: "tcp://*:5560" and
// "tcp://0.0.0.0:5560" become "tcp://127.0.0.1:5560" (the same config file
// then serves the services and the client on one machine).
std::string connectable(const std::string& endpoint);

}  // namespace trainyard::client

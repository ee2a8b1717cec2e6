// Where the client finds the services. Each endpoint comes from, in order:
// a flag (--scheduler, --broker, --metrics, --billing, --bus), the TOML file
// named by $TY_CONFIG (or --config), ~/.config/trainyard/config.toml, the
// config of the running local Trainyard (`ty local up`), and the local
// defaults of docs/flows.md. Keys as in the services' config:
// scheduler.endpoint, broker.endpoint, metrics.endpoint, billing.endpoint,
// bus.backend; plus client.timeout_ms.
//
// Security as the services': security.mode ("curve" unless "none"), the
// site's security.authorized_keys (default security.keys_dir/authorized_keys),
// and this user's key: client.key, default $XDG_CONFIG_HOME/trainyard/key
// (~/.config/trainyard/key, made by `ty login`). The services' principals
// come from their instance names (scheduler.instance...).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "security/site.h"
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
  // Whose keys the services must prove they hold (under CURVE).
  std::string scheduler_principal = "service:scheduler", broker_principal = "service:broker",
              metrics_principal = "service:metrics", billing_principal = "service:billing";
  security::SecurityOptions security;
};

// What the command line said; unset fields fall through to the files.
struct EndpointFlags {
  std::optional<std::string> config;  // --config FILE: used instead of $TY_CONFIG
  std::optional<std::string> scheduler, broker, metrics, billing, bus;
  std::optional<int> timeout_ms;
};

// Resolves the endpoints. `ty_config_env` is $TY_CONFIG (unset or empty:
// none); `home` is $HOME (for ~/.config/trainyard/config.toml). A file named
// by --config or $TY_CONFIG must exist; the one in ~/.config may not.
// `local_config` (may be empty) is read when none of those is there: the
// running local Trainyard's config (running_local_config()). Errors
// (InvalidArgument) name the file, line and key.
Result<Endpoints> resolve_endpoints(const EndpointFlags& flags, const std::optional<std::string>& ty_config_env,
                                    const std::string& home, const std::string& local_config = "");

// Where `ty local up` lists the data directories of the local Trainyards it
// started, most recent first, one per line: $XDG_STATE_HOME/trainyard/local
// (unset or empty: ~/.local/state/trainyard/local).
std::string local_registry_path(const std::string& home, const std::optional<std::string>& xdg_state_home);

// DIR/trainyard.toml of the first local Trainyard in the registry whose
// scheduler is running (the pid in DIR/run/scheduler.pid is alive), or "".
std::string running_local_config(const std::string& registry_path);

// A bind address is not a place to connect to: "tcp://*:5560" and
// "tcp://0.0.0.0:5560" become "tcp://127.0.0.1:5560" (the same config file
// then serves the services and the client on one machine).
std::string connectable(const std::string& endpoint);

}  // namespace trainyard::client

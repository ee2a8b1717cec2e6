// `ty local up|status|down`: a whole Trainyard on this machine (bus, resource
// broker, scheduler, metrics-aggregator, billing, gateway and one agent with
// declared GPUs), run from the same binaries and config keys as a multi-host
// deployment, under one data directory: DIR/trainyard.toml (shared by every
// service and by ty), DIR/rates.toml, DIR/logs/, DIR/run/ (pid and ready
// files), DIR/db/ (each service's RocksDB) and DIR/runs/ (the agent's runs).
// The pure part (layout, ports, config text) is declared here for tests.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "commands.h"

namespace trainyard::ty {

// The default ports of docs/flows.md start here (bus frontend).
inline constexpr int kLocalPortBase = 5550;

// What `ty local up` was asked for; remembered in the config's [local] table
// so that a later `up` without flags starts the same Trainyard.
struct LocalSettings {
  int gpus = 2;                   // declared GPUs of the one agent
  std::string gpu_type = "A100";
  int port_base = kLocalPortBase;  // see local_ports()
  int http_port = 8080;            // the gateway (default 8080 + port_base - 5550)
  std::string node = "local";      // the agent's node name
  std::string user;                // the owner: the gateway admin its login links are for
  // A cloud pool "cloud" of at most this many rented nodes (0: none), whose
  // `local` driver starts real agents of 4 x cloud_gpu_type on this machine
  // after a boot delay (docs/cloud.md): a burst to watch without a cloud.
  int cloud_nodes = 0;
  std::string cloud_gpu_type = "H100";
  // Found at each start, not remembered: the driver and the agent binary.
  std::string cloud_driver, agent_binary;
};

// One process of the local Trainyard: `name` names its files, `binary` is
// the program (found next to ty, then on PATH).
struct LocalService {
  std::string name;
  std::string binary;
};
// In start order: bus, broker, scheduler, metrics, billing, agent, gateway.
const std::vector<LocalService>& local_services();

// The files of a local Trainyard in its data directory.
struct LocalLayout {
  std::string dir;
  std::string config() const { return dir + "/trainyard.toml"; }
  std::string rates() const { return dir + "/rates.toml"; }
  std::string logs() const { return dir + "/logs"; }
  std::string log(const std::string& service) const { return logs() + "/" + service + ".log"; }
  std::string pid(const std::string& service) const { return dir + "/run/" + service + ".pid"; }
  std::string ready(const std::string& service) const { return dir + "/run/" + service + ".ready"; }
  std::string data(const std::string& service) const { return dir + "/db/" + service; }
  std::string runs() const { return dir + "/runs"; }
  std::string keys() const { return dir + "/keys"; }
  std::string cloud() const { return dir + "/cloud"; }  // the local driver's instances
};

// The local Trainyard's CURVE keys under DIR/keys (made once, kept): every
// service, the agent of `node`, and `user` (who ty acts as). The data
// directory becomes 0700 so no other local user reads them. False after
// saying why.
// With cloud_nodes > 0, also the pool's slots agent:cloud-0 .. cloud-<n - 1>.
bool ensure_local_keys(const LocalLayout& layout, const std::string& node, const std::string& user,
                       int cloud_nodes = 0);
// The principal name ty local uses for its owner.
std::string local_user_name(const LocalSettings& s);

// The TCP ports a service binds on 127.0.0.1: the defaults of docs/flows.md
// shifted by port_base - 5550 (bus 5550/5551, scheduler 5560, broker 5561,
// metrics 5562, billing 5563), the gateway's http_port; none for the agent
// (its ROUTER takes any free port and is reported to the broker).
std::vector<int> local_ports(const LocalSettings& s, const std::string& service);

// The config every service and ty read.
std::string local_config_text(const LocalLayout& layout, const LocalSettings& s);
// Its [cloud] and [pools.cloud] (cloud_nodes > 0).
std::string local_cloud_text(const LocalLayout& layout, const LocalSettings& s);
// The gateway's token ROUTER of a local Trainyard: ipc:// in its 0700 run directory.
std::string local_gateway_endpoint(const LocalLayout& layout);

// The rate card written to DIR/rates.toml when there is none (USD).
std::string default_rate_card();

// ${XDG_DATA_HOME:-$HOME/.local/share}/trainyard
std::string default_local_dir(const std::string& home, const std::optional<std::string>& xdg_data_home);

// A host name usable as a node name (no '.', '@' or spaces: it becomes a topic).
std::string node_name_from_host(const std::string& host);

void add_local_commands(CLI::App& app, Context& ctx, Action& action);

}  // namespace trainyard::ty

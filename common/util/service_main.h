// The command line every Trainyard service shares: --config FILE, repeated
// --set key=value overrides, --log-level, plus the service's own flags.
// Keeps main.cc files to "parse, build the shell, run".
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "security/site.h"
#include "util/config.h"

namespace trainyard {

struct ServiceArgs {
  std::string config_path;
  std::vector<std::string> overrides;
  std::vector<std::string> flag_sets;  // from ConfigFlags, applied after --set
  std::string log_level;
  std::string log_file;
};

// Adds the shared flags to `app`.
inline void add_service_flags(CLI::App& app, ServiceArgs& args) {
  app.add_option("-c,--config", args.config_path, "TOML config file (see deploy/trainyard.example.toml)");
  app.add_option("--set", args.overrides, "Override a config key: --set section.key=value (repeatable)");
  app.add_option("--log-level", args.log_level, "trace, debug, info, warn or error (default: config log.level or info)");
  app.add_option("--log-file", args.log_file, "Append logs to this file instead of stderr");
}

// A flag that is a shorthand for one config key holding a string, as
// `--listen HOST:PORT` for gateway.listen: the value is set as --set would
// set it, quoted, so "8080" or "true" stay strings.
struct ConfigFlag {
  const char* flag;  // "--listen"
  const char* key;   // "gateway.listen"
  const char* help;
};
void add_config_flag(CLI::App& app, ServiceArgs& args, const ConfigFlag& flag);

// Loads the config named by the flags and checks every key is one Trainyard
// knows (util/config_schema.h); on error prints it and exits 2.
Config load_service_config(const ServiceArgs& args);

// Sets up logging for `service` from flags and config (log.level, log.file).
void init_service_logging(const std::string& service, const ServiceArgs& args, const Config& config);

// Writes `text` to `path` through a .tmp and a rename, so a reader sees all
// of it or nothing. False (errno set) on failure.
bool write_file_atomic(const std::string& path, std::string_view text);
// write_file_atomic of j.dump(); does nothing (true) when `path` is empty.
bool write_json_atomic(const std::string& path, const nlohmann::json& j);

// Writes `j` (plus "pid") to `path` atomically (a .tmp then rename), so a
// supervisor or test reading it sees all of it or nothing. No-op if empty.
// Installs the process's security on `ctx` (security::Site), or warns at
// every start that security.mode = "none" leaves it open. nullopt (the
// reason logged) when the key or the authorized keys cannot be used.
std::optional<std::unique_ptr<security::Site>> install_security(zmq::context_t& ctx,
                                                                 const security::SecurityOptions& options);

void write_ready_file(const std::string& path, nlohmann::json j);

}  // namespace trainyard

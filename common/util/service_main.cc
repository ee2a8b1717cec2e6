#include "util/service_main.h"

#include <cstdio>
#include <stdexcept>
#include <cstdlib>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include "util/config_schema.h"
#include "util/log.h"

namespace trainyard {

namespace {

// `v` as a TOML basic string.
std::string toml_quoted(const std::string& v) {
  std::string out = "\"";
  for (char c : v) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

}  // namespace

void add_config_flag(CLI::App& app, ServiceArgs& args, const ConfigFlag& flag) {
  std::string key = flag.key;
  app.add_option_function<std::string>(
      flag.flag, [&args, key](const std::string& v) { args.flag_sets.push_back(key + "=" + toml_quoted(v)); },
      std::string(flag.help) + " (config " + key + ")");
}

Config load_service_config(const ServiceArgs& args) {
  std::vector<std::string> sets = args.overrides;
  sets.insert(sets.end(), args.flag_sets.begin(), args.flag_sets.end());
  auto c = Config::load(args.config_path, sets);
  if (!c) {
    std::fprintf(stderr, "error: %s\n", c.status().message().c_str());
    std::exit(2);
  }
  // A misspelt key silently ignored is a classic outage: refuse it.
  if (auto known = ConfigSchema::trainyard().check(*c); !known.ok()) {
    std::fprintf(stderr, "error: %s\n", known.message().c_str());
    std::exit(2);
  }
  return std::move(c).value();
}

void init_service_logging(const std::string& service, const ServiceArgs& args, const Config& config) {
  try {
    std::string level = args.log_level.empty() ? config.get_string("log.level", "info") : args.log_level;
    std::string file = args.log_file.empty() ? config.get_string("log.file", "") : args.log_file;
    init_logging(service, level, file);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    std::exit(2);
  }
}

bool write_file_atomic(const std::string& path, std::string_view text) {
  std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "w");
  if (!f) return false;
  bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  ok = std::fclose(f) == 0 && ok;
  return ok && std::rename(tmp.c_str(), path.c_str()) == 0;
}

bool write_json_atomic(const std::string& path, const nlohmann::json& j) {
  return path.empty() || write_file_atomic(path, j.dump());
}

void write_ready_file(const std::string& path, nlohmann::json j) {
  if (path.empty()) return;
  j["pid"] = getpid();
  if (!write_json_atomic(path, j)) throw std::runtime_error("cannot write ready file " + path);
}

std::optional<std::unique_ptr<security::Site>> install_security(zmq::context_t& ctx,
                                                                 const security::SecurityOptions& options) {
  if (options.mode == security::Mode::kNone) {
    spdlog::warn("security.mode = \"none\": every endpoint is plaintext and every peer is believed on its word; "
                 "anyone who reaches a port can act as anyone (deploy/README.md, \"Security\")");
    return std::unique_ptr<security::Site>();
  }
  auto site = security::Site::install(ctx, options);
  if (!site) {
    spdlog::error("security: {} (create the site's keys with `ty admin keys init`, or set security.mode = \"none\")",
                  site.status().message());
    return std::nullopt;
  }
  spdlog::info("security: CURVE as {}, {} authorized principals", (*site)->principal(), (*site)->keyring()->size());
  return std::move(site).value();
}

}  // namespace trainyard

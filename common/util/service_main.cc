#include "util/service_main.h"

#include <cstdio>
#include <cstdlib>

#include "util/log.h"

namespace trainyard {

Config load_service_config(const ServiceArgs& args) {
  auto c = Config::load(args.config_path, args.overrides);
  if (!c) {
    std::fprintf(stderr, "error: %s\n", c.status().message().c_str());
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

}  // namespace trainyard

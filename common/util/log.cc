#include "util/log.h"

#include <stdexcept>

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

namespace trainyard {

void init_logging(const std::string& service, const std::string& level, const std::string& file) {
  auto lvl = spdlog::level::from_str(level);
  if (lvl == spdlog::level::off && level != "off") {
    throw std::runtime_error("unknown log level '" + level + "' (use trace, debug, info, warn, error)");
  }
  std::shared_ptr<spdlog::logger> logger;
  if (file.empty()) {
    logger = spdlog::stderr_logger_mt(service);
  } else {
    logger = spdlog::basic_logger_mt(service, file);
  }
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e [%n] [%l] %v");
  logger->set_level(lvl);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

}  // namespace trainyard

// Logging: spdlog, one logger for the process, named after the service.
#pragma once

#include <string>

#include <spdlog/spdlog.h>

namespace trainyard {

// Sets up the default logger: "[time] [service] [level] message" on stderr,
// or appended to `file` when it is not empty. `level`: trace, debug, info,
// warn, error. Throws std::runtime_error on an unknown level.
void init_logging(const std::string& service, const std::string& level, const std::string& file = "");

}  // namespace trainyard

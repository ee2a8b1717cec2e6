// Paths as a submission reads them (private to client/src): relative to the
// submit or work directory, and a command's or script's base name.
#pragma once

#include <string>

namespace trainyard::client::detail {

inline std::string absolute(const std::string& base, const std::string& path) {
  if (path.empty() || path.front() == '/' || base.empty()) return path;
  return base.back() == '/' ? base + path : base + "/" + path;
}

inline std::string basename_of(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace trainyard::client::detail

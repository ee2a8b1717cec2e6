#include "rpc/endpoint.h"

#include <algorithm>
#include <cctype>
#include <string>

namespace trainyard::rpc {
namespace {

constexpr size_t kMaxEndpointBytes = 255;
constexpr size_t kMaxIpcPathBytes = 107;  // sockaddr_un's sun_path, less its NUL

bool host_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_' || c == ':';
}

Status check_tcp(std::string_view rest) {
  auto colon = rest.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return Status::invalid("tcp endpoint has no HOST:PORT");
  auto host = rest.substr(0, colon);
  auto port = rest.substr(colon + 1);
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') return Status::invalid("tcp endpoint has a malformed [IPv6] host");
    host = host.substr(1, host.size() - 2);
  }
  if (!std::all_of(host.begin(), host.end(), host_char) || host == "*")
    return Status::invalid("tcp endpoint host '" + std::string(host) + "' is not a host name or address");
  if (port.empty() || port.size() > 5 || !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return Status::invalid("tcp endpoint port '" + std::string(port) + "' is not a number");
  int p = std::stoi(std::string(port));
  if (p < 1 || p > 65535) return Status::invalid("tcp endpoint port " + std::to_string(p) + " is out of 1-65535");
  return Status::success();
}

}  // namespace

Status check_connect_endpoint(std::string_view ep) {
  if (ep.size() > kMaxEndpointBytes) return Status::invalid("endpoint is longer than 255 bytes");
  if (!std::all_of(ep.begin(), ep.end(), [](char c) { return c > ' ' && c < 127; }))
    return Status::invalid("endpoint has a space, control or non-ASCII character");
  auto scheme_end = ep.find("://");
  if (scheme_end == std::string_view::npos) return Status::invalid("endpoint has no scheme (tcp://, ipc://)");
  auto scheme = ep.substr(0, scheme_end);
  auto rest = ep.substr(scheme_end + 3);
  if (scheme == "tcp") return check_tcp(rest);
  if (scheme == "ipc") {
    if (rest.empty() || rest.size() > kMaxIpcPathBytes) return Status::invalid("ipc endpoint path is empty or too long");
    return Status::success();
  }
  if (scheme == "inproc") return rest.empty() ? Status::invalid("inproc endpoint has no name") : Status::success();
  return Status::invalid("endpoint scheme '" + std::string(scheme) + "' is not tcp, ipc or inproc");
}

}  // namespace trainyard::rpc

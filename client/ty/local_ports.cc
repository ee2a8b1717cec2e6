// Ports for `ty local`: bind checks and loopback connections.
#include "local_ports.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>

using namespace std::chrono_literals;

namespace trainyard::ty {

namespace {

sockaddr_in loopback(int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

}  // namespace

bool port_taken(int port) {
  int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return false;
  int one = 1;
  ::setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in a = loopback(port);
  bool taken = ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0;
  ::close(s);
  return taken;
}

int connect_local(int port, std::chrono::milliseconds timeout) {
  int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return -1;
  timeval tv{static_cast<time_t>(timeout.count() / 1000), static_cast<suseconds_t>(timeout.count() % 1000 * 1000)};
  ::setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in a = loopback(port);
  if (::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    ::close(s);
    return -1;
  }
  return s;
}

int http_status(int port, const std::string& path) {
  int s = connect_local(port, 4000ms);
  if (s < 0) return 0;
  std::string req = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  int code = 0;
  if (::send(s, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size())) {
    char buf[64] = {};
    ssize_t n = ::recv(s, buf, sizeof(buf) - 1, 0);
    std::string line(buf, n > 0 ? static_cast<size_t>(n) : 0);
    if (line.rfind("HTTP/1.", 0) == 0 && line.size() >= 12) code = std::atoi(line.c_str() + 9);
  }
  ::close(s);
  return code;
}

}  // namespace trainyard::ty

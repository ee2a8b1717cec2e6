// A port base for `ty local up --port-base` that no other test is using:
// every port a local Trainyard binds (base..base+13 and the gateway's
// base+2530) is free on 127.0.0.1 right now. Bases lie below the kernel's
// ephemeral range, where tests binding "tcp://127.0.0.1:*" never land.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <initializer_list>
#include <stdexcept>

namespace trainyard::testing {

inline bool local_port_free(int port) {
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  if (s < 0) return false;
  int one = 1;
  ::setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  ::close(s);
  return ok;
}

// Tries bases from one derived from the pid, so two test processes started
// together start their search in different places.
inline int free_port_base() {
  for (int i = 0; i < 200; ++i) {
    int base = 20000 + ((::getpid() * 7 + i) % 200) * 50;
    bool ok = true;
    for (int port : {base, base + 1, base + 10, base + 11, base + 12, base + 13, base + 2530}) {
      ok = ok && local_port_free(port);
    }
    if (ok) return base;
  }
  throw std::runtime_error("no free port base for a local Trainyard between 20000 and 30000");
}

}  // namespace trainyard::testing

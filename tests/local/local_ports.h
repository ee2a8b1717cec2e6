// A port base for `ty local up --port-base` that no other test is using:
// every port a local Trainyard binds (base..base+13 and the gateway's
// base+2530) is free on 127.0.0.1 right now. Bases lie below the kernel's
// ephemeral range, where tests binding "tcp://127.0.0.1:*" never land, and
// above the ports free_loopback_port gives (12000-19999).
#pragma once

#include <unistd.h>

#include <initializer_list>
#include <stdexcept>

#include "process.h"

namespace trainyard::testing {

// Tries bases from one derived from the pid, so two test processes started
// together start their search in different places.
inline int free_port_base() {
  for (int i = 0; i < 200; ++i) {
    int base = 20000 + ((::getpid() * 7 + i) % 200) * 50;
    bool ok = true;
    for (int port : {base, base + 1, base + 10, base + 11, base + 12, base + 13, base + 2530}) {
      ok = ok && loopback_port_free(port);
    }
    if (ok) return base;
  }
  throw std::runtime_error("no free port base for a local Trainyard between 20000 and 30000");
}

}  // namespace trainyard::testing

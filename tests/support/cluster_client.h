// A client library connection to a test Cluster: every endpoint the cluster
// runs, as one principal. For tests that link trainyard_client.
#pragma once

#include <string>

#include "cluster.h"
#include "trainyard/client.h"

namespace trainyard::testing {

inline client::Client connect(const Cluster& c, const std::string& principal = "user:alice", int timeout_ms = 3000) {
  client::Endpoints e;
  e.scheduler = c.scheduler;
  e.broker = c.broker;
  if (!c.metrics.empty()) e.metrics = c.metrics;
  if (!c.billing.empty()) e.billing = c.billing;
  e.bus = {c.bus_backend};
  e.timeout_ms = timeout_ms;
  if (c.secure()) {
    // The user's own key proves who asks (principal "user:NAME").
    e.security.mode = security::Mode::kCurve;
    e.security.key_file = c.user_key(principal.substr(principal.find(':') + 1));
    e.security.authorized_keys = c.keys_dir() + "/authorized_keys";
  } else {
    e.security.mode = security::Mode::kNone;
  }
  return client::Client(e, principal);
}

}  // namespace trainyard::testing

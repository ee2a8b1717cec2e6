// A client library connection to a test Cluster: every endpoint the cluster
// runs, as one principal. For tests that link trainyard_client.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>

#include "cluster.h"
#include "security/site.h"
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

// A user's key in a secure Cluster, for a raw rpc::Client
// (rpc::ClientOptions::site); null when the cluster runs without CURVE.
inline std::unique_ptr<security::Site> user_identity(const Cluster& c, const std::string& user) {
  if (!c.secure()) return nullptr;
  security::SecurityOptions o;
  o.key_file = c.user_key(user);
  o.authorized_keys = c.keys_dir() + "/authorized_keys";
  auto s = security::Site::load(o);
  if (!s) throw std::runtime_error(s.status().to_string());
  return std::move(s).value();
}

}  // namespace trainyard::testing

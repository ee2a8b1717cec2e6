// The services behind the gateway, as request/reply peers. A ZeroMQ socket
// belongs to one thread, so each HTTP worker thread gets its own rpc::Client
// per service, made on first use and kept for the thread's life. Calls never
// hang: a peer that does not answer within timeout_ms x tries is Unavailable,
// which the API turns into a 503 naming it.
#pragma once

#include <string>

#include <zmq.hpp>

#include "rpc/client.h"

namespace trainyard::gateway {

enum class Service { kScheduler, kBroker, kMetrics, kBilling };

// The name a 503 or /metrics uses: "scheduler", "resource-broker",
// "metrics-aggregator", "billing".
const char* service_name(Service s);

struct BackendOptions {
  std::string scheduler;  // scheduler.endpoint
  std::string broker;     // broker.endpoint
  std::string metrics;    // metrics.endpoint
  std::string billing;    // billing.endpoint
  int timeout_ms = 1500;
  int tries = 2;
  // Whose CURVE keys they must prove they hold (from <service>.instance).
  std::string scheduler_principal = "service:scheduler", broker_principal = "service:broker",
              metrics_principal = "service:metrics", billing_principal = "service:billing";
};

class Backends {
 public:
  // The principal of `peer` ("scheduler", ..., "agent NODE").
  std::string server_of(const std::string& peer) const;
  Backends(zmq::context_t& ctx, BackendOptions options);

  // On this thread's client for `s`.
  Result<rpc::Reply> call(Service s, fb::RequestBody type, const rpc::BuildBody& build);
  // On a fresh client that says who asks (submit, cancel).
  Result<rpc::Reply> call_as(Service s, const std::string& principal, fb::RequestBody type,
                             const rpc::BuildBody& build);
  // On a fresh client (safe from any thread; used for parallel fan-out).
  Result<rpc::Reply> call_fresh(Service s, fb::RequestBody type, const rpc::BuildBody& build);
  // To a node agent's ROUTER, on this thread's client for that endpoint.
  Result<rpc::Reply> call_agent(const std::string& node, const std::string& endpoint, fb::RequestBody type,
                                const rpc::BuildBody& build);

  const std::string& endpoint(Service s) const;
  const BackendOptions& options() const { return options_; }

 private:
  rpc::Client& client(const std::string& peer, const std::string& endpoint);

  zmq::context_t& ctx_;
  BackendOptions options_;
};

// A configured endpoint made connectable: "tcp://*:5560" and
// "tcp://0.0.0.0:5560" (what a service binds) become "tcp://127.0.0.1:5560".
std::string connectable(std::string endpoint);

}  // namespace trainyard::gateway

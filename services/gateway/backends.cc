#include "backends.h"

#include <map>
#include <memory>

namespace trainyard::gateway {

const char* service_name(Service s) {
  switch (s) {
    case Service::kScheduler: return "scheduler";
    case Service::kBroker: return "resource-broker";
    case Service::kMetrics: return "metrics-aggregator";
    case Service::kBilling: return "billing";
  }
  return "?";
}

std::string connectable(std::string e) {
  for (const char* any : {"tcp://*:", "tcp://0.0.0.0:"}) {
    std::string a = any;
    if (e.rfind(a, 0) == 0) return "tcp://127.0.0.1:" + e.substr(a.size());
  }
  return e;
}

Backends::Backends(zmq::context_t& ctx, BackendOptions options) : ctx_(ctx), options_(std::move(options)) {
  options_.scheduler = connectable(options_.scheduler);
  options_.broker = connectable(options_.broker);
  options_.metrics = connectable(options_.metrics);
  options_.billing = connectable(options_.billing);
}

const std::string& Backends::endpoint(Service s) const {
  switch (s) {
    case Service::kScheduler: return options_.scheduler;
    case Service::kBroker: return options_.broker;
    case Service::kMetrics: return options_.metrics;
    case Service::kBilling: return options_.billing;
  }
  return options_.scheduler;
}

std::string Backends::server_of(const std::string& peer) const {
  if (peer == "scheduler") return options_.scheduler_principal;
  if (peer == "resource-broker") return options_.broker_principal;
  if (peer == "metrics-aggregator") return options_.metrics_principal;
  if (peer == "billing") return options_.billing_principal;
  if (peer.rfind("agent ", 0) == 0) return "agent:" + peer.substr(6);
  return "service:" + peer;
}

rpc::Client& Backends::client(const std::string& peer, const std::string& endpoint) {
  // Per thread, per Backends instance: the key holds `this` so two instances
  // (tests) never share sockets.
  thread_local std::map<std::pair<const void*, std::string>, std::unique_ptr<rpc::Client>> clients;
  auto key = std::make_pair(static_cast<const void*>(this), peer + "|" + endpoint);
  auto& c = clients[key];
  if (!c) {
    c = std::make_unique<rpc::Client>(ctx_, peer, endpoint, rpc::ClientOptions{options_.timeout_ms, options_.tries, "", server_of(peer)});
  }
  return *c;
}

Result<rpc::Reply> Backends::call(Service s, fb::RequestBody type, const rpc::BuildBody& build) {
  return client(service_name(s), endpoint(s)).call(type, build);
}

Result<rpc::Reply> Backends::call_as(Service s, const std::string& principal, fb::RequestBody type,
                                     const rpc::BuildBody& build) {
  rpc::Client c(ctx_, service_name(s), endpoint(s), rpc::ClientOptions{options_.timeout_ms, options_.tries, principal,
                                                                        server_of(service_name(s))});
  return c.call(type, build);
}

Result<rpc::Reply> Backends::call_fresh(Service s, fb::RequestBody type, const rpc::BuildBody& build) {
  rpc::Client c(ctx_, service_name(s), endpoint(s),
                rpc::ClientOptions{options_.timeout_ms, options_.tries, "", server_of(service_name(s))});
  return c.call(type, build);
}

Result<rpc::Reply> Backends::call_agent(const std::string& node, const std::string& endpoint, fb::RequestBody type,
                                        const rpc::BuildBody& build) {
  return client("agent " + node, connectable(endpoint)).call(type, build);
}

}  // namespace trainyard::gateway

// trainyard-bus as a run_service shell: the stateless XSUB/XPUB forwarder of
// the durable bus (bus/forwarder.h) on a thread of its own, and, under
// CURVE, the relay of its refusals to the audit trail (audit_relay.h). The
// runtime's loop only waits for the signals (SIGHUP re-reads the keyring).
#pragma once

#include <memory>
#include <thread>

#include <nlohmann/json.hpp>

#include "audit_relay.h"
#include "bus/forwarder.h"
#include "util/run_service.h"

namespace trainyard::bus {

struct BusOptions {
  ForwarderOptions forwarder;
  std::string principal() const { return kBusPrincipal; }
  // bus.frontend and bus.backend (one endpoint each: a shared config may
  // list two forwarders, what services connect to, and a forwarder binds
  // one), bus.hwm, billing.instance.
  static Result<BusOptions> from_config(const Config& config);
};

class BusShell {
 public:
  static constexpr ServiceInfo kInfo{
      "bus",
      "the bus forwarder. Publishers connect to its frontend (XSUB), subscribers to its backend (XPUB). It keeps no "
      "state: restart it at will.",
      "Config keys: bus.frontend, bus.backend (the endpoints to bind; default tcp://127.0.0.1:5550 and :5551), "
      "bus.hwm (messages queued per peer before ZeroMQ drops; default 1000000), billing.instance (whose heartbeats "
      "tell where to send the refusals it makes, for the audit trail; default billing), log.level, log.file, "
      "security.* (its key is KEYS_DIR/service-bus.key; SIGHUP re-reads authorized_keys)."};
  static constexpr ConfigFlag kFlags[] = {
      {"--frontend", "bus.frontend", "XSUB endpoint to bind; port '*' picks a free one"},
      {"--backend", "bus.backend", "XPUB endpoint to bind; port '*' picks a free one"},
  };
  using Options = BusOptions;

  BusShell(const StatelessEnv& env, Options options);  // binds (zmq::error_t if it cannot)
  ~BusShell();  // stops forwarding, then sends the relay's last records
  BusShell(const BusShell&) = delete;
  BusShell& operator=(const BusShell&) = delete;

  // {"endpoint": frontend, "frontend", "backend"}: the bound endpoints.
  nlohmann::json ready_info() const;

 private:
  std::unique_ptr<Forwarder> forwarder_;
  std::unique_ptr<AuditRelay> relay_;
  std::thread thread_;
};

}  // namespace trainyard::bus

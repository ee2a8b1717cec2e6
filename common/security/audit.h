// The audit trail: every admin action and every refusal becomes an audit.*
// event on the service's own stream (audit.@<instance>), in the same commit
// as what the request changed. Billing keeps them (`ty admin audit`).
//
// What is recorded:
//   - every request a service answers PermissionDenied (a rule refused it),
//     and every request the server refused because its key was revoked;
//   - every request a handler marked with Responder::audit(target): the
//     admin actions (budgets, rates, the directory, draining nodes, pausing
//     cloud pools, acting on another user's job);
//   - every handshake the site's ZAP handler refused (an unknown key), at
//     most once a minute per key and address;
//   - every change a reload of the site's authorized keys brought (action
//     "Keyring": a principal authorized, revoked, or given a new key), so
//     `ty admin keys add|revoke` is in the trail as each service saw it.
// Refusals are rate-limited (a token bucket, `refusals_per_s` with a burst
// of ten times that); what the bucket drops is counted in the next record's
// `suppressed`, so a flood costs a bounded stream and loses no count.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "bus/publisher.h"
#include "rpc/server.h"
#include "security/site.h"
#include "util/clock.h"

namespace trainyard {
class Runtime;
}

namespace trainyard::security {

inline constexpr std::string_view kAuditPrefix = "audit.";

// The records of what a Site saw, as every keeper of them writes them (a
// service's AuditTrail, the bus forwarder's relay to billing): `service`
// names the process whose Site it was.
fb::AuditRecordT keyring_record(const KeyringChange& change, const std::string& service);
// `suppressed` counts the refusal's repeats (count - 1).
fb::AuditRecordT handshake_record(const Refusal& refusal, const std::string& service);

struct AuditStats {
  uint64_t recorded = 0;
  uint64_t suppressed = 0;
};

class AuditTrail {
 public:
  AuditTrail(bus::Publisher& publisher, Runtime& runtime, const Clock& clock, std::string service,
             double refusals_per_s = 20);
  // Records what `server` answers (call for each of the service's servers).
  void attach(rpc::Server& server);
  void observe(const fb::Request& req, const rpc::Responder& r);
  const AuditStats& stats() const { return stats_; }
  // A record another process decided and cannot keep (a bus forwarder's
  // refusals, handed to billing): published on this service's audit
  // stream as it came, its `service` naming that process.
  void relay(const fb::AuditRecordT& record);
  // The trust figures for a service's ops.metrics (Prometheus): handshakes
  // accepted and refused by the site's ZAP handler, keyring reloads,
  // requests refused (unauthenticated, PermissionDenied), audit records
  // written and refusals only counted.
  std::vector<std::pair<std::string, double>> gauges() const;

 private:
  bool take_token();
  // `record` from this service, with the refusals counted since the last.
  void publish(fb::AuditRecordT record);
  void append(const fb::AuditRecordT& record);
  void drain_site();

  bus::Publisher& publisher_;
  Runtime& runtime_;
  const Clock& clock_;
  std::string service_;
  double rate_;
  double tokens_;
  int64_t refill_ns_ = 0;
  uint32_t suppressed_ = 0;  // refusals not yet counted in a record
  std::map<std::string, int64_t> handshake_logged_ns_;  // key@address -> last recorded
  AuditStats stats_;
  uint64_t denied_ = 0;  // PermissionDenied replies, recorded or not
  std::vector<const rpc::Server*> servers_;
};

}  // namespace trainyard::security

// The forwarder's refusals into the audit trail. A forwarder keeps nothing
// (it can be killed and run twice), so what it refuses (a publication on a
// stream its key does not own, a subscription a user may not have, a
// handshake with an unknown key, a keyring reload's changes) is handed
// every second to billing, which keeps the trail; billing's endpoint comes
// from billing's own heartbeats, which only its key may publish. Refusals
// wait (merged, counted) while billing is away; a forwarder killed before
// billing answered loses at most that second's records, never their count
// in its log.
#pragma once

#include <atomic>
#include <memory>

#include <zmq.hpp>

#include "bus/forwarder.h"

namespace trainyard::bus {

class AuditRelay {
 public:
  AuditRelay(zmq::context_t& ctx, Forwarder& forwarder);
  ~AuditRelay();  // stops the thread
  AuditRelay(const AuditRelay&) = delete;
  AuditRelay& operator=(const AuditRelay&) = delete;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace trainyard::bus

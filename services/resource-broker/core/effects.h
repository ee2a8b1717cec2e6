// What a change to the broker's state produces: events to publish (in order)
// and the records the shell must write, all in the same WriteBatch.
#pragma once

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/lease.h"
#include "trainyard/fb/nodes_generated.h"

namespace trainyard::broker {

enum class EventKind {
  kNodeUp,         // node.up
  kNodeDown,       // node.down
  kNodeDrain,      // node.drain
  kLeaseGranted,   // lease.<node>.granted
  kLeaseRevoked,   // lease.<node>.revoked
  kLeaseReleased,  // lease.<node>.released
  kLeaseLost,      // lease.<node>.lost
};

// One event, self-contained: it carries copies of what its payload needs,
// since the state may move on before the shell builds it.
struct Event {
  Event(EventKind k, std::string n) : kind(k), node(std::move(n)) {}

  EventKind kind;
  std::string node;
  std::shared_ptr<const fb::NodeInfoT> info;  // node.up
  bool drained = false;                      // node.drain
  std::string reason;                        // down, drain, revoked, released, lost
  Lease lease;                               // lease.* (id and job only for a zombie revoke)
  uint32_t grace_s = 0;                      // revoked
  fb::RevokeCause cause = fb::RevokeCause::Other;  // revoked
};

struct Effects {
  std::vector<Event> events;
  std::set<std::string> nodes;   // node records to write
  std::set<uint64_t> leases;     // lease records to write (live or ended)
  std::set<uint64_t> forgotten;  // ended lease records to delete
  bool lease_counter = false;    // the next lease id moved

  bool empty() const {
    return events.empty() && nodes.empty() && leases.empty() && forgotten.empty() && !lease_counter;
  }
  void clear() { *this = Effects{}; }
};

}  // namespace trainyard::broker

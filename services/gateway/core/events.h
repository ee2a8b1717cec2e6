// Bus events as the browser sees them on /api/v1/events: a small JSON object
// per job, node, lease, run, account or metric event, with its topic as the
// SSE event name. Heartbeats and unknown payloads have no view.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "bus/event.h"

namespace trainyard::gateway {

struct EventView {
  std::string kind;   // "job", "node", "lease", "run", "account", "metric"
  std::string topic;  // the SSE event name ("job.state"; leases "lease.granted")
  nlohmann::json data;
};

std::optional<EventView> view_of(const bus::Event& e);

}  // namespace trainyard::gateway

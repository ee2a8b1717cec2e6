// Job states in the user's words, one spelling everywhere: ty's tables and
// --json, the REST API, the dashboard and the gateway's summaries all say
// "pending", "timed_out", "node_failure" (snake_case of the schema's names).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "trainyard/fb/common_generated.h"

namespace trainyard {

// "pending", "running", "timed_out"...; "unknown" for a value the schema
// does not name.
std::string state_name(fb::JobState s);

// A state from what a user typed: any case, '_' and '-' ignored, so
// "timed_out", "TimedOut" and "timed-out" are the same state.
std::optional<fb::JobState> parse_state(std::string_view text);

// Succeeded, Failed, Cancelled, TimedOut and NodeFailure: the job will not
// run again.
bool is_terminal(fb::JobState s);

}  // namespace trainyard

// JSON views of the FlatBuffers records the services answer with. Times
// leave the gateway as milliseconds since the Unix epoch ("*_ms"), money as
// integer micros plus a decimal amount, so a browser's doubles lose nothing
// that matters.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "trainyard/fb/rpc_generated.h"

namespace trainyard::gateway {

using Json = nlohmann::json;

// "Pending", "Running"... as in the schema.
std::string state_name(fb::JobState s);
// Parses a state name, case-insensitively; nullopt when it is none.
std::optional<fb::JobState> parse_state(std::string_view name);
bool is_terminal(fb::JobState s);

int64_t ns_to_ms(int64_t ns);

// An env variable whose name says it holds a secret (…TOKEN, …KEY, …SECRET,
// …PASSWORD…): its value is shown as "<redacted>" in job JSON and comparisons.
bool secret_env_name(std::string_view name);

Json to_json(const fb::JobSpec* spec);
Json to_json(const fb::JobRecord& job, bool with_history);
Json to_json(const fb::NodeStatus& node);
Json to_json(const fb::MetricSummaries& m);
Json to_json(const fb::Series& s);
Json to_json(const fb::UsageReport& u);
Json to_json(const fb::Invoice& inv);

// A comparison, ranked best first (by best_value, ascending unless
// `maximize`); each row gets "rank" (1 = best). Rows without points last.
Json to_json(const fb::Comparison& c, bool maximize);

// Money: micros -> a decimal amount in the currency unit.
double micros_to_amount(int64_t micros);

}  // namespace trainyard::gateway

// The simulator's results as a table for people and as JSON for scripts.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sim/simulator.h"

namespace trainyard::scheduler::sim {

// One row per run (policy), aligned columns; times in seconds.
std::string format_table(const std::vector<SimResult>& runs);
// Queueing delay by job size, one block per run.
std::string format_wait_by_size(const std::vector<SimResult>& runs);
// Cloud runs (pools given): one row each, headed by the burst threshold.
std::string format_cloud_table(const std::vector<SimResult>& runs);
// A run's cloud figures ("cloud" in to_json).
nlohmann::json cloud_json(const SimResult& r);
nlohmann::json to_json(const SimResult& r);

}  // namespace trainyard::scheduler::sim

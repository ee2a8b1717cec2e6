// The JSON form of Trainyard's records, the one both `ty --json` and the
// REST API (services/gateway) print, so that a job reads the same whichever
// way it was asked for. Times are milliseconds since the Unix epoch in
// fields named "*_ms" (a browser's doubles hold them exactly); states are
// snake_case ("timed_out", job/job_state.h); a double that is not finite is
// null; env values whose name says they are secret are "<redacted>".
#pragma once

#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "trainyard/fb/rpc_generated.h"

namespace trainyard::records {

// kSummary: a job in a list (no spec, history or leases); kFull: one job.
enum class JobView { kSummary, kFull };

// A job: job_id, name, user, account, partition, experiment, gpus (per
// node times nodes), gpu_type, state, terminal, reason, nodes, gpu_indices,
// exit_code, attempt, array_job_id, array_index, submit_time_ms,
// start_time_ms, end_time_ms, priority {score, tier, fairshare, age,
// expected_start_ms}, preemptions; kFull adds spec, lease_ids and history
// [{state, time_ms, reason}].
nlohmann::json job_json(const fb::JobRecord& job, JobView view);
nlohmann::json job_json(const fb::JobRecordT& job, JobView view);

// A spec as submitted, every field of schemas/jobs.fbs but sim_duration_s
// and client_token; dependencies as [{kind: "afterok", job_id}]. An absent
// spec is {}.
nlohmann::json spec_json(const fb::JobSpec* spec);
nlohmann::json spec_json(const fb::JobSpecT& spec);

// A node: name, up, drained, reason, partition, cpus, memory_mb, simulated,
// labels, agent_endpoint, gpus [{index, type, memory_mb, uuid, allocated}],
// allocated_gpus, leases, last_heartbeat_ms.
nlohmann::json node_json(const fb::NodeStatus& node);
nlohmann::json node_json(const fb::NodeStatusT& node);

// The cloud pools and their leases, as `ty cloud status --json` prints and
// GET /api/v1/cloud returns them: {paused, pause_reason, pools: [...],
// leases: [...]} (docs/cloud.md).
nlohmann::json cloud_report_json(const fb::CloudReport* report);
nlohmann::json cloud_lease_json(const fb::CloudLease& lease);
nlohmann::json cloud_pool_json(const fb::CloudPoolStatus& pool);

// An env variable whose name says it holds a secret (…TOKEN, …KEY,
// …SECRET, …PASSWORD…).
bool secret_env_name(std::string_view name);

inline int64_t ns_to_ms(int64_t ns) { return ns / 1'000'000; }

}  // namespace trainyard::records

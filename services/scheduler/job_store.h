// How the scheduler stores jobs in RocksDB and shows them in replies (and
// the stored values of the nodes and leases it restores). A job is one
// record in the "jobs" column family; the tasks of an array store no
// spec of their own: the array's spec is stored once, in "specs" under the
// array id, and shared again on restore (issue 13: O(spec + tasks), not
// O(spec * tasks)).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <flatbuffers/flatbuffers.h>

#include "core/job.h"
#include "core/policy.h"
#include "core/scheduler.h"
#include "trainyard/fb/bus_generated.h"

namespace trainyard::scheduler {

// The JobRecord of `j` as queries show it (always with its spec). Without
// `details` the spec is the queue line only: no command, environment,
// working directory or file paths.
flatbuffers::Offset<fb::JobRecord> build_record(flatbuffers::FlatBufferBuilder& b, const Job& j,
                                                std::string_view reason, const PriorityFactors& f,
                                                bool with_spec = true, bool details = true);

// The stored value of a job: format byte, flags byte, then a JobRecord
// (without the spec for an array task).
std::string encode_job(flatbuffers::FlatBufferBuilder& b, const Job& j);
// The job of a stored value; nullopt when it cannot be read. An array
// task's spec is left null for the caller to attach.
std::optional<Job> decode_job(std::string_view value);

// The stored value of an array's spec, and back (nullptr: unreadable).
std::string encode_spec(const fb::JobSpecT& spec);
std::shared_ptr<const fb::JobSpecT> decode_spec(std::string_view value);

// What the job.submitted event of the second and later tasks of an array
// carries: the spec without command, env, paths, dependencies and token
// (its subscribers read name, user, account, experiment and labels; the
// first task's event carries the whole spec).
fb::JobSpecT task_summary(const fb::JobSpecT& spec);

// The bytes a JobRecord of `j` takes in a reply, about (an upper bound).
uint64_t record_bytes(const Job& j);

// The stored value of a node: up byte, drained byte, then a NodeInfo.
std::string node_value(const fb::NodeInfoT& info, bool up, bool drained);

// The stored value of a lease (a LeaseGranted), and the grant it holds.
std::string lease_value(const Grant& g);
Grant grant_of(const fb::LeaseGranted& g);

// Purged jobs' fair-share usage (Scheduler::carried_usage) in the meta
// column family: key "carried_usage/" + account + NUL + GPU type + NUL,
// value as_of_ns (8 bytes) and the GPU-seconds (an IEEE double's 8 bytes).
inline constexpr std::string_view kCarriedUsagePrefix = "carried_usage/";
std::string carried_usage_key(const std::string& account, const std::string& gpu_type);
std::string carried_usage_value(const CarriedUsage& u);
// The account, type and usage of a stored row; nullopt when unreadable.
struct CarriedUsageRow {
  std::string account, gpu_type;
  CarriedUsage usage;
};
std::optional<CarriedUsageRow> decode_carried_usage(std::string_view key, std::string_view value);

// A verified FlatBuffer root of `bytes`, or nullptr.
template <typename T>
const T* verified_root(std::string_view bytes) {
  auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
  flatbuffers::Verifier v(data, bytes.size(), 64, 10'000'000);
  if (!v.VerifyBuffer<T>(nullptr)) return nullptr;
  return flatbuffers::GetRoot<T>(data);
}

}  // namespace trainyard::scheduler

#include "job_store.h"

#include <bit>
#include <cmath>
#include <stdexcept>

#include "core/spec_limits.h"
#include "storage/keys.h"
#include "wire/check.h"

namespace trainyard::scheduler {
namespace {

constexpr uint8_t kJobFormat = 1;
constexpr uint8_t kCancelRequested = 1;
constexpr uint8_t kPreemptRequested = 2;
constexpr uint8_t kRequeueRequested = 4;

}  // namespace

flatbuffers::Offset<fb::JobRecord> build_record(flatbuffers::FlatBufferBuilder& b, const Job& j,
                                                std::string_view reason, const PriorityFactors& f, bool with_spec,
                                                bool details) {
  flatbuffers::Offset<fb::JobSpec> spec = 0;
  if (j.spec && with_spec && details) {
    spec = fb::CreateJobSpec(b, j.spec.get());
  } else if (j.spec && with_spec) {
    fb::JobSpecT line = *j.spec;  // the queue line: what it asks for, not what it runs
    line.command.clear();
    line.env.clear();
    line.workdir.clear();
    line.stdout_path.clear();
    line.stderr_path.clear();
    line.submit_dir.clear();
    line.client_token.clear();
    spec = fb::CreateJobSpec(b, &line);
  }
  auto why = b.CreateString(reason.data(), reason.size());
  auto nodes = b.CreateVectorOfStrings(j.nodes);
  auto gpus = b.CreateVector(j.gpu_indices);
  std::vector<flatbuffers::Offset<fb::JobTransition>> hist;
  hist.reserve(j.history.size());
  for (auto& t : j.history) hist.push_back(fb::CreateJobTransition(b, t.to, t.time_ns, b.CreateString(t.reason)));
  auto history = b.CreateVector(hist);
  auto leases = b.CreateVector(j.lease_ids);
  auto ended = j.ranks_ended.empty() ? 0 : b.CreateVector(j.ranks_ended);
  auto part = j.run_partition.empty() ? 0 : b.CreateString(j.run_partition);
  return fb::CreateJobRecord(b, j.id, spec, j.state, why, nodes, gpus, j.exit_code, j.attempt, j.array_job_id,
                             j.array_index, j.submit_time_ns, j.start_time_ns, j.end_time_ns, history, leases,
                             f.priority, j.preemptions, f.tier, f.fairshare, f.age, j.expected_start_ns, ended, part);
}

std::string encode_job(flatbuffers::FlatBufferBuilder& b, const Job& j) {
  b.Clear();
  PriorityFactors none;
  none.tier = j.tier;
  b.Finish(build_record(b, j, j.reason, none, j.array_job_id == 0));
  std::string v;
  v.reserve(2 + b.GetSize());
  v.push_back(static_cast<char>(kJobFormat));
  v.push_back(static_cast<char>((j.cancel_requested ? kCancelRequested : 0) | (j.preempt_requested ? kPreemptRequested : 0) |
                                (j.requeue_requested ? kRequeueRequested : 0)));
  v.append(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize());
  return v;
}

std::optional<Job> decode_job(std::string_view v) {
  const fb::JobRecord* r =
      v.size() > 2 && v[0] == static_cast<char>(kJobFormat) ? verified_root<fb::JobRecord>(v.substr(2)) : nullptr;
  // Stored records pass the same schema rules as the wire (enums in range,
  // unions complete): a record no handler could use is refused here.
  if (!r || !wire::job_record_check().check(reinterpret_cast<const uint8_t*>(v.data() + 2)).ok()) return std::nullopt;
  fb::JobRecordT rec;
  r->UnPackTo(&rec);
  bool has_spec = rec.spec != nullptr;
  Job j = from_record(rec);
  if (!has_spec) j.spec = nullptr;
  j.cancel_requested = (static_cast<uint8_t>(v[1]) & kCancelRequested) != 0;
  j.preempt_requested = (static_cast<uint8_t>(v[1]) & kPreemptRequested) != 0;
  j.requeue_requested = (static_cast<uint8_t>(v[1]) & kRequeueRequested) != 0;
  return j;
}

std::string encode_spec(const fb::JobSpecT& spec) {
  flatbuffers::FlatBufferBuilder b(1024);
  b.Finish(fb::CreateJobSpec(b, &spec));
  return std::string(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize());
}

std::shared_ptr<const fb::JobSpecT> decode_spec(std::string_view value) {
  const auto* s = verified_root<fb::JobSpec>(value);
  if (!s || !wire::job_spec_check().check(reinterpret_cast<const uint8_t*>(value.data())).ok()) return nullptr;
  auto out = std::make_shared<fb::JobSpecT>();
  s->UnPackTo(out.get());
  return out;
}

fb::JobSpecT task_summary(const fb::JobSpecT& spec) {
  fb::JobSpecT s;
  s.name = spec.name;
  s.user = spec.user;
  s.account = spec.account;
  s.partition = spec.partition;
  s.experiment = spec.experiment;
  for (auto& kv : spec.labels) {
    if (kv) s.labels.push_back(std::make_unique<fb::KeyValueT>(*kv));
  }
  s.gpus_per_node = spec.gpus_per_node;
  s.gpu_type = spec.gpu_type;
  s.cpus = spec.cpus;
  s.memory_mb = spec.memory_mb;
  s.nodes = spec.nodes;
  s.time_limit_s = spec.time_limit_s;
  s.priority = spec.priority;
  s.max_retries = spec.max_retries;
  s.array = spec.array;
  s.preemptible = spec.preemptible;
  s.resumable = spec.resumable;
  s.grace_s = spec.grace_s;
  s.sim_duration_s = spec.sim_duration_s;
  return s;
}

uint64_t record_bytes(const Job& j) {
  uint64_t total = 512 + (j.spec ? spec_bytes(*j.spec) : 0) + j.reason.size();
  for (auto& n : j.nodes) total += n.size() + 16;
  total += 4 * j.gpu_indices.size() + 8 * (j.lease_ids.size() + j.ranks_ended.size());
  for (auto& t : j.history) total += 48 + t.reason.size();
  return total;
}

std::string node_value(const fb::NodeInfoT& info, bool up, bool drained) {
  flatbuffers::FlatBufferBuilder b(512);
  b.Finish(fb::CreateNodeInfo(b, &info));
  std::string v;
  v.push_back(up ? 1 : 0);
  v.push_back(drained ? 1 : 0);
  v.append(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize());
  return v;
}

Grant grant_of(const fb::LeaseGranted& g) {
  Grant out;
  out.lease_id = g.lease_id();
  out.job = g.job_id();
  out.attempt = g.attempt();
  out.node = g.node() ? g.node()->str() : std::string();
  if (g.gpu_indices()) out.gpus.assign(g.gpu_indices()->begin(), g.gpu_indices()->end());
  out.cpus = g.cpus();
  out.memory_mb = g.memory_mb();
  out.node_rank = g.node_rank();
  return out;
}

std::string lease_value(const Grant& g) {
  flatbuffers::FlatBufferBuilder b(256);
  b.Finish(fb::CreateLeaseGrantedDirect(b, g.lease_id, g.job, g.attempt, g.node.c_str(), &g.gpus, g.cpus, g.memory_mb,
                                        0, -1, nullptr, g.node_rank));
  return std::string(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize());
}

std::string carried_usage_key(const std::string& account, const std::string& gpu_type) {
  return storage::Key().str(kCarriedUsagePrefix).str(account).str(gpu_type).bytes();
}

std::string carried_usage_value(const CarriedUsage& u) {
  return storage::Key().i64(u.as_of_ns).u64(std::bit_cast<uint64_t>(u.gpu_s)).bytes();
}

std::optional<CarriedUsageRow> decode_carried_usage(std::string_view key, std::string_view value) {
  if (value.size() != 16) return std::nullopt;
  try {
    storage::KeyReader k(key);
    if (k.str() != kCarriedUsagePrefix) return std::nullopt;
    CarriedUsageRow row;
    row.account = std::string(k.str());
    row.gpu_type = std::string(k.str());
    if (!k.done()) return std::nullopt;
    storage::KeyReader v(value);
    row.usage.as_of_ns = v.i64();
    row.usage.gpu_s = std::bit_cast<double>(v.u64());
    if (!(row.usage.gpu_s >= 0) || std::isinf(row.usage.gpu_s)) return std::nullopt;
    return row;
  } catch (const std::out_of_range&) {
    return std::nullopt;
  }
}

}  // namespace trainyard::scheduler

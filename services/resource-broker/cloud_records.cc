#include "cloud_records.h"

#include <fmt/format.h>

namespace trainyard::broker {

flatbuffers::Offset<fb::CloudLease> build_cloud_lease(flatbuffers::FlatBufferBuilder& b, const CloudLease& l) {
  return fb::CreateCloudLeaseDirect(b, l.id, l.pool.c_str(), static_cast<fb::CloudLeaseState>(l.state), l.node.c_str(),
                                    l.instance_id.c_str(), l.reason.c_str(), l.failure.c_str(), l.gpu_type.c_str(),
                                    l.gpus, l.spot, l.price_micros_per_hour, l.for_job, l.account.c_str(),
                                    l.requested_ns, l.ready_ns, l.state_ns, l.ended_ns, l.expected_ready_ns,
                                    l.interrupt_at_ns);
}

CloudLease read_cloud_lease(const fb::CloudLease& r) {
  auto str = [](const flatbuffers::String* s) { return s ? s->str() : std::string(); };
  CloudLease l;
  l.id = r.lease_id();
  l.pool = str(r.pool());
  l.state = static_cast<CloudState>(r.state());
  l.node = str(r.node());
  l.instance_id = str(r.instance_id());
  l.reason = str(r.reason());
  l.failure = str(r.failure());
  l.gpu_type = str(r.gpu_type());
  l.gpus = r.gpus();
  l.spot = r.spot();
  l.price_micros_per_hour = r.price_micros_per_hour();
  l.for_job = r.for_job();
  l.account = str(r.account());
  l.requested_ns = r.requested_ns();
  l.ready_ns = r.ready_ns();
  l.state_ns = r.state_ns();
  l.ended_ns = r.ended_ns();
  l.expected_ready_ns = r.expected_ready_ns();
  l.interrupt_at_ns = r.interrupt_at_ns();
  return l;
}

std::string encode_cloud_lease(const CloudLease& l) {
  flatbuffers::FlatBufferBuilder b(256);
  b.Finish(build_cloud_lease(b, l));
  return std::string(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize());
}

Result<CloudLease> decode_cloud_lease(std::string_view bytes) {
  std::string copy(bytes);  // heap-allocated: aligned as the Verifier requires
  flatbuffers::Verifier v(reinterpret_cast<const uint8_t*>(copy.data()), copy.size());
  if (!v.VerifyBuffer<fb::CloudLease>(nullptr)) {
    return Status::internal(fmt::format("a stored cloud lease record ({} bytes) is corrupt", copy.size()));
  }
  const auto* r = flatbuffers::GetRoot<fb::CloudLease>(copy.data());
  if (!r->pool() || r->state() > fb::CloudLeaseState::MAX) {
    return Status::internal(fmt::format("stored cloud lease {} has no pool or an unknown state", r->lease_id()));
  }
  return read_cloud_lease(*r);
}

std::vector<flatbuffers::Offset<fb::CloudRefusal>> refusal_rows(flatbuffers::FlatBufferBuilder& b,
                                                                const std::map<uint64_t, std::string>& refused) {
  std::vector<flatbuffers::Offset<fb::CloudRefusal>> rows;
  rows.reserve(refused.size());
  for (auto& [job, why] : refused) rows.push_back(fb::CreateCloudRefusalDirect(b, job, why.c_str()));
  return rows;
}

flatbuffers::Offset<fb::CloudRefusals> build_refusals(flatbuffers::FlatBufferBuilder& b,
                                                      const std::map<uint64_t, std::string>& refused) {
  auto rows = refusal_rows(b, refused);
  return fb::CreateCloudRefusalsDirect(b, &rows);
}

std::string cloud_topic(const CloudLease& l) { return fmt::format("cloud.{}.{}", l.pool, to_string(l.state)); }

}  // namespace trainyard::broker

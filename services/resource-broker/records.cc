#include "records.h"

#include <type_traits>

#include <fmt/format.h>

#include "records_bfbs_generated.h"
#include "records_generated.h"
#include "wire.h"
#include "wire/check.h"

namespace trainyard::broker {

namespace {

const wire::MessageCheck& record_check(std::string_view table) {
  static const wire::MessageCheck node({store::NodeRecordBinarySchema::data(), store::NodeRecordBinarySchema::size()},
                                       "NodeRecord");
  static const wire::MessageCheck lease({store::NodeRecordBinarySchema::data(), store::NodeRecordBinarySchema::size()},
                                        "LeaseRecord");
  return table == "NodeRecord" ? node : lease;
}

// The Verifier, then the schema rules the wire obeys (enums in range,
// unions complete, required fields present): a record no code could use is
// reported, never read.
template <typename T>
const T* verified_root(const std::string& copy, const char* what, std::string_view table, Status* error) {
  // The copy is heap-allocated, so aligned as the Verifier requires.
  const auto* data = reinterpret_cast<const uint8_t*>(copy.data());
  flatbuffers::Verifier v(data, copy.size());
  if (!v.VerifyBuffer<T>(nullptr)) {
    *error = Status::internal(fmt::format("a stored {} record ({} bytes) is corrupt", what, copy.size()));
    return nullptr;
  }
  // An ended lease drops its spec (Cluster::end): the one field the wire
  // requires that a stored record may lack. Its other fields hold no enum
  // or union, so there is nothing else to check.
  bool ended_lease = false;
  if constexpr (std::is_same_v<T, store::LeaseRecord>) {
    const auto* r = flatbuffers::GetRoot<T>(copy.data());
    ended_lease = r->grant() && !r->grant()->spec();
  }
  if (auto s = ended_lease ? Status() : record_check(table).check(data); !s.ok()) {
    *error = Status::internal(fmt::format("a stored {} record breaks its schema: {}", what, s.message()));
    return nullptr;
  }
  return flatbuffers::GetRoot<T>(copy.data());
}

std::string finish(flatbuffers::FlatBufferBuilder& b) {
  return std::string(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize());
}

}  // namespace

std::string encode_node(const Node& node) {
  flatbuffers::FlatBufferBuilder b(512);
  auto info = fb::NodeInfo::Pack(b, node.info.get());
  auto drain = b.CreateString(node.drain_reason);
  auto down = b.CreateString(node.down_reason);
  b.Finish(store::CreateNodeRecord(b, info, node.up, node.drained, drain, down, node.last_heartbeat_ns));
  return finish(b);
}

Result<Node> decode_node(std::string_view bytes) {
  std::string copy(bytes);
  Status error;
  auto* r = verified_root<store::NodeRecord>(copy, "node", "NodeRecord", &error);
  if (!r) return error;
  if (!r->info() || !r->info()->name()) return Status::internal("a stored node record has no name");
  Node n;
  n.info = std::shared_ptr<const fb::NodeInfoT>(r->info()->UnPack());
  n.up = r->up();
  n.drained = r->drained();
  if (r->drain_reason()) n.drain_reason = r->drain_reason()->str();
  if (r->down_reason()) n.down_reason = r->down_reason()->str();
  n.last_heartbeat_ns = r->last_heartbeat_ns();
  return n;
}

std::string encode_lease(const Lease& l) {
  flatbuffers::FlatBufferBuilder b(1024);
  auto grant = build_lease_granted(b, l);
  auto revoke = b.CreateString(l.revoke_reason);
  auto end = b.CreateString(l.end_reason);
  b.Finish(store::CreateLeaseRecord(b, grant, static_cast<store::LeaseState>(l.state), l.started, l.granted_ns,
                                    revoke, l.grace_s, end, l.ended_ns, l.revoke_cause));
  return finish(b);
}

Result<Lease> decode_lease(std::string_view bytes) {
  std::string copy(bytes);
  Status error;
  auto* r = verified_root<store::LeaseRecord>(copy, "lease", "LeaseRecord", &error);
  if (!r) return error;
  auto* g = r->grant();
  if (!g || !g->node()) return Status::internal("a stored lease record has no grant or node");
  if (static_cast<uint8_t>(r->state()) > static_cast<uint8_t>(store::LeaseState::MAX)) {
    return Status::internal(fmt::format("stored lease {} has an unknown state {}", g->lease_id(),
                                        static_cast<int>(r->state())));
  }
  Lease l;
  l.id = g->lease_id();
  l.job_id = g->job_id();
  l.attempt = g->attempt();
  l.node = g->node()->str();
  if (g->gpu_indices()) l.gpus.assign(g->gpu_indices()->begin(), g->gpu_indices()->end());
  l.cpus = g->cpus();
  l.memory_mb = g->memory_mb();
  if (g->spec()) l.spec = std::shared_ptr<const fb::JobSpecT>(g->spec()->UnPack());
  l.array_index = g->array_index();
  l.array_job_id = g->array_job_id();
  if (g->gpu_type()) l.gpu_type = g->gpu_type()->str();
  l.node_rank = g->node_rank();
  if (g->nodes()) {
    for (auto* s : *g->nodes()) l.nodes.push_back(s->str());
  }
  l.state = static_cast<LeaseState>(r->state());
  l.started = r->started();
  l.granted_ns = r->granted_ns();
  if (r->revoke_reason()) l.revoke_reason = r->revoke_reason()->str();
  l.grace_s = r->grace_s();
  l.revoke_cause = r->revoke_cause();
  if (r->end_reason()) l.end_reason = r->end_reason()->str();
  l.ended_ns = r->ended_ns();
  return l;
}

}  // namespace trainyard::broker

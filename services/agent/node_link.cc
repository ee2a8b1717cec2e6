// The agent's link to the resource broker: registering its node(s) and
// heartbeating the leases each one still runs.
#include <random>
#include <stdexcept>
#include <unordered_map>

#include <spdlog/spdlog.h>

#include "shell.h"
#include "storage/keys.h"

namespace trainyard::agent {

std::vector<uint64_t> AgentShell::running_leases(const std::string& node) const {
  std::vector<uint64_t> out;
  for (auto& [lease, run] : runs_) {
    if (!run->rec.finished() && run->rec.node == node) out.push_back(lease);
  }
  return out;
}

flatbuffers::Offset<fb::NodeInfo> AgentShell::node_info(flatbuffers::FlatBufferBuilder& b,
                                                        const std::string& name) const {
  std::vector<flatbuffers::Offset<fb::GpuInfo>> gpus;
  for (auto& g : options_.gpus) {
    gpus.push_back(fb::CreateGpuInfoDirect(b, g.index, g.type.c_str(), g.memory_mb,
                                           (options_.simulate > 0 ? name + "-" + g.uuid : g.uuid).c_str()));
  }
  std::vector<flatbuffers::Offset<fb::KeyValue>> labels;
  for (auto& [k, v] : options_.labels) labels.push_back(fb::CreateKeyValueDirect(b, k.c_str(), v.c_str()));
  std::string ep = options_.advertise_endpoint.empty() ? server_.endpoint() : options_.advertise_endpoint;
  return fb::CreateNodeInfoDirect(b, name.c_str(), &gpus, options_.cpus, options_.memory_mb, &labels,
                                  options_.partition.c_str(), options_.simulate > 0, ep.c_str(), incarnation_);
}

uint64_t AgentShell::load_incarnation() {
  static constexpr std::string_view kKey = "incarnation";
  if (auto stored = value_or_throw(store_.get(meta_cf_, kKey)); stored && stored->size() == 8) {
    return storage::decode_u64(*stored);
  }
  std::random_device rd;
  uint64_t made = 0;
  while (made == 0) made = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  storage::Batch batch;
  batch.put(meta_cf_, kKey, storage::encode_u64(made));
  if (auto c = store_.commit(batch); !c) {
    throw std::runtime_error("cannot record the data directory's incarnation: " + c.message());
  }
  return made;
}

void AgentShell::register_node(size_t i) {
  node_state_[i].in_flight = true;
  const std::string& name = nodes_[i];
  auto leases = running_leases(name);
  broker_->send(
      fb::RequestBody::RegisterNode,
      [&](flatbuffers::FlatBufferBuilder& b) {
        auto info = node_info(b, name);
        auto l = b.CreateVector(leases);
        return fb::CreateRegisterNode(b, info, l).Union();
      },
      [this, i](Result<rpc::Reply> reply) {
        node_state_[i].in_flight = false;
        if (!reply) {
          if (!warned_broker_) {
            spdlog::warn("cannot register {} with the broker: {}; retrying every {} ms", nodes_[i],
                         reply.status().message(), options_.heartbeat_ms);
            warned_broker_ = true;
          }
          return;
        }
        node_state_[i].registered = true;
        if (warned_broker_ || options_.simulate == 0) spdlog::info("{} registered with the broker", nodes_[i]);
        warned_broker_ = false;
      });
}

void AgentShell::heartbeat() {
  if (!broker_) return;
  // One pass over the runs, not one per node: a simulated agent has thousands of each.
  std::unordered_map<std::string_view, std::vector<uint64_t>> by_node;
  for (auto& [lease, run] : runs_) {
    if (!run->rec.finished()) by_node[run->rec.node].push_back(lease);
  }
  static const std::vector<uint64_t> kNone;
  size_t slice = static_cast<size_t>(heartbeat_slice_++ % heartbeat_slices_);
  for (size_t i = slice; i < nodes_.size(); i += static_cast<size_t>(heartbeat_slices_)) {
    auto& st = node_state_[i];
    if (st.in_flight) continue;
    if (!st.registered) {
      register_node(i);
      continue;
    }
    st.in_flight = true;
    auto it = by_node.find(nodes_[i]);
    const auto& leases = it == by_node.end() ? kNone : it->second;
    broker_->send(
        fb::RequestBody::NodeHeartbeat,
        [&](flatbuffers::FlatBufferBuilder& b) {
          auto n = b.CreateString(nodes_[i]);
          auto l = b.CreateVector(leases);
          return fb::CreateNodeHeartbeat(b, n, l).Union();
        },
        [this, i](Result<rpc::Reply> reply) {
          node_state_[i].in_flight = false;
          if (reply) {
            warned_broker_ = false;
            return;
          }
          if (reply.status().code() == ErrorCode::NotFound) {
            spdlog::info("the broker does not know {}; registering again", nodes_[i]);
            node_state_[i].registered = false;
            register_node(i);
          } else if (!warned_broker_) {
            spdlog::warn("heartbeat of {} failed: {}", nodes_[i], reply.status().message());
            warned_broker_ = true;
          }
        });
  }
}

}  // namespace trainyard::agent

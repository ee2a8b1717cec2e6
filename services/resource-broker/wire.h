// The broker's messages: event payloads (node.*, lease.<node>.*) built from
// the core's Events, NodeStatus rows for ListNodes, and Allocate requests
// read into the core's AllocateRequest.
#pragma once

#include <string>

#include <flatbuffers/flatbuffers.h>

#include "core/cluster.h"
#include "core/effects.h"
#include "trainyard/fb/bus_generated.h"
#include "trainyard/fb/rpc_generated.h"

namespace trainyard::broker {

// Stream prefixes: one stream for nodes, one per node for its leases.
inline constexpr std::string_view kNodePrefix = "node.";
inline std::string lease_prefix(std::string_view node) { return "lease." + std::string(node) + "."; }

struct WireEvent {
  std::string prefix;  // the stream's topic prefix
  std::string topic;
  fb::Payload type = fb::Payload::NONE;
  flatbuffers::Offset<void> payload;
};

// Builds `e`'s payload in `b`.
WireEvent build_event(flatbuffers::FlatBufferBuilder& b, const Event& e);

flatbuffers::Offset<fb::LeaseGranted> build_lease_granted(flatbuffers::FlatBufferBuilder& b, const Lease& l);

flatbuffers::Offset<fb::NodeStatus> build_node_status(flatbuffers::FlatBufferBuilder& b, const Node& n);

// Top-level fields give one placement; `placements`, when set, a gang.
AllocateRequest read_allocate(const fb::Allocate& a);

// What a publisher's snapshot of `prefix` holds: node.up (then node.drain,
// node.down as they apply) per node for "node."; granted (then revoked for a
// revoking one) per live lease for "lease.<node>.".
std::vector<Event> snapshot_events(const Cluster& cluster, std::string_view prefix);

}  // namespace trainyard::broker

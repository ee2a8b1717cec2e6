// How the broker's nodes and leases are stored in RocksDB: FlatBuffers
// records (records.fbs) encoded and decoded here, verified on read.
#pragma once

#include <string>
#include <string_view>

#include "core/lease.h"
#include "core/node.h"
#include "util/status.h"

namespace trainyard::broker {

std::string encode_node(const Node& node);
// Internal naming the problem if the bytes are not a valid NodeRecord.
Result<Node> decode_node(std::string_view bytes);

std::string encode_lease(const Lease& lease);
Result<Lease> decode_lease(std::string_view bytes);

}  // namespace trainyard::broker

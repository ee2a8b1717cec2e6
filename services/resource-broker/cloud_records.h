// A cloud lease on the wire and in the store: the fb::CloudLease table
// (schemas/nodes.fbs) is both the cloud.<pool>.<state> event payload and
// the record of the broker's "cloud" column family (key: lease id).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <flatbuffers/flatbuffers.h>

#include "core/cloud_lease.h"
#include "trainyard/fb/nodes_generated.h"
#include "util/status.h"

namespace trainyard::broker {

flatbuffers::Offset<fb::CloudLease> build_cloud_lease(flatbuffers::FlatBufferBuilder& b, const CloudLease& l);
// The jobs a budget kept from renting (job -> why), as rows and as the
// cloud.refused event.
std::vector<flatbuffers::Offset<fb::CloudRefusal>> refusal_rows(flatbuffers::FlatBufferBuilder& b,
                                                                const std::map<uint64_t, std::string>& refused);
flatbuffers::Offset<fb::CloudRefusals> build_refusals(flatbuffers::FlatBufferBuilder& b,
                                                      const std::map<uint64_t, std::string>& refused);
CloudLease read_cloud_lease(const fb::CloudLease& r);

std::string encode_cloud_lease(const CloudLease& l);
// Internal naming the problem if the bytes are not a valid CloudLease.
Result<CloudLease> decode_cloud_lease(std::string_view bytes);

// "cloud.<pool>.<state>"
std::string cloud_topic(const CloudLease& l);
inline constexpr std::string_view kCloudPrefix = "cloud.";
// The topic of the jobs a budget keeps from renting (fb::CloudRefusals).
inline constexpr std::string_view kRefusedTopic = "cloud.refused";

}  // namespace trainyard::broker

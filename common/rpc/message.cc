#include "rpc/message.h"

#include <flatbuffers/flatbuffers.h>

#include "wire/check.h"

namespace trainyard::rpc {
namespace {
// Nesting and table limits of the Verifier for every message.
constexpr flatbuffers::uoffset_t kMaxDepth = 64;
constexpr flatbuffers::uoffset_t kMaxTables = 10'000'000;
}  // namespace

CheckedRequest check_request(const uint8_t* data, size_t size) {
  CheckedRequest out;
  if (size > kMaxMessageBytes) {
    out.status = Status::exhausted("request of " + std::to_string(size) + " bytes is over the limit");
    return out;
  }
  flatbuffers::Verifier v(data, size, kMaxDepth, kMaxTables);
  if (size < 8 || !fb::RequestBufferHasIdentifier(data) || !fb::VerifyRequestBuffer(v)) {
    out.status = Status::invalid("not a Trainyard request (identifier or FlatBuffers verification failed)");
    return out;
  }
  out.request = fb::GetRequest(data);
  out.status = wire::request_check().check(data);
  return out;
}

const fb::Reply* check_reply(const uint8_t* data, size_t size, Status* why) {
  flatbuffers::Verifier v(data, size, kMaxDepth, kMaxTables);
  if (size > kMaxMessageBytes || size < 8 || !fb::ReplyBufferHasIdentifier(data) || !fb::VerifyReplyBuffer(v)) {
    *why = Status::internal("malformed reply (identifier or FlatBuffers verification failed)");
    return nullptr;
  }
  auto s = wire::reply_check().check(data);
  if (!s.ok()) {
    *why = Status::internal("malformed reply: " + s.message());
    return nullptr;
  }
  return fb::GetReply(data);
}

}  // namespace trainyard::rpc

// The checks every request and reply passes before anything reads it: the
// size limit, the identifier, the FlatBuffers Verifier and the schema's own
// rules (common/wire/check.h). One place, used by the ROUTER and both clients.
#pragma once

#include <cstddef>
#include <cstdint>

#include "trainyard/fb/reply_generated.h"
#include "trainyard/fb/request_generated.h"
#include "util/status.h"

namespace trainyard::rpc {

// Largest request or reply a Trainyard socket accepts (64 MiB). Sockets set
// ZMQ_MAXMSGSIZE to it, so ZeroMQ drops a bigger frame before allocating it.
inline constexpr size_t kMaxMessageBytes = 64u << 20;

// A request that cannot be read at all (too short, not TYRQ, fails the
// Verifier) has no id to answer to: `Status` says why, `request` is null.
// One that can be read but breaks a schema rule comes back with `request`
// set, so the server can answer InvalidArgument to its id.
struct CheckedRequest {
  const fb::Request* request = nullptr;
  Status status;
};
CheckedRequest check_request(const uint8_t* data, size_t size);

// Null when the reply is malformed (`why` says how).
const fb::Reply* check_reply(const uint8_t* data, size_t size, Status* why);

}  // namespace trainyard::rpc

// What a peer may advertise as an endpoint to connect to (a heartbeat's
// replay endpoint, a node's agent endpoint): checked before it is stored or
// handed to ZeroMQ, whose connect() throws on a malformed address.
#pragma once

#include <string_view>

#include "util/status.h"

namespace trainyard::rpc {

// Accepts "tcp://HOST:PORT" (a DNS name, IPv4 or [IPv6] host; port 1-65535),
// "ipc://PATH" and "inproc://NAME", at most 255 bytes, printable ASCII.
// InvalidArgument names what is wrong.
Status check_connect_endpoint(std::string_view endpoint);

}  // namespace trainyard::rpc

// The body of an Ok reply, unpacked into its object-API type: shared by the
// Client's source files (client.cc, directory.cc).
#pragma once

#include <string>

#include "rpc/client.h"
#include "util/status.h"

namespace trainyard::client {

template <typename T>
Result<typename T::NativeTableType> unpack(const Result<rpc::Reply>& reply, const std::string& peer) {
  if (!reply) return reply.status();
  const T* body = reply->template body<T>();
  if (!body) {
    return Status::internal(peer + " answered with an unexpected reply type; are the client and service versions "
                                   "compatible?");
  }
  typename T::NativeTableType out;
  body->UnPackTo(&out);
  return out;
}

}  // namespace trainyard::client

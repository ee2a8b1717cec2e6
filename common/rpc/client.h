// The DEALER side of request/reply: one call at a time, a timeout, a few
// retries on a fresh socket (the ZeroMQ guide's "lazy pirate"), and a clear
// Unavailable error naming the peer when it does not answer. Never hangs.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <flatbuffers/flatbuffers.h>
#include <zmq.hpp>

#include "trainyard/fb/reply_generated.h"
#include "trainyard/fb/request_generated.h"
#include "util/status.h"

namespace trainyard::security {
class Site;
}

namespace trainyard::rpc {

// A verified reply; owns its buffer.
class Reply {
 public:
  explicit Reply(zmq::message_t msg) : msg_(std::move(msg)) {}
  const fb::Reply& get() const { return *fb::GetReply(msg_.data()); }
  template <typename T>
  const T* body() const {
    return get().template body_as<T>();
  }

 private:
  zmq::message_t msg_;
};

struct ClientOptions {
  int timeout_ms = 3000;  // per try
  int tries = 2;          // total attempts before Unavailable
  std::string principal;  // on whose behalf (believed only from a service, or without CURVE)
  std::string server;     // the server's principal, whose CURVE key it must hold ("" = "service:" + peer)
  const security::Site* site = nullptr;  // whose key to prove (default: the process's current Site)
};

using BuildBody = std::function<flatbuffers::Offset<void>(flatbuffers::FlatBufferBuilder&)>;

class Client {
 public:
  // `peer` names the service in errors ("scheduler"); `endpoint` is its ROUTER.
  Client(zmq::context_t& ctx, std::string peer, std::string endpoint, ClientOptions options = {});

  // Sends one request and waits for its reply. Errors: Unavailable when the
  // peer did not answer within timeout_ms on any try; otherwise the reply's
  // own code and message when it is not Ok.
  Result<Reply> call(fb::RequestBody type, const BuildBody& build);
  Result<Reply> call(fb::RequestBody type) {
    return call(type, [](flatbuffers::FlatBufferBuilder& b) { return fb::CreateEmpty(b).Union(); });
  }

  const std::string& endpoint() const { return endpoint_; }
  const std::string& peer() const { return peer_; }
  // Makes every call fail with `why` (a key that could not be loaded).
  void refuse(Status why) { secured_ = std::move(why); }

 private:
  void reconnect();

  zmq::context_t& ctx_;
  std::string peer_;
  std::string endpoint_;
  ClientOptions options_;
  std::unique_ptr<zmq::socket_t> socket_;
  Status secured_;  // why the socket could not be secured, if it could not
  uint64_t next_id_;
};

}  // namespace trainyard::rpc

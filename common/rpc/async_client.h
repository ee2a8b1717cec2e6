// Request/reply from inside a service loop without blocking it: send() queues
// a request with a callback; the loop reads replies when the socket is
// readable and expires requests that outlive their timeout (the callback then
// gets Unavailable naming the peer).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include <zmq.hpp>

#include "rpc/client.h"

namespace trainyard {
class Runtime;
}

namespace trainyard::rpc {

class AsyncClient {
 public:
  using Callback = std::function<void(Result<Reply>)>;

  // `server` is the server's principal, whose CURVE key it must hold
  // ("" = "service:" + peer).
  AsyncClient(zmq::context_t& ctx, std::string peer, std::string endpoint, int timeout_ms = 3000,
              std::string server = "");

  // Reads replies on the loop and expires late requests every 100 ms.
  void attach(Runtime& runtime);

  // Sends the request now; `done` runs on the loop thread with the reply,
  // the reply's error, or Unavailable after the timeout.
  void send(fb::RequestBody type, const BuildBody& build, Callback done);

  void poll_in();
  void expire();
  size_t in_flight() const { return waiting_.size(); }
  zmq::socket_t& socket() { return *socket_; }
  const std::string& peer() const { return peer_; }

 private:
  struct Waiting {
    int64_t deadline_ms;
    Callback done;
  };
  void reconnect();

  zmq::context_t& ctx_;
  std::string peer_;
  std::string endpoint_;
  int timeout_ms_;
  std::string server_;
  Status secured_;
  std::unique_ptr<zmq::socket_t> socket_;
  uint64_t next_id_;
  std::map<uint64_t, Waiting> waiting_;
};

}  // namespace trainyard::rpc

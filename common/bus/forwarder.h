// The bus forwarder: a stateless XSUB/XPUB proxy. Publishers connect to its
// frontend (XSUB), subscribers to its backend (XPUB). It keeps nothing, so it
// can be killed and restarted (or run twice) without losing events: the
// durable publishers and subscribers repair what it dropped.
#pragma once

#include <atomic>
#include <string>

#include <zmq.hpp>

namespace trainyard::bus {

struct ForwarderOptions {
  std::string frontend = "tcp://127.0.0.1:*";  // XSUB: publishers connect here
  std::string backend = "tcp://127.0.0.1:*";   // XPUB: subscribers connect here
  int hwm = 1'000'000;
  size_t max_message_bytes = 64u << 20;
};

class Forwarder {
 public:
  // Binds both sockets (throws zmq::error_t if it cannot).
  Forwarder(zmq::context_t& ctx, const ForwarderOptions& options);
  const std::string& frontend() const { return frontend_; }
  const std::string& backend() const { return backend_; }
  // Forwards until stop() is called from any thread (or the context ends).
  void run();
  void stop();

 private:
  zmq::context_t& ctx_;
  zmq::socket_t xsub_;
  zmq::socket_t xpub_;
  zmq::socket_t control_;
  std::string control_endpoint_;
  std::string frontend_;
  std::string backend_;
};

}  // namespace trainyard::bus

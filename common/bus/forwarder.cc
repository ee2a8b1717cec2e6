#include "bus/forwarder.h"

#include <atomic>

namespace trainyard::bus {

Forwarder::Forwarder(zmq::context_t& ctx, const ForwarderOptions& options)
    : ctx_(ctx),
      xsub_(ctx, zmq::socket_type::xsub),
      xpub_(ctx, zmq::socket_type::xpub),
      control_(ctx, zmq::socket_type::pair) {
  static std::atomic<int> counter{0};
  control_endpoint_ = "inproc://forwarder-control-" + std::to_string(counter++);
  xsub_.set(zmq::sockopt::rcvhwm, options.hwm);
  xsub_.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(options.max_message_bytes));
  xsub_.set(zmq::sockopt::linger, 0);
  xpub_.set(zmq::sockopt::sndhwm, options.hwm);
  xpub_.set(zmq::sockopt::linger, 0);
  xsub_.bind(options.frontend);
  xpub_.bind(options.backend);
  control_.set(zmq::sockopt::linger, 0);
  control_.bind(control_endpoint_);
  frontend_ = xsub_.get(zmq::sockopt::last_endpoint);
  backend_ = xpub_.get(zmq::sockopt::last_endpoint);
}

void Forwarder::run() {
  try {
    zmq::proxy_steerable(xsub_, xpub_, zmq::socket_ref(), control_);
  } catch (const zmq::error_t& e) {
    if (e.num() != ETERM) throw;
  }
}

void Forwarder::stop() {
  zmq::socket_t s(ctx_, zmq::socket_type::pair);
  s.set(zmq::sockopt::linger, 1000);
  s.connect(control_endpoint_);
  s.send(zmq::str_buffer("TERMINATE"), zmq::send_flags::none);
}

}  // namespace trainyard::bus

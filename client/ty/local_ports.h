// The TCP side of `ty local`: whether a port on 127.0.0.1 is free for a
// service to bind, and the plain connections that tell whether the bus and
// the gateway answer.
#pragma once

#include <chrono>
#include <string>

namespace trainyard::ty {

// Whether a service could not bind 127.0.0.1:`port` because something
// listens on it or holds it: a bind with SO_REUSEADDR, as ZeroMQ and the
// gateway bind, fails. Sockets left in TIME_WAIT by a stopped service do not
// count (they do not keep it from binding again).
bool port_taken(int port);

// A TCP connection to 127.0.0.1:`port`; -1 when refused.
int connect_local(int port, std::chrono::milliseconds timeout);

// GET `path` over HTTP/1.0; the status code, or 0 when there is no answer.
int http_status(int port, const std::string& path);

}  // namespace trainyard::ty

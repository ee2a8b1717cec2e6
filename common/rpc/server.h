// The ROUTER side of request/reply. Handlers run on the service's loop
// thread; their replies are queued and sent by flush() after the loop has
// committed the iteration's WriteBatch, so an ack always means "durable".
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <flatbuffers/flatbuffers.h>
#include <zmq.hpp>

#include "trainyard/fb/request_generated.h"
#include "trainyard/fb/reply_generated.h"
#include "util/status.h"

namespace trainyard::rpc {

// Builds the reply to one request. A handler either calls ok()/error() on it
// before returning, or keeps it (moved) and answers later.
class Responder {
 public:
  Responder() = default;
  Responder(std::string routing_id, uint64_t request_id)
      : routing_id_(std::move(routing_id)), request_id_(request_id) {}
  // Where to build the reply body before calling ok().
  flatbuffers::FlatBufferBuilder& builder() { return fbb_; }
  void ok(fb::ReplyBody type = fb::ReplyBody::NONE, flatbuffers::Offset<void> body = 0);
  void error(const Status& status);
  bool answered() const { return answered_; }
  const std::string& routing_id() const { return routing_id_; }
  // Who asks. Under CURVE: the principal the ZAP handler gave the caller's
  // key; a service (the gateway, ty local's front-ends) may act for a user
  // by naming them in Request.principal, nobody else may. Without CURVE
  // (security.mode = "none"): Request.principal, believed on its word.
  const std::string& principal() const { return principal_; }
  // The authenticated principal of the connection ("" without CURVE).
  const std::string& peer() const { return peer_; }
  void set_caller(std::string peer, std::string principal) {
    peer_ = std::move(peer);
    principal_ = std::move(principal);
  }
  // The reply's code and, for an error, its message (after ok/error).
  fb::ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // Marks this request as an admin action for the audit trail: `target`
  // names what it acted on ("account physics", "job 42").
  void audit(std::string target) {
    audited_ = true;
    audit_target_ = std::move(target);
  }
  bool audited() const { return audited_; }
  const std::string& audit_target() const { return audit_target_; }
  // The finished reply (after ok/error).
  flatbuffers::DetachedBuffer take() { return fbb_.Release(); }

 private:
  std::string routing_id_;
  uint64_t request_id_ = 0;
  std::string peer_;
  std::string principal_;
  flatbuffers::FlatBufferBuilder fbb_{256};
  bool answered_ = false;
  fb::ErrorCode code_ = fb::ErrorCode::Ok;
  std::string message_;
  bool audited_ = false;
  std::string audit_target_;
};

struct ServerStats {
  uint64_t requests = 0;
  uint64_t rejected = 0;       // failed verification or over the size limit
  uint64_t unimplemented = 0;
  uint64_t unauthenticated = 0;  // a revoked key, or a user naming someone else
};

class Server {
 public:
  using Handler = std::function<void(const fb::Request&, Responder&)>;

  // Binds a ROUTER at `endpoint` ("tcp://127.0.0.1:*" picks a free port;
  // endpoint() tells which). Throws zmq::error_t if it cannot bind.
  Server(zmq::context_t& ctx, const std::string& endpoint, std::string service);

  // The bound endpoint with its real port.
  const std::string& endpoint() const { return endpoint_; }
  zmq::socket_t& socket() { return socket_; }
  const std::string& service() const { return service_; }

  void on(fb::RequestBody type, Handler handler) { handlers_[type] = std::move(handler); }
  // Sees every request answered at once: after its handler ran, or after
  // the server refused its caller. The audit trail's hook.
  using Observer = std::function<void(const fb::Request&, const Responder&)>;
  void observe(Observer fn) { observer_ = std::move(fn); }

  // Reads up to `max` waiting requests and runs their handlers. Returns how
  // many were read.
  size_t poll_in(size_t max = 1024);
  // Queues a reply that a handler answered later.
  void send_later(Responder&& r);
  // Sends every queued reply (call after the loop's commit).
  void flush();
  bool has_pending() const { return !pending_.empty(); }
  const ServerStats& stats() const { return stats_; }

 private:
  zmq::socket_t socket_;
  std::string endpoint_;
  std::string service_;
  bool identify(const zmq::message_t& body, const fb::Request& req, Responder& r);
  // One request's single frame: checked, identified, handed to its handler.
  void handle(std::string routing, const zmq::message_t& body);
  void dispatch(const fb::Request& req, Responder& r);

  void answered(const fb::Request& req, Responder&& r);

  std::map<fb::RequestBody, Handler> handlers_;
  Observer observer_;
  std::vector<Responder> pending_;
  ServerStats stats_;
};

}  // namespace trainyard::rpc

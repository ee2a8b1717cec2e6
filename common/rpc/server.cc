#include "rpc/server.h"

#include <spdlog/spdlog.h>

#include "rpc/message.h"
#include "security/site.h"

namespace trainyard::rpc {

void Responder::ok(fb::ReplyBody type, flatbuffers::Offset<void> body) {
  fb::ReplyBuilder rb(fbb_);
  rb.add_id(request_id_);
  rb.add_code(fb::ErrorCode::Ok);
  if (type != fb::ReplyBody::NONE) {
    rb.add_body_type(type);
    rb.add_body(body);
  }
  fb::FinishReplyBuffer(fbb_, rb.Finish());
  answered_ = true;
  code_ = fb::ErrorCode::Ok;
  message_.clear();
}

void Responder::error(const Status& status) {
  fbb_.Clear();
  auto msg = fbb_.CreateString(status.message());
  fb::ReplyBuilder rb(fbb_);
  rb.add_id(request_id_);
  rb.add_code(status.code());
  rb.add_message(msg);
  fb::FinishReplyBuffer(fbb_, rb.Finish());
  answered_ = true;
  code_ = status.code();
  message_ = status.message();
}

Server::Server(zmq::context_t& ctx, const std::string& endpoint, std::string service)
    : socket_(ctx, zmq::socket_type::router), service_(std::move(service)) {
  socket_.set(zmq::sockopt::linger, 0);
  socket_.set(zmq::sockopt::router_mandatory, false);
  socket_.set(zmq::sockopt::sndhwm, 100000);
  socket_.set(zmq::sockopt::rcvhwm, 100000);
  // ZeroMQ drops a bigger frame (and the peer's connection) before it
  // allocates it; the check in check_request alone would come too late.
  socket_.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(kMaxMessageBytes));
  security::secure_server(socket_);
  socket_.bind(endpoint);
  endpoint_ = socket_.get(zmq::sockopt::last_endpoint);
}

size_t Server::poll_in(size_t max) {
  size_t n = 0;
  for (; n < max; ++n) {
    zmq::message_t id;
    if (!socket_.recv(id, zmq::recv_flags::dontwait)) break;
    std::vector<zmq::message_t> frames;
    while (true) {
      bool more = frames.empty() ? id.more() : frames.back().more();
      if (!more) break;
      frames.emplace_back();
      (void)socket_.recv(frames.back());
    }
    ++stats_.requests;
    std::string routing(static_cast<const char*>(id.data()), id.size());
    // Clients are DEALERs sending exactly one frame: the Request.
    if (frames.size() != 1) {
      ++stats_.rejected;
      spdlog::warn("{}: dropped a request of {} frames from peer {:x}", service_, frames.size(),
                   std::hash<std::string>{}(routing));
      continue;
    }
    handle(std::move(routing), frames[0]);
  }
  return n;
}

void Server::handle(std::string routing, const zmq::message_t& body) {
  auto checked = check_request(static_cast<const uint8_t*>(body.data()), body.size());
  if (!checked.request) {
    ++stats_.rejected;
    spdlog::warn("{}: rejected a malformed request ({} bytes) from peer {:x}: {}", service_, body.size(),
                 std::hash<std::string>{}(routing), checked.status.message());
    return;  // a garbage sender gets no reply: it has no request id to match
  }
  const auto* req = checked.request;
  Responder r(std::move(routing), req->id());
  if (!checked.status.ok()) {
    // Readable but incomplete (a union body absent, an enum out of range,
    // a required field missing): no handler sees it.
    ++stats_.rejected;
    spdlog::warn("{}: refused a {} request: {}", service_, fb::EnumNameRequestBody(req->body_type()),
                 checked.status.message());
    r.error(checked.status);
    pending_.push_back(std::move(r));
    return;
  }
  if (!identify(body, *req, r)) {
    answered(*req, std::move(r));
    return;
  }
  dispatch(*req, r);
  if (r.answered()) answered(*req, std::move(r));
}

void Server::dispatch(const fb::Request& req, Responder& r) {
  auto it = handlers_.find(req.body_type());
  if (it == handlers_.end()) {
    ++stats_.unimplemented;
    r.error(Status(ErrorCode::Unimplemented,
                   service_ + " does not take " + fb::EnumNameRequestBody(req.body_type()) + " requests"));
    return;
  }
  try {
    it->second(req, r);
  } catch (const std::exception& e) {
    spdlog::error("{}: handler for {} failed: {}", service_, fb::EnumNameRequestBody(req.body_type()), e.what());
    r.error(Status::internal(service_ + " failed on this request: " + e.what()));
  }
}

void Server::answered(const fb::Request& req, Responder&& r) {
  if (observer_) {
    try {
      observer_(req, r);
    } catch (const std::exception& e) {
      spdlog::error("{}: the observer of {} failed: {}", service_, fb::EnumNameRequestBody(req.body_type()), e.what());
    }
  }
  pending_.push_back(std::move(r));
}

bool Server::identify(const zmq::message_t& body, const fb::Request& req, Responder& r) {
  std::string claimed = req.principal() ? req.principal()->str() : std::string();
  if (!security::Site::current()) {
    r.set_caller("", std::move(claimed));
    return true;
  }
  std::string peer = security::authenticated_principal(body);
  if (peer.empty()) {
    ++stats_.unauthenticated;
    r.error(Status::permission_denied("the key of this connection is no longer authorized (revoked or replaced)"));
    return false;
  }
  // Services act for users (the gateway for its HTTP callers); a user or
  // an agent speaks only for itself.
  bool delegates = security::principal_kind(peer) == "service" && !claimed.empty();
  if (delegates && !security::check_principal(claimed)) {
    ++stats_.unauthenticated;
    r.error(Status::invalid("principal: \"" + claimed + "\" is not a principal (user:NAME)"));
    return false;
  }
  std::string principal = delegates ? claimed : peer;
  r.set_caller(std::move(peer), std::move(principal));
  return true;
}

void Server::send_later(Responder&& r) { pending_.push_back(std::move(r)); }

void Server::flush() {
  for (auto& r : pending_) {
    auto buf = r.take();
    zmq::message_t id(r.routing_id().data(), r.routing_id().size());
    zmq::message_t body(buf.data(), buf.size());
    socket_.send(id, zmq::send_flags::sndmore | zmq::send_flags::dontwait);
    socket_.send(body, zmq::send_flags::dontwait);
  }
  pending_.clear();
}

}  // namespace trainyard::rpc

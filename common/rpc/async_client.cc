#include "rpc/async_client.h"

#include <random>

#include <spdlog/spdlog.h>

#include "rpc/message.h"
#include "security/site.h"
#include "util/clock.h"
#include "util/runtime.h"

namespace trainyard::rpc {

AsyncClient::AsyncClient(zmq::context_t& ctx, std::string peer, std::string endpoint, int timeout_ms,
                         std::string server)
    : ctx_(ctx),
      peer_(std::move(peer)),
      endpoint_(std::move(endpoint)),
      timeout_ms_(timeout_ms),
      server_(server.empty() ? "service:" + peer_ : std::move(server)) {
  std::random_device rd;
  next_id_ = (uint64_t{rd()} << 32) | rd();
  reconnect();
}

void AsyncClient::reconnect() {
  socket_ = std::make_unique<zmq::socket_t>(ctx_, zmq::socket_type::dealer);
  socket_->set(zmq::sockopt::linger, 0);
  socket_->set(zmq::sockopt::sndhwm, 100000);
  socket_->set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(kMaxMessageBytes));
  secured_ = security::secure_client(*socket_, server_);
  if (!secured_) spdlog::error("cannot secure the connection to {}: {}", peer_, secured_.message());
  socket_->connect(endpoint_);
}

void AsyncClient::attach(Runtime& runtime) {
  // The socket object is stable for the life of this client: reconnect()
  // is not used once attached (a DEALER reconnects by itself).
  runtime.watch(*socket_, [this] { poll_in(); });
  runtime.every(100, [this] { expire(); });
}

void AsyncClient::send(fb::RequestBody type, const BuildBody& build, Callback done) {
  if (!secured_) {
    done(Status::unavailable("cannot reach the " + peer_ + ": " + secured_.message()));
    return;
  }
  flatbuffers::FlatBufferBuilder fbb(512);
  auto body = build(fbb);
  uint64_t id = next_id_++;
  fb::RequestBuilder rb(fbb);
  rb.add_id(id);
  rb.add_body_type(type);
  rb.add_body(body);
  fb::FinishRequestBuffer(fbb, rb.Finish());
  zmq::message_t out(fbb.GetBufferPointer(), fbb.GetSize());
  if (!socket_->send(out, zmq::send_flags::dontwait)) {
    done(Status::unavailable(peer_ + " at " + endpoint_ + " is not accepting requests (queue full)"));
    return;
  }
  waiting_.emplace(id, Waiting{monotonic_ms() + timeout_ms_, std::move(done)});
}

void AsyncClient::poll_in() {
  while (true) {
    zmq::message_t in;
    if (!socket_->recv(in, zmq::recv_flags::dontwait)) break;
    while (in.more()) {
      zmq::message_t extra;
      (void)socket_->recv(extra);
    }
    Status why;
    const auto* checked = check_reply(static_cast<const uint8_t*>(in.data()), in.size(), &why);
    if (!checked) {
      spdlog::warn("dropped a {} from {} at {}", why.message(), peer_, endpoint_);
      continue;
    }
    auto it = waiting_.find(checked->id());
    if (it == waiting_.end()) continue;  // expired already
    auto done = std::move(it->second.done);
    waiting_.erase(it);
    Reply reply(std::move(in));
    if (reply.get().code() != fb::ErrorCode::Ok) {
      auto* m = reply.get().message();
      done(Status(reply.get().code(), m ? m->str() : std::string("request failed")));
    } else {
      done(std::move(reply));
    }
  }
}

void AsyncClient::expire() {
  int64_t now = monotonic_ms();
  for (auto it = waiting_.begin(); it != waiting_.end();) {
    if (it->second.deadline_ms <= now) {
      auto done = std::move(it->second.done);
      it = waiting_.erase(it);
      done(Status::unavailable(peer_ + " at " + endpoint_ + " did not answer within " + std::to_string(timeout_ms_) +
                               " ms"));
    } else {
      ++it;
    }
  }
}

}  // namespace trainyard::rpc

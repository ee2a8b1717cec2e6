#include "rpc/client.h"

#include <cerrno>
#include <random>

#include "rpc/message.h"
#include "security/site.h"
#include "util/clock.h"

namespace trainyard::rpc {

Client::Client(zmq::context_t& ctx, std::string peer, std::string endpoint, ClientOptions options)
    : ctx_(ctx), peer_(std::move(peer)), endpoint_(std::move(endpoint)), options_(std::move(options)) {
  std::random_device rd;
  next_id_ = (uint64_t{rd()} << 32) | rd();
  reconnect();
}

void Client::reconnect() {
  socket_ = std::make_unique<zmq::socket_t>(ctx_, zmq::socket_type::dealer);
  socket_->set(zmq::sockopt::linger, 0);
  socket_->set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(kMaxMessageBytes));
  secured_ = security::secure_client(*socket_, options_.server.empty() ? "service:" + peer_ : options_.server,
                                     options_.site);
  socket_->connect(endpoint_);
}

Result<Reply> Client::call(fb::RequestBody type, const BuildBody& build) {
  if (!secured_) return Status(secured_.code(), "cannot reach the " + peer_ + ": " + secured_.message());
  flatbuffers::FlatBufferBuilder fbb(512);
  auto body = build(fbb);
  auto principal = options_.principal.empty() ? 0 : fbb.CreateString(options_.principal);
  uint64_t id = next_id_++;
  fb::RequestBuilder rb(fbb);
  rb.add_id(id);
  if (!options_.principal.empty()) rb.add_principal(principal);
  rb.add_body_type(type);
  rb.add_body(body);
  fb::FinishRequestBuffer(fbb, rb.Finish());

  for (int attempt = 0; attempt < std::max(1, options_.tries); ++attempt) {
    zmq::message_t out(fbb.GetBufferPointer(), fbb.GetSize());
    if (!socket_->send(out, zmq::send_flags::dontwait)) {
      reconnect();
      continue;
    }
    int64_t deadline = monotonic_ms() + options_.timeout_ms;
    while (true) {
      int64_t left = deadline - monotonic_ms();
      if (left <= 0) break;
      zmq::pollitem_t item{static_cast<void*>(*socket_), 0, ZMQ_POLLIN, 0};
      try {
        zmq::poll(&item, 1, std::chrono::milliseconds(left));
      } catch (const zmq::error_t& e) {
        if (e.num() != EINTR) throw;
        continue;  // a signal (ty's SIGWINCH, a profiler's alarm): wait the rest
      }
      if (!(item.revents & ZMQ_POLLIN)) continue;
      zmq::message_t in;
      if (!socket_->recv(in, zmq::recv_flags::dontwait)) continue;
      while (in.more()) {  // drop unexpected extra frames
        zmq::message_t extra;
        (void)socket_->recv(extra);
      }
      Status why;
      const auto* checked = check_reply(static_cast<const uint8_t*>(in.data()), in.size(), &why);
      if (!checked) return Status::internal(peer_ + " at " + endpoint_ + " sent a " + why.message());
      if (checked->id() != id) continue;  // a late reply to an earlier try
      Reply reply(std::move(in));
      if (reply.get().code() != fb::ErrorCode::Ok) {
        auto* m = reply.get().message();
        return Status(reply.get().code(), m ? m->str() : std::string("request failed"));
      }
      return reply;
    }
    reconnect();  // lazy pirate: a fresh socket drops whatever is queued
  }
  return Status::unavailable(peer_ + " at " + endpoint_ + " did not answer within " +
                             std::to_string(options_.timeout_ms) + " ms (" + std::to_string(options_.tries) +
                             " tries); is it running?");
}

}  // namespace trainyard::rpc

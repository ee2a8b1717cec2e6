// The gateway's request/reply endpoint (gateway.endpoint, an rpc::Server on
// the gateway's loop): `ty token create|list|revoke` and `ty local`'s
// one-time login links. The caller is the request's principal (user:NAME;
// under CURVE, the authenticated one). A user manages their own tokens; a
// user listed in gateway.admins may manage anyone's.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <zmq.hpp>

#include "rpc/server.h"
#include "sessions.h"
#include "tokens.h"
#include "util/clock.h"
#include "util/runtime.h"

namespace trainyard::gateway {

class TokenService {
 public:
  // Binds `endpoint` (throws zmq::error_t) and hooks into `runtime`, whose
  // batch commits each change before the reply goes out.
  TokenService(zmq::context_t& ctx, const std::string& endpoint, Runtime& runtime, TokenStore& tokens,
               Sessions& sessions, std::function<bool(const std::string&)> is_admin);
  const std::string& endpoint() const { return server_->endpoint(); }

 private:
  void create(const fb::Request& req, rpc::Responder& r);
  void list(const fb::Request& req, rpc::Responder& r);
  void revoke(const fb::Request& req, rpc::Responder& r);
  void login_link(const fb::Request& req, rpc::Responder& r);
  // The caller's user name, or an error answered already.
  std::optional<std::string> caller(const fb::Request& req, rpc::Responder& r) const;

  Runtime& runtime_;
  TokenStore& tokens_;
  Sessions& sessions_;
  std::function<bool(const std::string&)> is_admin_;
  SystemClock clock_;
  std::unique_ptr<rpc::Server> server_;
};

}  // namespace trainyard::gateway

#include "token_service.h"

#include <spdlog/spdlog.h>

#include "http_util.h"
#include "wire/fb_str.h"

namespace trainyard::gateway {

namespace {

flatbuffers::Offset<fb::ApiToken> pack(flatbuffers::FlatBufferBuilder& b, const TokenInfo& t,
                                       const std::string& secret = "") {
  return fb::CreateApiTokenDirect(b, t.id, t.user.c_str(), t.name.c_str(), t.created_ns, t.expires_ns,
                                  t.last_used_ns, secret.empty() ? nullptr : secret.c_str());
}

}  // namespace

TokenService::TokenService(zmq::context_t& ctx, const std::string& endpoint, Runtime& runtime, TokenStore& tokens,
                           Sessions& sessions, std::function<bool(const std::string&)> is_admin)
    : runtime_(runtime), tokens_(tokens), sessions_(sessions), is_admin_(std::move(is_admin)),
      server_(std::make_unique<rpc::Server>(ctx, endpoint, "gateway")) {
  server_->on(fb::RequestBody::Ping, [](const fb::Request&, rpc::Responder& r) {
    r.ok(fb::ReplyBody::Pong, fb::CreatePongDirect(r.builder(), "gateway", "gateway", "0.1.0").Union());
  });
  server_->on(fb::RequestBody::MakeApiToken, [this](const fb::Request& q, rpc::Responder& r) { create(q, r); });
  server_->on(fb::RequestBody::ListApiTokens, [this](const fb::Request& q, rpc::Responder& r) { list(q, r); });
  server_->on(fb::RequestBody::RevokeApiToken, [this](const fb::Request& q, rpc::Responder& r) { revoke(q, r); });
  server_->on(fb::RequestBody::MakeLoginLink, [this](const fb::Request& q, rpc::Responder& r) { login_link(q, r); });
  runtime_.watch(server_->socket(), [this] { server_->poll_in(); });
  runtime_.after_commit([this] { server_->flush(); });
}

std::optional<std::string> TokenService::caller(const fb::Request&, rpc::Responder& r) const {
  const std::string& p = r.principal();  // the caller's key under CURVE (ty token uses the user's)
  if (p.rfind("user:", 0) != 0 || !valid_user(p.substr(5))) {
    r.error(Status::permission_denied("API tokens belong to users: the principal '" + p + "' is not user:NAME"));
    return std::nullopt;
  }
  return p.substr(5);
}

void TokenService::create(const fb::Request& req, rpc::Responder& r) {
  auto who = caller(req, r);
  if (!who) return;
  const auto* body = req.body_as_MakeApiToken();
  std::string user = str(body->user()).empty() ? *who : str(body->user());
  std::string name = str(body->name());
  int64_t now = clock_.now_ns();
  if (user != *who && !is_admin_(*who)) {
    return r.error(Status::permission_denied("user '" + *who + "' may not make tokens for '" + user +
                                             "' (only gateway.admins may)"));
  }
  if (!valid_user(user)) return r.error(Status::invalid("MakeApiToken.user: '" + user + "' is not a valid user name"));
  if (name.size() > 100) return r.error(Status::invalid("MakeApiToken.name: at most 100 bytes"));
  if (body->expires_ns() != 0 && body->expires_ns() <= now) {
    return r.error(Status::invalid("MakeApiToken.expires_ns: the expiry is in the past"));
  }
  auto [info, secret] = tokens_.create(runtime_.batch(), user, name, body->expires_ns(), now);
  spdlog::info("token {} ('{}') created for {} by {}", info.id, name, user, *who);
  r.ok(fb::ReplyBody::ApiToken, pack(r.builder(), info, secret).Union());
}

void TokenService::list(const fb::Request& req, rpc::Responder& r) {
  auto who = caller(req, r);
  if (!who) return;
  std::string user = str(req.body_as_ListApiTokens()->user());
  if (user.empty()) user = *who;
  if (user != *who && !is_admin_(*who)) {
    return r.error(Status::permission_denied("user '" + *who + "' may list only their own tokens"));
  }
  auto& b = r.builder();
  std::vector<flatbuffers::Offset<fb::ApiToken>> out;
  for (const auto& t : tokens_.list(user == "*" ? "" : user)) out.push_back(pack(b, t));
  r.ok(fb::ReplyBody::ApiTokenList, fb::CreateApiTokenListDirect(b, &out).Union());
}

void TokenService::revoke(const fb::Request& req, rpc::Responder& r) {
  auto who = caller(req, r);
  if (!who) return;
  uint64_t id = req.body_as_RevokeApiToken()->id();
  auto t = tokens_.get(id);
  if (!t) return r.error(Status::not_found("no token " + std::to_string(id) + " (`ty token list` shows yours)"));
  if (t->user != *who && !is_admin_(*who)) {
    return r.error(Status::permission_denied("token " + std::to_string(id) + " belongs to '" + t->user + "', not '" +
                                             *who + "'"));
  }
  tokens_.revoke(runtime_.batch(), id);
  spdlog::info("token {} of {} revoked by {}", id, t->user, *who);
  r.ok(fb::ReplyBody::ApiToken, pack(r.builder(), *t).Union());
}

void TokenService::login_link(const fb::Request& req, rpc::Responder& r) {
  auto who = caller(req, r);
  if (!who) return;
  uint32_t ttl = req.body_as_MakeLoginLink()->ttl_s();
  if (ttl == 0 || ttl > 86'400) return r.error(Status::invalid("MakeLoginLink.ttl_s: 1..86400 seconds"));
  int64_t now_ms = clock_.now_ms();
  std::string secret = sessions_.create_link(*who, int64_t{ttl} * 1000, now_ms);
  r.ok(fb::ReplyBody::LoginLink,
       fb::CreateLoginLinkDirect(r.builder(), secret.c_str(), who->c_str(), (now_ms + int64_t{ttl} * 1000) * 1'000'000)
           .Union());
}

}  // namespace trainyard::gateway

#include "token.h"

#include <ctime>
#include <iostream>

#include <nlohmann/json.hpp>

#include "format.h"
#include "rpc/client.h"
#include "util/clock.h"
#include "util/config.h"

namespace trainyard::ty {

namespace {

constexpr const char* kDefaultGateway = "tcp://127.0.0.1:5564";

// --gateway, else gateway.endpoint of the config ty reads, else the default.
std::string gateway_endpoint(Context& ctx, const std::string& flag) {
  if (!flag.empty()) return client::connectable(flag);
  auto* c = ctx.client();
  if (c && !c->endpoints().source.empty()) {
    if (auto config = Config::load(c->endpoints().source)) {
      return client::connectable(config->get_string("gateway.endpoint", kDefaultGateway));
    }
  }
  return kDefaultGateway;
}

// Under CURVE the user's key (`site`) says who asks; "user:" + user is
// believed only without it.
Result<rpc::Reply> call(const std::string& endpoint, const std::string& user, int timeout_ms, fb::RequestBody type,
                        const rpc::BuildBody& build, const security::Site* site) {
  static zmq::context_t zctx(1);
  rpc::ClientOptions o{timeout_ms > 0 ? timeout_ms : 1500, 2, "user:" + user, "service:gateway", site};
  rpc::Client c(zctx, "gateway", endpoint, o);
  return c.call(type, build);
}

Result<rpc::Reply> call_as_user(Context& ctx, const std::string& flag, fb::RequestBody type, const rpc::BuildBody& build) {
  auto* c = ctx.client();
  return call(gateway_endpoint(ctx, flag), ctx.user, ctx.timeout_ms, type, build, c ? c->site() : nullptr);
}

// "30d", "12h", "45m", "never" -> ns from now (0: never); -1 when malformed.
int64_t parse_expiry(const std::string& s, int64_t now_ns) {
  if (s == "never") return 0;
  if (s.size() < 2 || s.find_first_not_of("0123456789", 0) != s.size() - 1) return -1;
  int64_t n = std::stoll(s.substr(0, s.size() - 1));
  int64_t unit = s.back() == 'd' ? 86'400 : s.back() == 'h' ? 3'600 : s.back() == 'm' ? 60 : 0;
  if (unit == 0 || n <= 0 || n > 3650 * 86'400 / unit) return -1;
  return now_ns + n * unit * 1'000'000'000;
}

std::string when(int64_t ns) {
  if (ns == 0) return "-";
  std::time_t t = ns / 1'000'000'000;
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M", std::gmtime(&t));
  return buf;
}

nlohmann::json token_json(const fb::ApiToken& t) {
  auto s = [](const flatbuffers::String* v) { return v ? v->str() : std::string(); };
  nlohmann::json j{{"id", t.id()},           {"user", s(t.user())},           {"name", s(t.name())},
                   {"created_ns", t.created_ns()}, {"expires_ns", t.expires_ns()}, {"last_used_ns", t.last_used_ns()}};
  if (t.secret()) j["token"] = t.secret()->str();
  return j;
}

struct TokenFlags {
  std::string gateway, name, expires = "90d", user;
  uint64_t id = 0;
  bool json = false, all = false;
};

int create(Context& ctx, const TokenFlags& f) {
  int64_t expires = parse_expiry(f.expires, SystemClock().now_ns());
  if (expires < 0) return fail(Status::invalid("--expires '" + f.expires + "': use a number of days, hours or "
                                               "minutes (30d, 12h, 45m) or 'never'"));
  auto r = call_as_user(ctx, f.gateway, fb::RequestBody::MakeApiToken,
                [&](auto& b) { return fb::CreateMakeApiTokenDirect(b, f.name.c_str(), expires, f.user.c_str()).Union(); });
  if (!r) return fail(r.status());
  auto j = token_json(*r->body<fb::ApiToken>());
  if (f.json) {
    std::cout << j.dump(2) << "\n";
  } else {
    std::cout << j["token"].get<std::string>() << std::endl;
    std::cerr << "Token " << j["id"] << " for " << j["user"].get<std::string>() << " (expires "
              << when(j["expires_ns"].get<int64_t>()) << "). It is shown only now: keep it like a password.\n"
              << "Use it as 'Authorization: Bearer <token>', or to log in to the dashboard.\n";
  }
  return kExitOk;
}

int list(Context& ctx, const TokenFlags& f) {
  std::string who = f.all ? "*" : f.user;
  auto r = call_as_user(ctx, f.gateway, fb::RequestBody::ListApiTokens,
                [&](auto& b) { return fb::CreateListApiTokensDirect(b, who.c_str()).Union(); });
  if (!r) return fail(r.status());
  nlohmann::json all = nlohmann::json::array();
  if (auto* l = r->body<fb::ApiTokenList>(); l && l->tokens()) {
    for (const auto* t : *l->tokens()) all.push_back(token_json(*t));
  }
  if (f.json) {
    std::cout << all.dump(2) << "\n";
    return kExitOk;
  }
  Table t({"ID", "USER", "NAME", "CREATED", "EXPIRES", "LAST USED"});
  for (auto& j : all) {
    t.add({j["id"].dump(), j["user"], j["name"], when(j["created_ns"]), when(j["expires_ns"]), when(j["last_used_ns"])});
  }
  std::cout << t.render();
  return kExitOk;
}

int revoke(Context& ctx, const TokenFlags& f) {
  auto r = call_as_user(ctx, f.gateway, fb::RequestBody::RevokeApiToken,
                [&](auto& b) { return fb::CreateRevokeApiToken(b, f.id).Union(); });
  if (!r) return fail(r.status());
  std::cout << "Revoked token " << f.id << "\n";
  return kExitOk;
}

}  // namespace

Result<std::string> create_login_link(const std::string& endpoint, const std::string& user, int timeout_ms,
                                      const security::Site* site) {
  auto r = call(
      endpoint, user, timeout_ms, fb::RequestBody::MakeLoginLink,
      [](auto& b) { return fb::CreateMakeLoginLink(b, 600).Union(); }, site);
  if (!r) return r.status();
  const auto* l = r->body<fb::LoginLink>();
  if (!l || !l->secret()) return Status::internal("the gateway answered MakeLoginLink without a link");
  return l->secret()->str();
}

void add_token_commands(CLI::App& app, Context& ctx, Action& action) {
  auto* cmd = app.add_subcommand("token", "Personal API tokens for the REST API and the dashboard login");
  auto f = std::make_shared<TokenFlags>();
  cmd->add_option("--gateway", f->gateway, "The gateway's token endpoint (config gateway.endpoint; " +
                                               std::string(kDefaultGateway) + ")");
  cmd->require_subcommand(1);
  auto* c = cmd->add_subcommand("create", "Make a token (printed once: keep it like a password)");
  c->add_option("--name", f->name, "A label for it (\"laptop\", \"ci\")");
  c->add_option("--expires", f->expires, "Lifetime: 30d, 12h, 45m or never (default 90d)");
  c->add_option("--user", f->user, "Make it for another user (gateway.admins only)");
  c->add_flag("--json", f->json, "Print JSON (with the token)");
  c->callback([f, &ctx, &action] { action = [f, &ctx] { return create(ctx, *f); }; });
  auto* l = cmd->add_subcommand("list", "Your tokens (never their secrets)");
  l->add_flag("--all", f->all, "Everyone's (gateway.admins only)");
  l->add_option("--user", f->user, "Another user's (gateway.admins only)");
  l->add_flag("--json", f->json, "Print JSON");
  l->callback([f, &ctx, &action] { action = [f, &ctx] { return list(ctx, *f); }; });
  auto* r = cmd->add_subcommand("revoke", "Revoke a token at once (ID from ty token list)");
  r->add_option("ID", f->id, "The token's id")->required();
  r->callback([f, &ctx, &action] { action = [f, &ctx] { return revoke(ctx, *f); }; });
}

}  // namespace trainyard::ty

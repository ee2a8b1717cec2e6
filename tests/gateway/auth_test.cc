// The gateway's authentication against a real trainyard-gateway (its
// services down: what is checked here happens before any is asked): 401
// without credentials on every kind of route, tokens made and revoked with
// `ty token`, the browser login with its cookie and CSRF token, the Origin
// and Host checks, the trusted-proxy mode and the /metrics allowlist, HTTPS,
// and the one-time login link `ty local` prints.
#define BOOST_TEST_MODULE gateway_auth
#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <zmq.hpp>

#include "gateway_support.h"
#include "rpc/client.h"

using namespace trainyard;
using namespace trainyard::testing;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

const std::string kDead = "tcp://127.0.0.1:9";

std::vector<std::string> dead_services(std::vector<std::string> more = {}) {
  std::vector<std::string> sets{"bus.backend=" + kDead,   "scheduler.endpoint=" + kDead, "broker.endpoint=" + kDead,
                                "metrics.endpoint=" + kDead, "billing.endpoint=" + kDead, "gateway.rpc_timeout_ms=200",
                                "gateway.rpc_tries=1",       "gateway.admins=[\"root\"]"};
  sets.insert(sets.end(), more.begin(), more.end());
  return sets;
}

int port_of(const std::string& url) { return std::stoi(url.substr(url.rfind(':') + 1)); }

// One HTTP/1.1 request over TCP from a chosen loopback source address (the
// gateway tells a proxy or a scraper by its address); status and body.
std::pair<int, std::string> request_from(const std::string& from, int port, const std::string& request) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in src{};
  src.sin_family = AF_INET;
  inet_pton(AF_INET, from.c_str(), &src.sin_addr);
  BOOST_REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) == 0);
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
  BOOST_REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) == 0);
  std::string req = request + "Host: 127.0.0.1\r\nConnection: close\r\n\r\n";
  BOOST_REQUIRE(::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size()));
  std::string got;
  char buf[4096];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 5000) <= 0) break;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  int status = got.rfind("HTTP/1.1 ", 0) == 0 ? std::stoi(got.substr(9, 3)) : 0;
  auto body = got.find("\r\n\r\n");
  return {status, body == std::string::npos ? "" : got.substr(body + 4)};
}

// The "name=value" of a Set-Cookie header named `name` ("" if none).
std::string cookie_of(const HttpResponse& r, const std::string& name) {
  for (const auto& c : r.cookies) {
    if (c.rfind(name + "=", 0) == 0) return c.substr(0, c.find(';'));
  }
  return "";
}
std::string set_cookie(const HttpResponse& r, const std::string& name) {
  for (const auto& c : r.cookies) {
    if (c.rfind(name + "=", 0) == 0) return c;
  }
  return "";
}

// The first bytes of an SSE stream, or its error answer.
std::pair<int, std::string> sse_start(const std::string& url, const std::string& token) {
  httplib::Client cli(url);
  cli.set_read_timeout(5, 0);
  if (!token.empty()) cli.set_bearer_token_auth(token.c_str());
  std::string got;
  auto r = cli.Get("/api/v1/events?kinds=job", [&](const char* d, size_t n) {
    got.append(d, n);
    return got.find("event: hello") == std::string::npos;
  });
  return {r ? r->status : (got.empty() ? 0 : 200), got};
}

}  // namespace

BOOST_AUTO_TEST_CASE(every_route_but_healthz_needs_credentials_and_a_token_opens_them) {
  TempDir dir;
  Gateway gw(dir, dead_services());
  Http anonymous(gw.url);
  Http ana(gw.url, gw.token_for("ana"));
  const char* routes[] = {"/api/v1/cluster",        "/api/v1/jobs",  "/api/v1/jobs/1",         "/api/v1/jobs/1/logs",
                          "/api/v1/jobs/1/metrics", "/api/v1/usage", "/api/v1/accounts",       "/api/v1/invoices?account=a",
                          "/api/v1/experiments",    "/api/v1/health", "/api/v1/events/recent", "/metrics",
                          "/api/v1/session"};
  for (const char* path : routes) {
    auto r = anonymous.get(path);
    BOOST_TEST(r.status == 401, path << " -> " << r.status << " " << r.text);
    BOOST_TEST(r.body.value("error", "").find("ty token create") != std::string::npos, path << ": " << r.text);
    BOOST_TEST(r.body.value("code", "") == "Unauthenticated", path);
    auto t = ana.get(path);
    BOOST_TEST((t.status == 200 || t.status == 503), path << " with a token -> " << t.status << " " << t.text);
  }
  BOOST_TEST(anonymous.post("/api/v1/jobs", R"({"command":["true"]})").status == 401);
  BOOST_TEST(anonymous.del("/api/v1/jobs/1").status == 401);
  BOOST_TEST(anonymous.post("/api/v1/jobs/1/cancel", "").status == 401);
  // The live event stream (SSE): refused without a token, open with one.
  BOOST_TEST(sse_start(gw.url, "").first == 401);
  BOOST_TEST(sse_start(gw.url, "tyt_wrong").first == 401);
  auto s = sse_start(gw.url, gw.token_for("ana"));
  BOOST_TEST(s.second.find("event: hello") != std::string::npos, s.first << " " << s.second);

  // Who the token names; the header of old is no credential at all.
  auto who = ana.get("/api/v1/session");
  BOOST_TEST(who.body["user"] == "ana");
  BOOST_TEST(who.body["via"] == "token");
  auto forged = anonymous.get("/api/v1/jobs", {{"X-Trainyard-User", "root"}});
  BOOST_TEST(forged.status == 401);
  BOOST_TEST(forged.body.value("error", "").find("X-Trainyard-User is no longer trusted") != std::string::npos);
  BOOST_TEST(anonymous.get("/api/v1/jobs", {{"Authorization", "Bearer tyt_0000"}}).status == 401);
  BOOST_TEST(anonymous.get("/api/v1/jobs", {{"Authorization", "Basic YW5hOng="}}).status == 401);

  // Open: the health check; a browser is sent to the login page.
  auto h = anonymous.get("/healthz");
  BOOST_TEST(h.status == 200);
  BOOST_TEST(h.body["ok"] == true);
  auto page = anonymous.get("/");
  BOOST_TEST(page.status == 303);
  BOOST_TEST(page.location.find("login.html") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_token_is_listed_survives_a_restart_and_stops_working_once_revoked) {
  TempDir dir;
  auto gw = std::make_unique<Gateway>(dir, dead_services());
  std::string token = gw->token_for("ana", {"--expires", "30d"});
  BOOST_TEST(token.size() == 4u + 64u);
  auto ty = [&](const std::string& user, std::vector<std::string> args) {
    args.insert(args.begin(), {bin("ty"), "token", "--gateway", gw->rpc});
    return run(args, 20s, {{"USER", user}, {"TY_CONFIG", ""}, {"HOME", "/nonexistent"}});
  };
  auto [rc, out] = ty("ana", {"list", "--json"});
  BOOST_REQUIRE_MESSAGE(rc == 0, out);
  auto list = json::parse(out.substr(out.find('[')));
  BOOST_REQUIRE(list.size() == 1u);
  BOOST_TEST(list[0]["user"] == "ana");
  BOOST_TEST(!list[0].contains("token"));  // never shown again
  BOOST_TEST(list[0]["expires_ns"].get<int64_t>() > 0);
  std::string id = list[0]["id"].dump();
  BOOST_TEST(ty("bob", {"list", "--json"}).second.find("ana") == std::string::npos);
  BOOST_TEST(ty("ana", {"create", "--expires", "soon"}).first == 2);

  // Stored hashed and durably: a restarted gateway takes the same token.
  BOOST_TEST(Http(gw->url, token).get("/api/v1/session").status == 200);
  gw.reset();
  gw = std::make_unique<Gateway>(dir, dead_services(), "gateway");
  BOOST_TEST(Http(gw->url, token).get("/api/v1/session").status == 200);
  auto [grc, grep] = run({"/bin/sh", "-c", "grep -r -l " + token.substr(4) + " " + (dir / "gateway.db") + " || true"});
  BOOST_TEST(grep.empty(), "the secret is stored in clear: " << grep);

  // Only its owner (or an admin) revokes it; then it stops at once.
  auto [brc, bout] = ty("bob", {"revoke", id});
  BOOST_TEST(brc != 0);
  BOOST_TEST(bout.find("belongs to 'ana'") != std::string::npos, bout);
  BOOST_TEST(Http(gw->url, token).get("/api/v1/session").status == 200);
  auto [arc, aout] = ty("ana", {"revoke", id});
  BOOST_TEST(arc == 0, aout);
  auto r = Http(gw->url, token).get("/api/v1/jobs");
  BOOST_TEST(r.status == 401);
  BOOST_TEST(r.body.value("error", "").find("revoked") != std::string::npos, r.text);
  // An admin may make a token for another user; a user may not.
  BOOST_TEST(ty("bob", {"create", "--user", "carol"}).first != 0);
  auto carol = gw->token_for("root", {"--user", "carol"});
  BOOST_TEST(Http(gw->url, carol).get("/api/v1/session").body["user"] == "carol");
}

BOOST_AUTO_TEST_CASE(cross_origin_writes_and_foreign_host_names_are_refused_with_403) {
  TempDir dir;
  Gateway gw(dir, dead_services());
  Http ana(gw.url, gw.token_for("ana"));
  std::string body = R"({"command":["true"]})";
  auto r = ana.post("/api/v1/jobs", body, {{"Origin", "http://evil.example"}});
  BOOST_TEST(r.status == 403, r.text);
  BOOST_TEST(r.body.value("field", "") == "Origin");
  BOOST_TEST(r.body.value("error", "").find("cross-origin") != std::string::npos, r.text);
  // A "simple" cross-site form post (text/plain, no preflight) too.
  BOOST_TEST(ana.post("/api/v1/jobs/1/cancel", "x", {{"Origin", "null"}}, "text/plain").status == 403);
  BOOST_TEST(ana.post("/api/v1/jobs", body, {{"Sec-Fetch-Site", "cross-site"}}).status == 403);
  BOOST_TEST(ana.del("/api/v1/jobs/1", {{"Origin", "http://evil.example"}}).status == 403);
  // The gateway's own origin passes (then the scheduler is down: 503).
  std::string self = "http://127.0.0.1:" + std::to_string(port_of(gw.url));
  BOOST_TEST(ana.post("/api/v1/jobs", body, {{"Origin", self}}).status == 503);
  // DNS rebinding: a gateway on loopback answers only to loopback names.
  auto [status, text] = request_from("127.0.0.1", port_of(gw.url), "GET /healthz HTTP/1.1\r\nHost: evil.example\r\n");
  BOOST_TEST(status == 403, text);
  BOOST_TEST(text.find("gateway.allowed_hosts") != std::string::npos, text);
}

BOOST_AUTO_TEST_CASE(a_browser_logs_in_with_a_token_and_writes_only_with_its_csrf_token) {
  TempDir dir;
  Gateway gw(dir, dead_services({"gateway.session_ttl_s=60"}));
  std::string token = gw.token_for("ana");
  Http browser(gw.url);
  BOOST_TEST(browser.post("/login", json{{"user", "bob"}, {"token", token}}.dump()).status == 401);
  BOOST_TEST(browser.post("/login", json{{"user", "ana"}, {"token", "tyt_x"}}.dump()).status == 401);
  // The form the login page posts: a redirect to the dashboard with the cookies.
  auto login = browser.post("/login", "user=ana&token=" + token, {}, "application/x-www-form-urlencoded");
  BOOST_TEST(login.status == 303);
  BOOST_TEST(login.location == "/");
  std::string session = set_cookie(login, "ty_session");
  BOOST_TEST(session.find("HttpOnly") != std::string::npos, session);
  BOOST_TEST(session.find("SameSite=Strict") != std::string::npos, session);
  BOOST_TEST(session.find("Secure") == std::string::npos, session);  // plain HTTP here
  BOOST_TEST(session.find("Max-Age=60") != std::string::npos, session);
  httplib::Headers cookies{{"Cookie", cookie_of(login, "ty_session") + "; " + cookie_of(login, "ty_csrf")}};
  auto me = browser.get("/api/v1/session", cookies);
  BOOST_REQUIRE_MESSAGE(me.status == 200, me.text);
  BOOST_TEST(me.body["user"] == "ana");
  BOOST_TEST(me.body["via"] == "session");
  std::string csrf = me.body["csrf"];
  BOOST_TEST(cookie_of(login, "ty_csrf") == "ty_csrf=" + csrf);
  BOOST_TEST(browser.get("/", cookies).status == 200);  // the dashboard (or its notice)

  // Writes need the CSRF token as well as the cookie.
  std::string body = R"({"command":["true"]})";
  auto no_csrf = browser.post("/api/v1/jobs", body, cookies);
  BOOST_TEST(no_csrf.status == 403, no_csrf.text);
  BOOST_TEST(no_csrf.body.value("field", "") == "X-CSRF-Token");
  auto wrong = cookies;
  wrong.emplace("X-CSRF-Token", std::string(csrf.size(), '0'));
  BOOST_TEST(browser.post("/api/v1/jobs", body, wrong).status == 403);
  auto right = cookies;
  right.emplace("X-CSRF-Token", csrf);
  BOOST_TEST(browser.post("/api/v1/jobs", body, right).status == 503);  // past the checks: the scheduler is down

  // Logout (with the token) ends the session on the gateway.
  BOOST_TEST(browser.post("/logout", "", cookies).status == 403);
  BOOST_TEST(browser.post("/logout", "", right).status == 200);
  auto after = browser.get("/api/v1/session", cookies);
  BOOST_TEST(after.status == 401);
  BOOST_TEST(after.body.value("error", "").find("session") != std::string::npos, after.text);
}

BOOST_AUTO_TEST_CASE(the_proxy_header_counts_only_from_a_trusted_proxy_and_scrapers_only_from_the_allowlist) {
  TempDir dir;
  Gateway gw(dir, dead_services({"gateway.proxy_user_header=X-Forwarded-User", "gateway.trusted_proxies=[\"127.0.0.2/32\"]",
                                 "gateway.metrics_allow=[\"127.0.0.3\"]"}));
  int port = port_of(gw.url);
  auto [ok, who] = request_from("127.0.0.2", port, "GET /api/v1/session HTTP/1.1\r\nX-Forwarded-User: carol\r\n");
  BOOST_TEST(ok == 200, who);
  BOOST_TEST(json::parse(who, nullptr, false).value("user", "") == "carol", who);
  auto [refused, why] = request_from("127.0.0.1", port, "GET /api/v1/session HTTP/1.1\r\nX-Forwarded-User: carol\r\n");
  BOOST_TEST(refused == 401, why);
  BOOST_TEST(why.find("trusted proxies") != std::string::npos, why);
  BOOST_TEST(request_from("127.0.0.4", port, "GET /api/v1/jobs HTTP/1.1\r\nX-Forwarded-User: root\r\n").first == 401);
  // A write through the proxy needs this gateway's Origin.
  std::string post = "POST /api/v1/jobs/1/cancel HTTP/1.1\r\nX-Forwarded-User: carol\r\nContent-Length: 0\r\n";
  BOOST_TEST(request_from("127.0.0.2", port, post).first == 403);

  auto [scrape, text] = request_from("127.0.0.3", port, "GET /metrics HTTP/1.1\r\n");
  BOOST_TEST(scrape == 200);
  BOOST_TEST(text.find("trainyard_service_up") != std::string::npos);
  BOOST_TEST(request_from("127.0.0.1", port, "GET /metrics HTTP/1.1\r\n").first == 401);
  BOOST_TEST(request_from("127.0.0.3", port, "GET /api/v1/jobs HTTP/1.1\r\n").first == 401);  // /metrics only
  BOOST_TEST(Http(gw.url, gw.token_for("ana")).get("/metrics").status == 200);
}

BOOST_AUTO_TEST_CASE(the_gateway_serves_https_with_secure_cookies) {
  TempDir dir;
  auto [rc, out] = run({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                        "/CN=127.0.0.1", "-keyout", dir / "key.pem", "-out", dir / "cert.pem"});
  BOOST_REQUIRE_MESSAGE(rc == 0, "openssl could not make a self-signed certificate: " << out);
  Gateway gw(dir, dead_services({"gateway.tls_cert=" + (dir / "cert.pem"), "gateway.tls_key=" + (dir / "key.pem")}));
  BOOST_REQUIRE(gw.url.rfind("https://127.0.0.1:", 0) == 0);
  std::string token = gw.token_for("ana");
  Http https(gw.url);
  BOOST_TEST(https.get("/healthz").status == 200);
  BOOST_TEST(https.get("/api/v1/jobs").status == 401);
  BOOST_TEST(Http(gw.url, token).get("/api/v1/session").body["user"] == "ana");
  auto login = https.post("/login", json{{"user", "ana"}, {"token", token}}.dump());
  BOOST_TEST(login.status == 200, login.text);
  BOOST_TEST(set_cookie(login, "ty_session").find("; Secure") != std::string::npos);
  // Plain HTTP on the TLS port gets no answer from the API.
  httplib::Client plain("http://127.0.0.1:" + std::to_string(port_of(gw.url)));
  plain.set_read_timeout(3, 0);
  auto r = plain.Get("/healthz");
  BOOST_TEST((!r || r->status != 200));
}

BOOST_AUTO_TEST_CASE(a_one_time_login_link_logs_a_browser_in_once_and_leaves_the_address_bar) {
  TempDir dir;
  Gateway gw(dir, dead_services());
  zmq::context_t ctx(1);
  auto link_for = [&](const std::string& user) {
    rpc::Client c(ctx, "gateway", gw.rpc, rpc::ClientOptions{2000, 1, "user:" + user, "", nullptr});
    auto r = c.call(fb::RequestBody::MakeLoginLink, [](auto& b) { return fb::CreateMakeLoginLink(b, 600).Union(); });
    BOOST_REQUIRE_MESSAGE(r, r.status().message());
    return r->body<fb::LoginLink>()->secret()->str();
  };
  std::string secret = link_for("ana");
  Http browser(gw.url);
  auto first = browser.get("/?token=" + secret);
  BOOST_TEST(first.status == 303);
  BOOST_TEST(first.location == "/");  // the secret leaves the URL
  std::string session = cookie_of(first, "ty_session");
  BOOST_REQUIRE(!session.empty());
  auto me = browser.get("/api/v1/session", {{"Cookie", session}});
  BOOST_TEST(me.body["user"] == "ana", me.text);
  // Spent: a second use (someone who saw the URL) is refused.
  auto again = browser.get("/?token=" + secret);
  BOOST_TEST(again.status == 401);
  BOOST_TEST(cookie_of(again, "ty_session").empty());
  BOOST_TEST(browser.get("/?token=" + std::string(64, 'a')).status == 401);
  // Only a user principal gets one.
  rpc::Client svc(ctx, "gateway", gw.rpc, rpc::ClientOptions{2000, 1, "service:scheduler", "", nullptr});
  auto r = svc.call(fb::RequestBody::MakeLoginLink, [](auto& b) { return fb::CreateMakeLoginLink(b, 600).Union(); });
  BOOST_TEST(!r);
  BOOST_TEST((r.status().code() == ErrorCode::PermissionDenied), r.status().message());
}

BOOST_AUTO_TEST_CASE(contradictory_or_malformed_auth_settings_stop_the_start_naming_the_key) {
  TempDir dir;
  struct Case {
    std::string set, key;
  } cases[] = {
      {"gateway.trusted_proxies=[\"10.0.0.0/40\"]", "gateway.trusted_proxies"},
      {"gateway.metrics_allow=[\"prometheus.local\"]", "gateway.metrics_allow"},
      {"gateway.proxy_user_header=X-Forwarded-User", "gateway.trusted_proxies"},
      {"gateway.tls_cert=" + (dir / "cert.pem"), "gateway.tls_key"},
      {"gateway.trust_user_header=true", "gateway.trust_user_header"},  // gone: unknown key
  };
  for (const auto& c : cases) {
    auto [rc, out] = run({bin("trainyard-gateway"), "--listen", "127.0.0.1:0", "--set", "gateway.data=" + (dir / "db"),
                          "--set", "gateway.endpoint=tcp://127.0.0.1:*", "--set", c.set},
                         15s);
    BOOST_TEST(rc == 2, c.set << " -> " << rc << " " << out);
    BOOST_TEST(out.find(c.key) != std::string::npos, c.set << ": " << out);
  }
}

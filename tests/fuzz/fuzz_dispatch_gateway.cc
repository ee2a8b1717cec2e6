// The gateway's HTTP surface with its real handlers: each input is the
// bytes of one client connection (request line, headers, body, maybe more
// requests), sent over loopback TCP to the gateway's own HTTP front, then
// cpp-httplib's parser, the gateway's authentication (most inputs carry a
// valid API token, so the routes run) and its REST, SSE and login routes.
// The services behind it are unreachable: a route that asks one answers
// 503 after a 10 ms timeout. A response that is not HTTP, or a 500 (an
// exception that escaped a handler), aborts.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include <fuzzer/FuzzedDataProvider.h>
#include <httplib.h>

#include "api.h"
#include "auth.h"
#include "backends.h"
#include "event_hub.h"
#include "http_server.h"
#include "job_cache.h"
#include "options.h"
#include "sessions.h"
#include "tokens.h"
#include "util/config.h"

using namespace trainyard;
using namespace trainyard::gateway;

namespace {

[[noreturn]] void die(const std::string& why) {
  std::fprintf(stderr, "gateway harness: %s\n", why.c_str());
  std::abort();
}

class Gateway {
 public:
  Gateway() {
    char tmpl[] = "/tmp/ty-fuzz-gw-XXXXXX";
    if (!mkdtemp(tmpl)) die("mkdtemp failed");
    dir_ = tmpl;
    auto config = Config::load("", {"security.mode=none", "gateway.rpc_timeout_ms=10", "gateway.rpc_tries=1",
                                    "gateway.threads=8", "gateway.request_deadline_ms=2000",
                                    "gateway.admins=[\"root\"]", "scheduler.endpoint=ipc://" + dir_ + "/none-s",
                                    "broker.endpoint=ipc://" + dir_ + "/none-b",
                                    "metrics.endpoint=ipc://" + dir_ + "/none-m",
                                    "billing.endpoint=ipc://" + dir_ + "/none-c", "gateway.listen=127.0.0.1:0",
                                    "gateway.web_root=" + dir_ + "/web"});
    if (!config) die(config.status().message());
    auto o = GatewayOptions::from_config(*config);
    if (!o) die(o.status().message());
    options_ = std::move(o).value();
    auto store = storage::Store::open(dir_ + "/data", storage::Options{{TokenStore::kFamily}, {}, {}});
    if (!store) die(store.status().message());
    store_ = std::move(store).value();
    tokens_ = std::make_unique<TokenStore>(*store_);
    storage::Batch batch;
    // A user's token and an admin's: most inputs act as one of them.
    user_token_ = tokens_->create(batch, "alice", "fuzz", 0, 0).second;
    admin_token_ = tokens_->create(batch, "root", "fuzz", 0, 0).second;
    if (auto s = store_->commit(batch); !s) die(s.message());
    sessions_ = std::make_unique<Sessions>(60'000);
    auth_ = std::make_unique<Auth>(*tokens_, *sessions_, options_.auth);
    backends_ = std::make_unique<Backends>(ctx_, options_.backends);
    jobs_ = std::make_unique<JobCache>(*backends_);
    api_ = std::make_unique<Api>(*backends_, hub_, *jobs_, options_.api);
    server_ = std::make_unique<HttpServer>(options_.http);
    install_gateway(*server_, *auth_, *api_);  // as the binary does
    port_ = server_->bind_to_any_port("127.0.0.1");
    if (port_ <= 0) die("cannot listen on 127.0.0.1");
    thread_ = std::thread([this] { server_->listen_after_bind(); });
    for (int i = 0; i < 5000 && !server_->is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~Gateway() {
    hub_.stop();
    server_->stop();
    thread_.join();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  const std::string& user_token() const { return user_token_; }
  const std::string& admin_token() const { return admin_token_; }

  // Sends `bytes` on a new connection, closes the sending side and reads
  // what comes back until the gateway closes (or 3 s pass).
  std::string exchange(const std::string& bytes) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port_));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0) die(std::string("cannot open a socket: ") + std::strerror(errno));
    connect_to(fd, a);
    size_t sent = 0;
    while (sent < bytes.size()) {
      ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;  // the gateway may refuse and close early (413, 431)
      sent += static_cast<size_t>(n);
    }
    ::shutdown(fd, SHUT_WR);
    std::string out;
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    char buf[16384];
    while (std::chrono::steady_clock::now() < until) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
      if (out.size() > (8u << 20)) break;
    }
    // An abortive close (RST): 20,000 exchanges would otherwise leave as
    // many sockets in TIME_WAIT, and a second run within a minute ran out of
    // loopback ports ("cannot connect" at execution 19,834).
    linger abort_on_close{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof abort_on_close);
    ::close(fd);
    return out;
  }

 private:
  // libFuzzer's -timeout runs on SIGALRM, which interrupts a blocking
  // connect (EINTR, seen in CI): the connection then completes on its own,
  // so wait for it instead of failing.
  static void connect_to(int fd, const sockaddr_in& a) {
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0) return;
    if (errno != EINTR && errno != EINPROGRESS) die(std::string("cannot connect: ") + std::strerror(errno));
    pollfd p{fd, POLLOUT, 0};
    while (::poll(&p, 1, 3000) < 0 && errno == EINTR) {
    }
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
      die(std::string("cannot connect: ") + std::strerror(err != 0 ? err : errno));
    }
  }

  std::string dir_;
  GatewayOptions options_;
  std::unique_ptr<storage::Store> store_;
  std::unique_ptr<TokenStore> tokens_;
  std::string user_token_, admin_token_;
  std::unique_ptr<Sessions> sessions_;
  std::unique_ptr<Auth> auth_;
  zmq::context_t ctx_{1};
  std::unique_ptr<Backends> backends_;
  EventHub hub_;
  std::unique_ptr<JobCache> jobs_;
  std::unique_ptr<Api> api_;
  std::unique_ptr<HttpServer> server_;
  std::thread thread_;
  int port_ = 0;
};

const char* const kPaths[] = {"/api/v1/cluster", "/api/v1/nodes", "/api/v1/jobs", "/api/v1/jobs/1",
                              "/api/v1/jobs/1/cancel", "/api/v1/jobs/1/hold", "/api/v1/jobs/1/logs",
                              "/api/v1/jobs/1/metrics", "/api/v1/jobs/1/series", "/api/v1/experiments",
                              "/api/v1/experiments/x", "/api/v1/experiments/x/compare", "/api/v1/usage",
                              "/api/v1/accounts", "/api/v1/accounts/a/invoice", "/api/v1/events/recent",
                              "/api/v1/cloud", "/api/v1/session", "/metrics", "/healthz", "/login", "/logout"};
const char* const kMethods[] = {"GET", "POST", "DELETE", "PUT", "OPTIONS", "HEAD"};

// A request as a client could write it, from the fuzzer's bytes: a method,
// a known route with a fuzzed tail and query, a token (mostly valid),
// fuzzed headers and a body.
std::string build_request(FuzzedDataProvider& in, const Gateway& gw) {
  std::string method = in.PickValueInArray(kMethods);
  std::string path = in.PickValueInArray(kPaths);
  path += in.ConsumeRandomLengthString(64);
  std::string r = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  switch (in.ConsumeIntegralInRange<int>(0, 3)) {
    case 0: r += "Authorization: Bearer " + gw.user_token() + "\r\n"; break;
    case 1: r += "Authorization: Bearer " + gw.admin_token() + "\r\n"; break;
    case 2: r += "Authorization: Bearer " + in.ConsumeRandomLengthString(64) + "\r\n"; break;
    default: break;
  }
  int headers = in.ConsumeIntegralInRange<int>(0, 4);
  for (int i = 0; i < headers; ++i) r += in.ConsumeRandomLengthString(128) + "\r\n";
  std::string body = in.ConsumeRandomLengthString(4096);
  if (method == "POST" || method == "PUT") r += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  r += "Connection: close\r\n\r\n";
  return r + body;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Gateway gw;
  FuzzedDataProvider in(data, size);
  std::string bytes = in.ConsumeBool() ? in.ConsumeRemainingBytesAsString() : build_request(in, gw);
  std::string reply = gw.exchange(bytes);
  if (reply.empty()) return 0;  // closed without an answer (a head never completed)
  if (reply.rfind("HTTP/1.1 ", 0) != 0 || reply.size() < 12) die("not an HTTP response: " + reply.substr(0, 80));
  int status = std::atoi(reply.c_str() + 9);
  if (status < 100 || status > 599) die("a bad status line: " + reply.substr(0, 80));
  if (std::getenv("TY_FUZZ_VERBOSE")) std::fprintf(stderr, "%d %s\n", status, bytes.substr(0, bytes.find('\r')).c_str());
  if (status == 500) die("500 (an exception escaped a handler) for:\n" + bytes.substr(0, 2000) + "\n" + reply.substr(0, 2000));
  return 0;
}

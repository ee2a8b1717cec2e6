// The gateway's HTTP server: cpp-httplib's request handling behind a front
// that slow or greedy clients cannot stall. One thread reads the request
// head of every connection without blocking (poll), so a client that sends a
// byte a second holds a socket, not a worker; a head not complete within the
// request deadline gets 408 and the connection is closed. Complete requests
// go to a fixed pool of workers through a bounded queue; when it is full the
// connection gets 503 at once instead of waiting. A worker reads the body
// (within the same deadline), runs the handler and, on keep-alive, hands the
// connection back to the head reader.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include <httplib.h>

namespace trainyard::gateway {

struct HttpServerOptions {
  size_t threads = 32;                    // workers (each open SSE stream holds one)
  size_t max_queued = 64;                 // complete requests waiting for a worker; more get 503
  int64_t request_deadline_ms = 30'000;   // from connection (or first byte) to the whole request read
  int64_t keep_alive_ms = 5'000;          // an idle keep-alive connection is closed after this
  size_t max_head_bytes = 64 * 1024;      // request line and headers; more get 431
  size_t max_connections = 10'000;        // connections waiting for their head; more get 503
};

// What the front has refused, for /metrics and tests.
struct HttpServerCounters {
  std::atomic<uint64_t> timed_out{0};      // 408: the request was not read within the deadline
  std::atomic<uint64_t> rejected_busy{0};  // 503: the queue or the connection table was full
  std::atomic<uint64_t> head_too_large{0}; // 431
};

class HttpServer : public httplib::Server {
 public:
  explicit HttpServer(HttpServerOptions options);
  ~HttpServer() override;

  const HttpServerCounters& counters() const { return counters_; }

  // After bind_to_port: a listen backlog of `backlog` instead of httplib's 5,
  // so that bursts of new connections are not made to retry their SYN.
  void widen_backlog(int backlog = 1024);

  class Front;  // the head reader and the worker pool (http_server.cc)

 private:
  // httplib calls this on its accept thread (through an inline task queue)
  // for every new connection: it only hands the socket to the head reader.
  bool process_and_close_socket(socket_t sock) override;

  friend class Front;
  // One request on a connection whose head is (at least partly) in `buffered`.
  // Returns the bytes read past this request when the connection stays open.
  bool serve_one(int fd, std::string& buffered, int64_t deadline_ms, bool last);

  HttpServerOptions options_;
  HttpServerCounters counters_;
  std::unique_ptr<Front> front_;
};

}  // namespace trainyard::gateway

#include "http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

#include "core/api_error.h"
#include "util/clock.h"

namespace trainyard::gateway {

namespace {

bool wait_fd(int fd, short events, int64_t timeout_ms) {
  pollfd p{fd, events, 0};
  for (;;) {
    int n = ::poll(&p, 1, static_cast<int>(std::clamp<int64_t>(timeout_ms, 0, 600'000)));
    if (n < 0 && errno == EINTR) continue;
    return n > 0 && (p.revents & (events | POLLHUP | POLLERR));
  }
}

void close_fd(int fd) {
  ::shutdown(fd, SHUT_RDWR);
  ::close(fd);
}

bool address_of(int fd, bool peer, std::string& ip, int& port) {
  sockaddr_storage a{};
  socklen_t len = sizeof a;
  int rc = peer ? ::getpeername(fd, reinterpret_cast<sockaddr*>(&a), &len)
                : ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  if (rc != 0) return false;
  char buf[INET6_ADDRSTRLEN] = {};
  if (a.ss_family == AF_INET) {
    auto* v4 = reinterpret_cast<sockaddr_in*>(&a);
    inet_ntop(AF_INET, &v4->sin_addr, buf, sizeof buf);
    port = ntohs(v4->sin_port);
  } else if (a.ss_family == AF_INET6) {
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&a);
    inet_ntop(AF_INET6, &v6->sin6_addr, buf, sizeof buf);
    port = ntohs(v6->sin6_port);
  } else {
    return false;
  }
  ip = buf;
  if (ip.rfind("::ffff:", 0) == 0 && ip.find('.') != std::string::npos) ip = ip.substr(7);
  return true;
}

// A connection as httplib's request parser reads it: first the bytes the head
// reader already took, then the socket, never past the request deadline.
class DeadlineStream : public httplib::Stream {
 public:
  DeadlineStream(int fd, std::string buffered, int64_t deadline_ms, int64_t read_timeout_ms, int64_t write_timeout_ms)
      : fd_(fd), buf_(std::move(buffered)), deadline_ms_(deadline_ms), read_timeout_ms_(read_timeout_ms),
        write_timeout_ms_(write_timeout_ms) {}

  bool is_readable() const override { return pos_ < buf_.size() || wait_readable(); }
  bool is_writable() const override { return wait_fd(fd_, POLLOUT, write_timeout_ms_); }

  ssize_t read(char* ptr, size_t size) override {
    if (pos_ >= buf_.size()) {
      if (!wait_readable()) return -1;
      buf_.resize(16 * 1024);
      pos_ = 0;
      ssize_t n;
      do {
        n = ::recv(fd_, buf_.data(), buf_.size(), 0);
      } while (n < 0 && errno == EINTR);
      buf_.resize(n > 0 ? static_cast<size_t>(n) : 0);
      if (n <= 0) return n < 0 ? -1 : 0;
    }
    size_t n = std::min(size, buf_.size() - pos_);
    std::memcpy(ptr, buf_.data() + pos_, n);
    pos_ += n;
    return static_cast<ssize_t>(n);
  }

  ssize_t write(const char* ptr, size_t size) override {
    if (!is_writable()) return -1;
    ssize_t n;
    do {
      n = ::send(fd_, ptr, size, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    return n;
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override { address_of(fd_, true, ip, port); }
  void get_local_ip_and_port(std::string& ip, int& port) const override { address_of(fd_, false, ip, port); }
  socket_t socket() const override { return fd_; }

  // What was read past the request (a pipelined next one).
  std::string take_unread() { return pos_ < buf_.size() ? buf_.substr(pos_) : std::string(); }

 private:
  // Waits for input up to the per-read timeout, but never past the deadline.
  bool wait_readable() const {
    int64_t left = deadline_ms_ - monotonic_ms();
    if (left <= 0) return false;
    return wait_fd(fd_, POLLIN, std::min(left, read_timeout_ms_));
  }

  int fd_;
  std::string buf_;
  size_t pos_ = 0;
  int64_t deadline_ms_, read_timeout_ms_, write_timeout_ms_;
};

bool head_complete(const std::string& buf) {
  return buf.find("\r\n\r\n") != std::string::npos || buf.find("\n\n") != std::string::npos;
}

// A short answer written without waiting (the socket's send buffer holds it),
// then the connection is closed.
void refuse(int fd, int status, const char* reason, const std::string& code, const std::string& message) {
  std::string body = ApiError{status, message, "", "gateway", code}.body().dump(-1, ' ', false,
                                                                                  nlohmann::json::error_handler_t::replace);
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + reason +
                    "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
                    "\r\nConnection: close\r\n" + (status == 503 ? "Retry-After: 1\r\n" : "") + "\r\n" + body;
  (void)::send(fd, out.data(), out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  ::shutdown(fd, SHUT_WR);
  ::close(fd);
}

}  // namespace

class HttpServer::Front {
 public:
  explicit Front(HttpServer& server) : server_(server), options_(server.options_) {}
  ~Front() { stop(); }

  void start();
  void stop();
  void admit(int fd);

 private:
  struct Conn {
    int fd = -1;
    std::string buf;
    int64_t deadline_ms = 0;
    bool idle = false;  // a keep-alive connection waiting for its next request
    size_t served = 0;
  };
  enum class Outcome { kWaiting, kReady, kClosed, kTooLarge };

  void run_reader();
  Outcome read_more(Conn& c, int64_t now);
  void finish(Conn c, Outcome o);
  void dispatch(Conn c);
  void hand_back(Conn c);
  void run_worker();
  void serve(Conn c);

  HttpServer& server_;
  const HttpServerOptions options_;
  std::atomic<bool> stopping_{false};
  bool started_ = false;
  int wake_[2] = {-1, -1};
  std::atomic<size_t> waiting_{0};  // connections the head reader holds

  std::mutex in_mu_;
  std::vector<Conn> incoming_;  // new and handed-back connections
  std::vector<Conn> conns_;     // the head reader's own
  std::thread reader_;

  std::mutex q_mu_;
  std::condition_variable q_cv_;
  std::deque<Conn> queue_;  // complete requests waiting for a worker
  size_t idle_ = 0;         // workers waiting for one
  std::vector<std::thread> workers_;
};

void HttpServer::Front::start() {
  if (started_) return;
  started_ = true;
  if (::pipe2(wake_, O_NONBLOCK | O_CLOEXEC) != 0) throw std::runtime_error("gateway: cannot make a wake pipe");
  reader_ = std::thread([this] { run_reader(); });
  for (size_t i = 0; i < options_.threads; ++i) workers_.emplace_back([this] { run_worker(); });
}

void HttpServer::Front::stop() {
  if (!started_ || stopping_.exchange(true)) return;
  (void)!::write(wake_[1], "x", 1);
  {
    std::lock_guard lock(q_mu_);  // a worker between its check and its wait sees the flag
  }
  q_cv_.notify_all();
  if (reader_.joinable()) reader_.join();
  for (auto& t : workers_) t.join();
  for (auto& c : queue_) close_fd(c.fd);
  for (auto& c : incoming_) close_fd(c.fd);
  queue_.clear();
  incoming_.clear();
  ::close(wake_[0]);
  ::close(wake_[1]);
}

void HttpServer::Front::admit(int fd) {
  if (stopping_ || waiting_ >= options_.max_connections) {
    ++server_.counters_.rejected_busy;
    return refuse(fd, 503, "Service Unavailable", "Unavailable",
                  "the gateway holds too many connections that have not sent a request; try again later");
  }
  hand_back(Conn{fd, "", monotonic_ms() + options_.request_deadline_ms, false, 0});
}

void HttpServer::Front::hand_back(Conn c) {
  ++waiting_;
  {
    std::lock_guard lock(in_mu_);
    incoming_.push_back(std::move(c));
  }
  (void)!::write(wake_[1], "x", 1);
}

void HttpServer::Front::dispatch(Conn c) {
  --waiting_;
  {
    std::lock_guard lock(q_mu_);
    // Idle workers take a request at once; only the rest wait in the queue.
    if (queue_.size() < options_.max_queued + idle_ && !stopping_) {
      queue_.push_back(std::move(c));
      q_cv_.notify_one();
      return;
    }
  }
  ++server_.counters_.rejected_busy;
  refuse(c.fd, 503, "Service Unavailable", "Unavailable",
         "the gateway is busy: every worker is taken and " + std::to_string(options_.max_queued) +
             " requests are waiting (gateway.max_queued); try again shortly");
}

HttpServer::Front::Outcome HttpServer::Front::read_more(Conn& c, int64_t now) {
  char tmp[16 * 1024];
  for (;;) {
    ssize_t n = ::recv(c.fd, tmp, sizeof tmp, MSG_DONTWAIT);
    if (n > 0) {
      if (c.idle) {  // the next request of a keep-alive connection starts now
        c.idle = false;
        c.deadline_ms = now + options_.request_deadline_ms;
      }
      c.buf.append(tmp, static_cast<size_t>(n));
      if (head_complete(c.buf)) return Outcome::kReady;
      if (c.buf.size() > options_.max_head_bytes) return Outcome::kTooLarge;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return Outcome::kWaiting;
    return Outcome::kClosed;
  }
}

void HttpServer::Front::run_reader() {
  std::vector<pollfd> fds;
  while (!stopping_) {
    {
      std::lock_guard lock(in_mu_);
      for (auto& c : incoming_) conns_.push_back(std::move(c));
      incoming_.clear();
    }
    int64_t now = monotonic_ms();
    fds.assign(1, pollfd{wake_[0], POLLIN, 0});
    int64_t wait = 200;
    for (size_t i = 0; i < conns_.size();) {
      if (head_complete(conns_[i].buf)) {  // a pipelined request handed back whole
        dispatch(std::move(conns_[i]));
        conns_[i] = std::move(conns_.back());
        conns_.pop_back();
        continue;
      }
      fds.push_back(pollfd{conns_[i].fd, POLLIN, 0});
      wait = std::min(wait, std::max<int64_t>(0, conns_[i].deadline_ms - now));
      ++i;
    }
    if (::poll(fds.data(), fds.size(), static_cast<int>(wait)) < 0 && errno != EINTR) {
      spdlog::error("http: poll failed: {}", std::strerror(errno));
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    char drain[64];
    while (::read(wake_[0], drain, sizeof drain) > 0) {
    }
    now = monotonic_ms();
    // Backwards, so that moving the last one into a freed place skips nothing.
    for (size_t i = conns_.size(); i-- > 0;) {
      Conn& c = conns_[i];
      Outcome o = Outcome::kWaiting;
      if (fds[i + 1].revents) o = read_more(c, now);
      if (o == Outcome::kWaiting && now < c.deadline_ms) continue;
      finish(std::move(c), o);
      conns_[i] = std::move(conns_.back());
      conns_.pop_back();
    }
  }
  for (auto& c : conns_) close_fd(c.fd);
  conns_.clear();
}

// A connection leaves the head reader: to a worker, or closed (with 431 or
// 408 when that is why).
void HttpServer::Front::finish(Conn c, Outcome o) {
  if (o == Outcome::kReady) return dispatch(std::move(c));
  --waiting_;
  if (o == Outcome::kTooLarge) {
    ++server_.counters_.head_too_large;
    refuse(c.fd, 431, "Request Header Fields Too Large", "InvalidArgument",
           "the request line and headers exceed " + std::to_string(options_.max_head_bytes) + " bytes");
  } else if (o == Outcome::kWaiting && !c.idle) {
    ++server_.counters_.timed_out;
    refuse(c.fd, 408, "Request Timeout", "DeadlineExceeded",
           "the request was not received within " + std::to_string(options_.request_deadline_ms) +
               " ms (gateway.request_deadline_ms); send it whole, then wait for the answer");
  } else {
    close_fd(c.fd);  // the client went away, or an idle keep-alive connection timed out
  }
}

void HttpServer::Front::run_worker() {
  for (;;) {
    Conn c;
    {
      std::unique_lock lock(q_mu_);
      ++idle_;
      q_cv_.wait(lock, [&] { return !queue_.empty() || stopping_; });
      --idle_;
      if (stopping_) return;
      c = std::move(queue_.front());
      queue_.pop_front();
    }
    serve(std::move(c));
  }
}

void HttpServer::Front::serve(Conn c) {
  bool last = c.served + 1 >= server_.keep_alive_max_count_ || stopping_;
  bool keep = false;
  try {
    keep = server_.serve_one(c.fd, c.buf, c.deadline_ms, last);
  } catch (const std::exception& e) {
    // A content provider (an SSE stream) threw after the handler returned.
    spdlog::error("http: a request failed while answering: {}", e.what());
  } catch (...) {
    spdlog::error("http: a request failed while answering");
  }
  if (!keep || stopping_) return close_fd(c.fd);
  ++c.served;
  c.idle = c.buf.empty();
  c.deadline_ms = monotonic_ms() + (c.idle ? options_.keep_alive_ms : options_.request_deadline_ms);
  hand_back(std::move(c));
}

namespace {

// httplib's accept loop hands each connection to a task queue; this one runs
// the task at once on that thread, and the task only passes the socket on.
class InlineQueue : public httplib::TaskQueue {
 public:
  explicit InlineQueue(std::function<void()> on_shutdown) : on_shutdown_(std::move(on_shutdown)) {}
  void enqueue(std::function<void()> fn) override { fn(); }
  void shutdown() override { on_shutdown_(); }

 private:
  std::function<void()> on_shutdown_;
};

}  // namespace

HttpServer::HttpServer(HttpServerOptions options) : options_(options), front_(std::make_unique<Front>(*this)) {
  // SO_REUSEADDR, as ZeroMQ binds the services' ports, instead of httplib's
  // SO_REUSEPORT: a restarted gateway binds past the TIME_WAIT sockets its
  // closed connections leave (and so does `ty local up`'s free-port check),
  // while a second gateway on a port one listens on is refused instead of
  // sharing its connections.
  set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  new_task_queue = [this]() -> httplib::TaskQueue* {
    front_->start();
    return new InlineQueue([this] { front_->stop(); });
  };
}

HttpServer::~HttpServer() { front_->stop(); }

void HttpServer::widen_backlog(int backlog) {
  if (svr_sock_ != INVALID_SOCKET) ::listen(svr_sock_, backlog);  // Linux updates the backlog of a listening socket
}

bool HttpServer::process_and_close_socket(socket_t sock) {
  front_->admit(sock);
  return true;
}

bool HttpServer::serve_one(int fd, std::string& buffered, int64_t deadline_ms, bool last) {
  DeadlineStream strm(fd, std::move(buffered), deadline_ms, read_timeout_sec_ * 1000 + read_timeout_usec_ / 1000,
                      write_timeout_sec_ * 1000 + write_timeout_usec_ / 1000);
  bool closed = false;
  bool ok = process_request(strm, last, closed, nullptr);
  buffered = strm.take_unread();
  return ok && !closed && !last && svr_sock_ != INVALID_SOCKET;
}

}  // namespace trainyard::gateway

// An interactive session (ty run --pty, srun --pty, salloc): waits for the
// job to start, puts this terminal in raw mode and relays it to the job's
// pseudo-terminal through its node's agent (TerminalIo): keystrokes go as
// typed (^C included, which the job's terminal turns into SIGINT), the
// window size follows SIGWINCH, and the session ends with the job.
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <iostream>
#include <thread>

#include "srun.h"

namespace trainyard::ty {
namespace {

std::atomic<bool> g_resized{true};
std::atomic<int> g_stop{0};  // SIGHUP/SIGTERM/SIGINT (while waiting): end the session

void on_winch(int) { g_resized = true; }
void on_stop(int sig) { g_stop = sig; }

// This terminal in raw mode for as long as the session lasts.
class RawMode {
 public:
  RawMode() {
    if (!::isatty(0) || ::tcgetattr(0, &saved_) != 0) return;
    termios raw = saved_;
    ::cfmakeraw(&raw);
    active_ = ::tcsetattr(0, TCSANOW, &raw) == 0;
  }
  ~RawMode() {
    if (active_) ::tcsetattr(0, TCSANOW, &saved_);
  }
  RawMode(const RawMode&) = delete;
  RawMode& operator=(const RawMode&) = delete;

 private:
  termios saved_{};
  bool active_ = false;
};

void write_all(int fd, const uint8_t* data, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, data, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    data += w;
    n -= static_cast<size_t>(w);
  }
}

// Waits until the job runs; its first node. Ctrl-C while waiting cancels it.
Result<std::string> wait_for_start(client::Client& c, uint64_t id) {
  bool said = false;
  for (int64_t waited_ms = 0;; waited_ms += 200) {
    auto rec = c.status(id);
    if (!rec) return rec.status();
    if (rec->state == fb::JobState::Running && !rec->nodes.empty()) return rec->nodes.front();
    if (client::is_terminal(rec->state)) {
      return Status::failed_precondition("job " + std::to_string(id) + " ended before its session began (" +
                                         fb::EnumNameJobState(rec->state) +
                                         (rec->reason.empty() ? "" : ": " + rec->reason) + ")");
    }
    if (g_stop) {
      (void)c.cancel(id, "the interactive session was interrupted before it began");
      return Status::failed_precondition("job " + std::to_string(id) + " cancelled before it started");
    }
    if (!said && waited_ms >= 1000) {
      said = true;
      std::cerr << "ty: job " << id << " is waiting for resources" << (rec->reason.empty() ? "" : ": " + rec->reason)
                << "\n";
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

struct WindowSize {
  uint16_t rows = 0, cols = 0;
};

WindowSize window_size() {
  winsize ws{};
  for (int fd : {0, 1, 2}) {
    if (::ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0) return {ws.ws_row, ws.ws_col};
  }
  return {};
}

int exit_code_of(const fb::TerminalOutputT& out) {
  return out.signal > 0 ? 128 + out.signal : (out.exit_code >= 0 ? out.exit_code : 1);
}

}  // namespace

int run_terminal(Context& ctx, uint64_t job_id) {
  auto* c = ctx.client();
  if (!c) return kExitUnavailable;
  struct sigaction sa {};
  sa.sa_handler = on_stop;
  for (int s : {SIGINT, SIGTERM, SIGHUP}) ::sigaction(s, &sa, nullptr);
  auto node = wait_for_start(*c, job_id);
  if (!node) return fail(node.status());
  sa.sa_handler = on_winch;
  ::sigaction(SIGWINCH, &sa, nullptr);
  RawMode raw;  // from here ^C is a byte for the job, not a signal for us
  std::string pending;
  uint64_t sent = 0, offset = 0;
  bool stdin_open = true;
  int idle_ms = 10, not_ready = 0;
  while (!g_stop) {
    pollfd in{0, POLLIN, 0};
    if (stdin_open && ::poll(&in, 1, idle_ms) > 0) {
      char buf[4096];
      ssize_t n = ::read(0, buf, sizeof buf);
      if (n > 0) pending.append(buf, static_cast<size_t>(n));
      if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
        stdin_open = false;
        if (!::isatty(0)) pending.push_back('\x04');  // input piped in has ended: ^D, end of file for the job
      }
    } else if (!stdin_open) {
      ::poll(nullptr, 0, idle_ms);
    }
    WindowSize ws = g_resized.exchange(false) ? window_size() : WindowSize{};
    auto out = c->terminal_io(*node, job_id, pending, sent, offset, ws.rows, ws.cols);
    if (!out) {
      // The run may still be starting on its node: its terminal comes with it.
      if (out.status().code() == ErrorCode::NotFound && ++not_ready < 300) {
        if (ws.rows) g_resized = true;
        continue;
      }
      std::cerr << "\r\n";
      return fail(out.status());
    }
    bool typed = !pending.empty();
    sent += pending.size();
    pending.clear();
    write_all(1, out->data.data(), out->data.size());
    offset = out->offset + out->data.size();
    if (out->ended) return exit_code_of(*out);
    // Busy (output came, or keys went and their echo follows): ask again soon;
    // idle: back off to 50 ms between polls.
    idle_ms = out->data.empty() && !typed ? std::min(idle_ms * 2, 50) : 2;
  }
  (void)c->cancel(job_id, "the interactive session's terminal went away");
  return 128 + g_stop;
}

}  // namespace trainyard::ty

#include "terminal.h"

#include <fcntl.h>
#include <pty.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace trainyard::agent {

Result<Terminal::Opened> Terminal::open() {
  int master = -1, slave = -1;
  winsize ws{24, 80, 0, 0};
  if (::openpty(&master, &slave, nullptr, nullptr, &ws) != 0) {
    return Status::internal(std::string("cannot open a pseudo-terminal: ") + std::strerror(errno));
  }
  ::fcntl(master, F_SETFD, FD_CLOEXEC);
  ::fcntl(slave, F_SETFD, FD_CLOEXEC);
  ::fcntl(master, F_SETFL, ::fcntl(master, F_GETFL) | O_NONBLOCK);
  Opened o;
  o.terminal.reset(new Terminal(master));
  o.terminal->rows_ = ws.ws_row;
  o.terminal->cols_ = ws.ws_col;
  o.slave_fd = slave;
  return o;
}

Terminal::~Terminal() {
  close_master();
  if (transcript_ >= 0) ::close(transcript_);
}

void Terminal::record_to(int fd) {
  if (transcript_ >= 0) ::close(transcript_);
  transcript_ = fd;
}

void Terminal::close_master() {
  if (master_ >= 0) ::close(master_);
  master_ = -1;
}

void Terminal::type(std::string_view data, uint64_t input_offset) {
  if (input_offset + data.size() <= input_taken_) return;  // a retry of what came already
  if (input_offset < input_taken_) data.remove_prefix(input_taken_ - input_offset);
  typed_.append(data);
  input_taken_ += data.size();
  pump();
}

void Terminal::resize(uint16_t rows, uint16_t cols) {
  if (master_ < 0 || rows == 0 || cols == 0 || (rows == rows_ && cols == cols_)) return;
  winsize ws{rows, cols, 0, 0};
  if (::ioctl(master_, TIOCSWINSZ, &ws) == 0) {
    rows_ = rows;
    cols_ = cols;
  }
}

void Terminal::pump() {
  if (master_ < 0) return;
  while (!typed_.empty()) {
    ssize_t n = ::write(master_, typed_.data(), typed_.size());
    if (n <= 0) break;  // full (EAGAIN): the rest goes on the next pump
    typed_.erase(0, static_cast<size_t>(n));
  }
  char chunk[16384];
  while (true) {
    ssize_t n = ::read(master_, chunk, sizeof chunk);
    if (n > 0) {
      buf_.append(chunk, static_cast<size_t>(n));
      // A full disk loses the transcript, never the session.
      if (transcript_ >= 0 && ::write(transcript_, chunk, static_cast<size_t>(n)) != n) {
        ::close(transcript_);
        transcript_ = -1;
      }
      continue;
    }
    // EIO: no process holds the slave any more; the job's terminal is gone.
    if (n == 0 || (errno != EAGAIN && errno != EINTR)) close_master();
    if (n < 0 && errno == EINTR) continue;
    break;
  }
  if (buf_.size() > kKeepBytes) {
    size_t drop = buf_.size() - kKeepBytes;
    buf_.erase(0, drop);
    base_ += drop;
  }
}

std::string_view Terminal::output(uint64_t offset, size_t max, uint64_t* start) const {
  uint64_t from = std::max(offset, base_);
  *start = from;
  if (from >= output_end()) return {};
  size_t at = static_cast<size_t>(from - base_);
  return std::string_view(buf_).substr(at, max);
}

}  // namespace trainyard::agent

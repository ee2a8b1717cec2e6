// The pseudo-terminal of an interactive run (spec.pty). The agent opens it
// and keeps the master; the supervisor gets the slave for the job's
// stdin/stdout/stderr and controlling terminal. What the job writes is read
// from the master into a bounded buffer that `ty run --pty` reads by offset
// (TerminalIo); keystrokes and window sizes go the other way.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "util/status.h"

namespace trainyard::agent {

class Terminal {
 public:
  struct Opened;
  // A new pseudo-terminal: the Terminal holds the master, `slave_fd` is for
  // the supervisor (the caller closes it once the supervisor has it).
  static Result<Opened> open();
  ~Terminal();
  Terminal(const Terminal&) = delete;
  Terminal& operator=(const Terminal&) = delete;

  // Types `data`, the input bytes from `input_offset` on; bytes before
  // what this terminal has already taken (a retried call) are skipped.
  void type(std::string_view data, uint64_t input_offset);
  // Appends every byte the job writes to `fd` from now on (the run's stdout
  // file, so `ty logs` shows a session as it shows a batch job); owns it.
  void record_to(int fd);
  // Sets the window size when it changed (the job gets SIGWINCH).
  void resize(uint16_t rows, uint16_t cols);
  // Reads what the job wrote (and writes typed bytes the terminal could not
  // take yet). Never blocks.
  void pump();
  // Output from `offset` (at most `max` bytes); `*start` is where it starts,
  // later than `offset` when older output was dropped from the buffer.
  std::string_view output(uint64_t offset, size_t max, uint64_t* start) const;
  uint64_t output_end() const { return base_ + buf_.size(); }
  // The job's side is closed (every process holding the slave has ended).
  bool closed() const { return master_ < 0; }

  static constexpr size_t kKeepBytes = 1 << 20;  // output kept for a reader that lags

 private:
  explicit Terminal(int master) : master_(master) {}
  void close_master();

  int master_ = -1;
  int transcript_ = -1;       // the run's stdout file, or -1
  std::string buf_;           // output not yet dropped
  uint64_t base_ = 0;         // offset of buf_[0]
  std::string typed_;         // input the terminal has not taken yet
  uint64_t input_taken_ = 0;  // input bytes accepted so far
  uint16_t rows_ = 0, cols_ = 0;
};

struct Terminal::Opened {
  std::unique_ptr<Terminal> terminal;
  int slave_fd = -1;
};

}  // namespace trainyard::agent

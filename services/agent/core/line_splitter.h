// Splits a growing file (the job's metrics file) into lines as it is read in
// chunks, remembering where a restart must resume, and skipping lines longer
// than a limit without ever holding more than the limit in memory. Pure.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace trainyard::agent {

class LineSplitter {
 public:
  using OnLine = std::function<void(std::string_view line, uint64_t offset)>;
  using OnTooLong = std::function<void(uint64_t offset)>;

  // Resumes at `consumed` (a line start, or inside a too-long line when
  // `skipping`), as returned by consumed()/skipping() before a restart.
  explicit LineSplitter(size_t max_line, uint64_t consumed = 0, bool skipping = false)
      : max_line_(max_line), consumed_(consumed), skipping_(skipping) {}

  // Takes the next bytes of the file (read at next_read()). Calls on_line for
  // each complete line (newline excluded) and on_too_long once for each line
  // over the limit.
  void feed(std::string_view bytes, const OnLine& on_line, const OnTooLong& on_too_long);
  // The writer is gone: a last line without its newline is a line too.
  void finish(const OnLine& on_line, const OnTooLong& on_too_long);

  // File offset of the next byte to read.
  uint64_t next_read() const { return consumed_ + partial_.size(); }
  // File offset up to which every byte has been handed out or skipped.
  uint64_t consumed() const { return consumed_; }
  bool skipping() const { return skipping_; }

 private:
  size_t max_line_;
  uint64_t consumed_;
  bool skipping_;
  std::string partial_;
};

}  // namespace trainyard::agent

// Time as an input: cores take a Clock so tests and the trace simulator can
// run them on virtual time while production uses the system clock.
#pragma once

#include <chrono>
#include <cstdint>

namespace trainyard {

class Clock {
 public:
  virtual ~Clock() = default;
  // Nanoseconds since the Unix epoch.
  virtual int64_t now_ns() const = 0;
  int64_t now_ms() const { return now_ns() / 1'000'000; }
};

class SystemClock final : public Clock {
 public:
  int64_t now_ns() const override {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

// A clock that moves only when told to (tests, simulator).
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t start_ns = 0) : now_(start_ns) {}
  int64_t now_ns() const override { return now_; }
  void set_ns(int64_t t) { now_ = t; }
  void advance_ns(int64_t d) { now_ += d; }
  void advance_s(double s) { now_ += static_cast<int64_t>(s * 1e9); }

 private:
  int64_t now_;
};

// Monotonic milliseconds for timeouts (never goes back, unlike wall time).
inline int64_t monotonic_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace trainyard

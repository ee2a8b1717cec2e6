// Runs cloud drivers off the broker's loop. A driver is a program: one JSON
// request on its stdin, one JSON reply on its stdout (docs/cloud.md). Each
// call runs in a worker thread of its own; the answers queue up and the
// loop picks them up when the notify descriptor becomes readable.
#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/status.h"

namespace trainyard::broker {

struct DriverReply {
  uint64_t tag = 0;            // the caller's, echoed
  Result<nlohmann::json> reply = Status::internal("no reply");
  int64_t elapsed_ms = 0;
};

// Runs `argv` with `request` on stdin and parses its stdout as JSON.
// Unavailable when it cannot start, times out (killed) or exits non-zero
// without a JSON reply; InvalidArgument when the reply is not JSON.
Result<nlohmann::json> run_driver(const std::vector<std::string>& argv, const nlohmann::json& request,
                                  int64_t timeout_ms);

class DriverRunner {
 public:
  explicit DriverRunner(int64_t timeout_ms);
  ~DriverRunner();  // waits for calls under way (each bounded by the timeout)
  DriverRunner(const DriverRunner&) = delete;
  DriverRunner& operator=(const DriverRunner&) = delete;

  // Starts the call now in a worker thread.
  void call(uint64_t tag, std::vector<std::string> argv, nlohmann::json request);
  // Queues `reply` as the answer to `tag` without running anything: a call
  // the broker could not even make (answered on the loop like the others).
  void answer(uint64_t tag, Result<nlohmann::json> reply);
  // Readable when replies are waiting (for Runtime::watch_fd).
  int notify_fd() const { return pipe_[0]; }
  // Replies that arrived, oldest first (drains the notify descriptor).
  std::vector<DriverReply> take();
  size_t in_flight() const;

 private:
  int64_t timeout_ms_;
  int pipe_[2] = {-1, -1};
  mutable std::mutex mu_;
  std::deque<DriverReply> done_;
  std::vector<std::thread> workers_;
  size_t running_ = 0;
};

}  // namespace trainyard::broker

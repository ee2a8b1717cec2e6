// A service's single-threaded event loop: polls its sockets, runs its
// timers, commits everything the iteration changed in ONE WriteBatch (group
// commit), and only then runs the post-commit actions that make changes
// visible (publishing events, sending replies). Stops on SIGTERM/SIGINT.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "storage/store.h"

namespace trainyard {

// Blocks SIGTERM, SIGINT and SIGHUP in the calling thread (call first thing
// in main, before any thread starts) so the loop receives them through a
// signalfd. Children must call unblock_signals() after fork.
void block_termination_signals();
void unblock_signals();

// A store read failed where no one can be answered (applying a bus event,
// ingesting rows): stops the process as a failed commit does, since state
// derived from that read would be wrong, and the unacknowledged event is
// applied again after the restart.
[[noreturn]] void abort_on_failed_read(const Status& why);

template <typename T>
T read_or_abort(Result<T> r) {
  if (!r) abort_on_failed_read(r.status());
  return std::move(r).value();
}
inline void read_or_abort(const Status& s) {
  if (!s) abort_on_failed_read(s);
}

class Runtime {
 public:
  // `store` may be null for a process without state.
  explicit Runtime(storage::Store* store);
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  // Calls on_readable when the socket has input. Safe to call from inside
  // a handler (the new watch takes effect from the next poll).
  void watch(zmq::socket_t& socket, std::function<void()> on_readable);
  // Stops watching the socket (before it is closed). Safe from inside a
  // handler: the socket is not polled again and its handler not called.
  void unwatch(zmq::socket_t& socket);
  void watch_fd(int fd, std::function<void()> on_readable);
  // Runs fn every period_ms (first run after one period). Safe from inside
  // a handler too.
  void every(int64_t period_ms, std::function<void()> fn);
  // Runs fn just before each iteration's commit (last writes into the batch).
  void before_commit(std::function<void()> fn);
  // Runs fn after each iteration's commit.
  void after_commit(std::function<void()> fn);
  // Runs fn every iteration after the socket handlers; while it returns true
  // (more work waiting) the next poll does not wait.
  void each_iteration(std::function<bool()> fn);
  // Runs on SIGHUP (e.g. reload a config file), each in the order added.
  void on_reload(std::function<void()> fn) { on_reload_.push_back(std::move(fn)); }

  // The batch of the iteration under way; handlers add their changes here.
  storage::Batch& batch() { return batch_; }
  // Commits the batch now and runs the post-commit actions (tests, shutdown).
  void commit_now();

  // Runs until stop() or SIGTERM/SIGINT. Returns the signal number (0 if stop()).
  int run();
  // One iteration of run(): waits for input at most max_wait_ms (less when
  // a timer is due), runs what is ready, commits. For harnesses that drive
  // a service in-process (tests/fuzz).
  void run_once(int64_t max_wait_ms);
  void stop() { stopping_ = true; }
  uint64_t iterations() const { return iterations_; }

 private:
  struct Timer {
    int64_t period_ms;
    int64_t next_ms;
    std::function<void()> fn;
  };
  storage::Store* store_;
  storage::Batch batch_;
  // Handlers are shared_ptrs so one can add watches while it runs.
  std::vector<zmq::pollitem_t> items_;
  std::vector<std::shared_ptr<std::function<void()>>> handlers_;
  bool unwatched_ = false;  // some items were unwatched: drop them before the next poll
  void drop_unwatched();
  std::vector<std::shared_ptr<Timer>> timers_;
  std::vector<std::function<void()>> before_commit_;
  std::vector<std::function<void()>> after_commit_;
  std::vector<std::function<bool()>> work_;
  bool more_work_ = false;
  std::vector<std::function<void()>> on_reload_;
  int signal_fd_ = -1;
  int signal_ = 0;
  bool stopping_ = false;
  uint64_t iterations_ = 0;
};

}  // namespace trainyard

#include "util/runtime.h"

#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <stdexcept>

#include <spdlog/spdlog.h>

#include "util/clock.h"

namespace trainyard {
namespace {

// Runs one loop step; an exception it throws is a bug in that step, and must
// not end the process that holds every other job's state. It is logged (at
// most once a second) and the loop goes on.
template <typename F>
auto guarded(const char* what, F&& fn) -> decltype(fn()) {
  static int64_t last_log_ms = 0;
  static uint64_t failures = 0;
  try {
    return fn();
  } catch (const std::exception& e) {
    ++failures;
    int64_t now = monotonic_ms();
    if (now - last_log_ms > 1000) {
      spdlog::error("{} threw, carrying on: {} ({} such failures so far)", what, e.what(), failures);
      last_log_ms = now;
    }
  }
  return decltype(fn())();
}

}  // namespace

void block_termination_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

void unblock_signals() {
  sigset_t set;
  sigemptyset(&set);
  pthread_sigmask(SIG_SETMASK, &set, nullptr);
  signal(SIGPIPE, SIG_DFL);
}

Runtime::Runtime(storage::Store* store) : store_(store) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  signal_fd_ = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (signal_fd_ < 0) throw std::runtime_error("signalfd failed");
  watch_fd(signal_fd_, [this] {
    signalfd_siginfo info;
    while (read(signal_fd_, &info, sizeof info) == sizeof info) {
      if (info.ssi_signo == SIGHUP) {
        for (auto& fn : on_reload_) fn();
      } else {
        signal_ = static_cast<int>(info.ssi_signo);
        stopping_ = true;
      }
    }
  });
}

Runtime::~Runtime() {
  if (signal_fd_ >= 0) close(signal_fd_);
}

void Runtime::watch(zmq::socket_t& socket, std::function<void()> on_readable) {
  items_.push_back(zmq::pollitem_t{static_cast<void*>(socket), 0, ZMQ_POLLIN, 0});
  handlers_.push_back(std::make_shared<std::function<void()>>(std::move(on_readable)));
}

void Runtime::unwatch(zmq::socket_t& socket) {
  // Marked here, removed before the next poll: the handler loop may be
  // walking these vectors by index.
  for (size_t i = 0; i < items_.size(); ++i) {
    if (items_[i].socket != static_cast<void*>(socket)) continue;
    items_[i] = zmq::pollitem_t{nullptr, -1, 0, 0};
    handlers_[i] = nullptr;
    unwatched_ = true;
  }
}

void Runtime::drop_unwatched() {
  size_t kept = 0;
  for (size_t i = 0; i < items_.size(); ++i) {
    if (!handlers_[i]) continue;
    items_[kept] = items_[i];
    handlers_[kept] = std::move(handlers_[i]);
    ++kept;
  }
  items_.resize(kept);
  handlers_.resize(kept);
  unwatched_ = false;
}

void Runtime::watch_fd(int fd, std::function<void()> on_readable) {
  items_.push_back(zmq::pollitem_t{nullptr, fd, ZMQ_POLLIN, 0});
  handlers_.push_back(std::make_shared<std::function<void()>>(std::move(on_readable)));
}

void Runtime::every(int64_t period_ms, std::function<void()> fn) {
  timers_.push_back(std::make_shared<Timer>(Timer{period_ms, monotonic_ms() + period_ms, std::move(fn)}));
}

void Runtime::before_commit(std::function<void()> fn) { before_commit_.push_back(std::move(fn)); }

void Runtime::after_commit(std::function<void()> fn) { after_commit_.push_back(std::move(fn)); }

void Runtime::each_iteration(std::function<bool()> fn) { work_.push_back(std::move(fn)); }

void abort_on_failed_read(const Status& why) {
  spdlog::critical("a store read failed, stopping: {}", why.to_string());
  std::abort();
}

void Runtime::commit_now() {
  for (auto& f : before_commit_) f();
  if (store_ && !batch_.empty()) {
    auto s = store_->commit(batch_);
    if (!s) {
      // The in-memory state is ahead of the disk: the only safe move is to
      // stop and restart from what is durable.
      spdlog::critical("commit failed, stopping: {}", s.to_string());
      std::abort();
    }
  }
  for (auto& f : after_commit_) f();
}

int Runtime::run() {
  while (!stopping_) run_once(1000);
  return signal_;
}

void Runtime::run_once(int64_t max_wait_ms) {
  ++iterations_;
  int64_t now = monotonic_ms();
  int64_t wait = std::max<int64_t>(0, max_wait_ms);
  for (auto& t : timers_) wait = std::min(wait, std::max<int64_t>(0, t->next_ms - now));
  if (more_work_) wait = 0;
  if (unwatched_) drop_unwatched();
  for (auto& item : items_) item.revents = 0;
  zmq::poll(items_.data(), items_.size(), std::chrono::milliseconds(wait));
  size_t n = items_.size();  // watches added by handlers wait for the next poll
  for (size_t i = 0; i < n && !stopping_; ++i) {
    if ((items_[i].revents & ZMQ_POLLIN) && handlers_[i]) {
      auto handler = handlers_[i];
      guarded("a socket handler", [&] { (*handler)(); });
    }
  }
  more_work_ = false;
  for (auto& w : work_) more_work_ |= guarded("an iteration step", [&] { return w(); });
  now = monotonic_ms();
  size_t nt = timers_.size();
  for (size_t i = 0; i < nt; ++i) {
    auto t = timers_[i];
    if (now >= t->next_ms) {
      t->next_ms = now + t->period_ms;
      guarded("a timer", [&] { t->fn(); });
    }
  }
  commit_now();
}

}  // namespace trainyard

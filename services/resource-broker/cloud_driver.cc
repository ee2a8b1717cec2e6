#include "cloud_driver.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <stdexcept>

#include <fmt/format.h>

#include "util/fd_io.h"

extern char** environ;

namespace trainyard::broker {

namespace {

int64_t mono_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// A driver started in a process group of its own, its stdin and stdout piped
// to the broker (the descriptors are ours to close).
struct DriverProcess {
  pid_t pid = 0;
  int stdin_fd = -1;
  int stdout_fd = -1;
};

Result<DriverProcess> spawn_driver(const std::vector<std::string>& argv) {
  int in[2], out[2];
  if (::pipe2(in, O_CLOEXEC) != 0) return Status::unavailable(std::string("pipe: ") + std::strerror(errno));
  if (::pipe2(out, O_CLOEXEC) != 0) {
    ::close(in[0]);
    ::close(in[1]);
    return Status::unavailable(std::string("pipe: ") + std::strerror(errno));
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);  // the loop blocks SIGTERM; the driver must not
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, args[0], &fa, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  ::close(in[0]);
  ::close(out[1]);
  if (rc != 0) {
    ::close(in[1]);
    ::close(out[0]);
    return Status::unavailable(fmt::format("driver {} could not start: {}", argv[0], std::strerror(rc)));
  }
  return DriverProcess{pid, in[1], out[0]};
}

// What the driver prints on `fd` until it closes it (or past 16 MiB);
// nullopt when `timeout_ms` passes first.
std::optional<std::string> read_reply(int fd, int64_t timeout_ms) {
  std::string text;
  int64_t deadline = mono_ms() + timeout_ms;
  char buf[4096];
  for (;;) {
    int64_t left = deadline - mono_ms();
    if (left <= 0) return std::nullopt;
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 1000)));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > (16u << 20)) break;
  }
  return text;
}

}  // namespace

Result<nlohmann::json> run_driver(const std::vector<std::string>& argv, const nlohmann::json& request,
                                  int64_t timeout_ms) {
  if (argv.empty()) return Status::invalid("the pool's driver is empty: set pools.<name>.driver");
  auto driver = spawn_driver(argv);
  if (!driver) return driver.status();
  // A driver that exits without reading its request answers with what it
  // prints (or nothing): its reply, not this write, is what counts.
  (void)write_all(driver->stdin_fd, request.dump() + "\n");
  ::close(driver->stdin_fd);
  std::optional<std::string> text = read_reply(driver->stdout_fd, timeout_ms);
  ::close(driver->stdout_fd);
  bool timed_out = !text;
  if (timed_out) ::kill(-driver->pid, SIGKILL);
  int status = 0;
  while (::waitpid(driver->pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) return Status::unavailable(fmt::format("driver {} did not answer within {} ms", argv[0], timeout_ms));
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      return Status::unavailable(fmt::format("driver {} failed (status {}) without a JSON reply", argv[0], status));
    }
    return Status::invalid(fmt::format("driver {} replied with something that is not a JSON object: {:.200}", argv[0],
                                       *text));
  }
  return j;
}

DriverRunner::DriverRunner(int64_t timeout_ms) : timeout_ms_(timeout_ms) {
  if (::pipe2(pipe_, O_CLOEXEC | O_NONBLOCK) != 0) throw std::runtime_error("DriverRunner: pipe failed");
}

DriverRunner::~DriverRunner() {
  for (auto& t : workers_) {
    if (t.joinable()) t.join();
  }
  ::close(pipe_[0]);
  ::close(pipe_[1]);
}

void DriverRunner::call(uint64_t tag, std::vector<std::string> argv, nlohmann::json request) {
  std::lock_guard lock(mu_);
  ++running_;
  // Finished workers are joined as new ones start, so the list stays short.
  workers_.emplace_back([this, tag, argv = std::move(argv), request = std::move(request)] {
    int64_t start = mono_ms();
    DriverReply r;
    r.tag = tag;
    r.reply = run_driver(argv, request, timeout_ms_);
    r.elapsed_ms = mono_ms() - start;
    {
      std::lock_guard l(mu_);
      done_.push_back(std::move(r));
      --running_;
    }
    char c = 1;
    (void)!::write(pipe_[1], &c, 1);
  });
}

void DriverRunner::answer(uint64_t tag, Result<nlohmann::json> reply) {
  {
    std::lock_guard lock(mu_);
    DriverReply r;
    r.tag = tag;
    r.reply = std::move(reply);
    done_.push_back(std::move(r));
  }
  char c = 1;
  (void)!::write(pipe_[1], &c, 1);
}

std::vector<DriverReply> DriverRunner::take() {
  char buf[256];
  while (::read(pipe_[0], buf, sizeof buf) > 0) {
  }
  std::vector<DriverReply> out;
  std::lock_guard lock(mu_);
  while (!done_.empty()) {
    out.push_back(std::move(done_.front()));
    done_.pop_front();
  }
  if (running_ == 0) {
    // Every worker has pushed its reply: join them now.
    for (auto& t : workers_) {
      if (t.joinable()) t.join();
    }
    workers_.clear();
  }
  return out;
}

size_t DriverRunner::in_flight() const {
  std::lock_guard lock(mu_);
  return running_;
}

}  // namespace trainyard::broker

// What every ty command shares (commands.h): the exit code for a Status,
// the one way to report a failure, and the client built on first use from
// the flags, $TY_CONFIG, ~/.config and a running `ty local`.
#include <cstdlib>
#include <iostream>
#include <optional>

#include "commands.h"

namespace trainyard::ty {

int exit_code(const Status& s) {
  switch (s.code()) {
    case ErrorCode::Ok: return kExitOk;
    case ErrorCode::InvalidArgument: return kExitUsage;
    case ErrorCode::Unavailable: return kExitUnavailable;
    default: return kExitFailed;
  }
}

int fail(const Status& s) {
  std::cerr << "ty: " << s.message();
  if (s.code() == ErrorCode::Unavailable) std::cerr << " (check the endpoint: ty --help lists the flags and config)";
  std::cerr << "\n";
  return exit_code(s);
}

client::Client* Context::client() {
  if (client_) return client_.get();
  auto opt = [](const std::string& v) { return v.empty() ? std::nullopt : std::optional<std::string>(v); };
  flags.config = opt(config);
  flags.scheduler = opt(scheduler);
  flags.broker = opt(broker);
  flags.metrics = opt(metrics);
  flags.billing = opt(billing);
  flags.bus = opt(bus);
  if (timeout_ms > 0) flags.timeout_ms = timeout_ms;
  const char* env = std::getenv("TY_CONFIG");
  const char* home = std::getenv("HOME");
  const char* state = std::getenv("XDG_STATE_HOME");
  std::string local = client::running_local_config(
      client::local_registry_path(home ? home : "", state ? std::optional<std::string>(state) : std::nullopt));
  auto e = client::resolve_endpoints(flags, env ? std::optional<std::string>(env) : std::nullopt, home ? home : "",
                                     local);
  if (!e) {
    std::cerr << "ty: " << e.status().message() << "\n";
    return nullptr;
  }
  client_ = std::make_unique<client::Client>(std::move(*e), "user:" + user);
  return client_.get();
}

}  // namespace trainyard::ty

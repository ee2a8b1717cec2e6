// One main() for every stateful service. A service's main.cc is
//
//   int main(int argc, char** argv) { return trainyard::run_service<MyShell>(argc, argv); }
//
// and run_service does the rest in one order for all of them: signals,
// flags (--config, --set, --log-level, --log-file, --ready-file), the config
// checked against the key schema, logging, the shell's Options, the RocksDB
// store, the ZeroMQ context, the clock, the loop, the ready file, and a
// last commit on the way out.
//
// What a Shell provides:
//   static constexpr ServiceInfo kInfo;            name, --help text (and footer)
//   static constexpr ConfigFlag kFlags[];          optional: flags that set a config key
//   static constexpr bool kPrivateData = true;     optional: its data directory owner-only
//   using Options = ...;                           with
//     static Result<Options> from_config(const Config&);   every key read and checked
//     std::string data; storage::Durability durability;    where its store lives
//     std::string principal() const;                who it is: "service:<instance>"
//   static storage::Options store_options(const Options&); column families
//   Shell(const ServiceEnv& env, Options options); binds, restores, hooks into env.runtime
//   nlohmann::json ready_info() const;             what the ready file says besides "pid"
//
// A shell without state (the bus forwarder) has no store_options and no
// data: its constructor takes a StatelessEnv and no store is opened.
//
// Security: under security.mode = "curve" (the default) the process's key
// and the site's authorized keys are read before anything binds (a key
// others may read refuses the start, exit 2), and SIGHUP re-reads the
// authorized keys. "none" warns at every start.
//
// Exit codes: 2 a bad flag or config (the message names the key), 3 a store
// that cannot be opened or holds an unreadable record, 1 an endpoint that
// cannot be bound (zmq::error_t or BindError from the constructor), 0 a
// clean stop on SIGTERM/SIGINT.
#pragma once

#include <exception>
#include <filesystem>
#include <initializer_list>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <zmq.hpp>

#include "bus/publisher.h"
#include "bus/subscriber.h"
#include "storage/store.h"
#include "util/clock.h"
#include "util/config.h"
#include "util/runtime.h"
#include "util/service_main.h"
#include "security/site.h"

namespace trainyard {

struct ServiceInfo {
  const char* name;   // "resource-broker": the log's name, the binary trainyard-<name>
  const char* about;  // the first paragraph of --help
  const char* footer = nullptr;  // the last: e.g. the config keys it reads
};

// What run_service hands a shell's constructor: everything it borrows.
struct ServiceEnv {
  zmq::context_t& ctx;
  storage::Store& store;
  Runtime& runtime;
  const Clock& clock;
  security::Site* site = nullptr;  // null under security.mode = "none"
};

// The same for a shell that keeps no state.
struct StatelessEnv {
  zmq::context_t& ctx;
  Runtime& runtime;
  const Clock& clock;
  security::Site* site = nullptr;
};

// Thrown by a shell's constructor when its configuration cannot work
// (exit 2, like a bad key): e.g. two settings that contradict each other.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Thrown by a shell's constructor when it cannot listen where it was told
// (exit 1), for listeners that are not ZeroMQ sockets (HTTP).
class BindError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The store of a service on the bus: the publisher's and the subscriber's
// column families (outbox, cursors), then the service's own.
inline storage::Options service_store(std::initializer_list<const char*> own, storage::Durability durability,
                                      std::vector<std::string> counters = {}) {
  std::vector<std::string> cfs = bus::Publisher::column_families();
  for (auto& c : bus::Subscriber::column_families()) cfs.push_back(c);
  for (const char* c : own) cfs.emplace_back(c);
  return storage::Options{std::move(cfs), std::move(counters), durability};
}

namespace detail {

template <class Shell>
concept Stateful = requires(const typename Shell::Options& o) { Shell::store_options(o); };

// Builds the shell, mapping what its constructor throws to an exit code
// (0: built).
template <class Shell, class Env>
int build_shell(std::unique_ptr<Shell>& shell, const Env& env, typename Shell::Options options) {
  try {
    shell = std::make_unique<Shell>(env, std::move(options));
    return 0;
  } catch (const zmq::error_t& e) {
    spdlog::error("cannot bind: {}", e.what());
  } catch (const BindError& e) {
    spdlog::error("cannot bind: {}", e.what());
  } catch (const ConfigError& e) {
    spdlog::error("config: {}", e.what());
    return 2;
  } catch (const std::exception& e) {
    spdlog::error("cannot start: {}", e.what());
    return 3;
  }
  return 1;
}

// Writes the ready file, runs the loop until a signal, commits the rest.
template <class Shell>
int serve(Shell& shell, Runtime& runtime, const std::string& ready_file, const std::string& data) {
  nlohmann::json ready = shell.ready_info();
  try {
    write_ready_file(ready_file, ready);
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return 1;
  }
  std::string where = ready.value("endpoint", std::string("?"));
  if (data.empty()) spdlog::info("{} serving on {}", Shell::kInfo.name, where);
  else spdlog::info("{} serving on {}, data in {}", Shell::kInfo.name, where, data);
  int sig = runtime.run();
  runtime.commit_now();
  spdlog::info("stopping (signal {})", sig);
  return 0;
}

// Everything after the config is read: the store (when the shell keeps
// one), the context and its security, the clock, the runtime, the shell.
template <class Shell>
int start(const Config& config, typename Shell::Options options, const std::string& ready_file) {
  auto security_options = security::options_from_config(config, options.principal());
  if (!security_options) {
    spdlog::error("config: {}", security_options.status().message());
    return 2;
  }
  std::unique_ptr<storage::Store> store;
  std::string data;
  if constexpr (Stateful<Shell>) {
    data = options.data;
    std::error_code ec;
    std::filesystem::create_directories(data, ec);
    // A shell whose store holds secrets (the gateway's token hashes) keeps
    // it owner-only. Not every service's: the agent's runs may live below
    // its data directory, written by the jobs' own users.
    if constexpr (requires { Shell::kPrivateData; }) {
      if (Shell::kPrivateData) std::filesystem::permissions(data, std::filesystem::perms::owner_all, ec);
    }
    auto opened = storage::Store::open(data, Shell::store_options(options));
    if (!opened) {
      spdlog::error("cannot open the store {}: {}", data, opened.status().message());
      return 3;
    }
    store = std::move(opened).value();
  }
  zmq::context_t ctx(1);
  auto site = install_security(ctx, *security_options);
  if (!site) return 2;
  SystemClock clock;
  Runtime runtime(store.get());
  if (*site) runtime.on_reload([s = site->get()] { (void)s->reload(); });
  std::unique_ptr<Shell> shell;
  int rc = 0;
  if constexpr (Stateful<Shell>) {
    rc = build_shell(shell, ServiceEnv{ctx, *store, runtime, clock, site->get()}, std::move(options));
  } else {
    rc = build_shell(shell, StatelessEnv{ctx, runtime, clock, site->get()}, std::move(options));
  }
  if (rc != 0) return rc;
  return serve(*shell, runtime, ready_file, data);
}

}  // namespace detail

template <class Shell>
int run_service(int argc, char** argv) {
  block_termination_signals();
  const ServiceInfo& info = Shell::kInfo;
  CLI::App app{std::string("trainyard-") + info.name + ": " + info.about};
  if (info.footer) app.footer(info.footer);
  ServiceArgs args;
  add_service_flags(app, args);
  if constexpr (requires { Shell::kFlags; }) {
    for (const ConfigFlag& f : Shell::kFlags) add_config_flag(app, args, f);
  }
  std::string ready_file;
  app.add_option("--ready-file", ready_file,
                 "Once serving, write {\"pid\", \"endpoint\", ...} here as JSON (atomically: a .tmp, then a rename)");
  CLI11_PARSE(app, argc, argv);
  Config config = load_service_config(args);
  init_service_logging(info.name, args, config);
  auto options = Shell::Options::from_config(config);
  if (!options) {
    spdlog::error("config: {}", options.status().message());
    return 2;
  }
  return detail::start<Shell>(config, std::move(options).value(), ready_file);
}

}  // namespace trainyard

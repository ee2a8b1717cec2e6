// ty's subcommands: each file registers its own on the CLI11 app and sets
// the action main() runs after parsing. Exit codes are shared by all.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "trainyard/client.h"
#include "trainyard/job_spec.h"

namespace trainyard::ty {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;       // the operation failed (a job failed, not found...)
inline constexpr int kExitUsage = 2;        // a bad flag or spec
inline constexpr int kExitUnavailable = 3;  // a service did not answer

// What every subcommand shares: the endpoint flags and the client.
struct Context {
  client::EndpointFlags flags;
  std::string config, scheduler, broker, metrics, billing, bus;  // raw flag values
  int timeout_ms = 0;
  std::string user;  // $USER, or the login name

  // The client for the resolved endpoints; nullptr after printing why not.
  client::Client* client();

 private:
  std::unique_ptr<client::Client> client_;
};

using Action = std::function<int()>;

// Prints "ty: <message>" on stderr and returns the exit code for `s`.
int fail(const Status& s);
// The exit code for a Status (0 when ok).
int exit_code(const Status& s);

void add_job_commands(CLI::App& app, Context& ctx, Action& action);
void add_cluster_commands(CLI::App& app, Context& ctx, Action& action);
// ty admin keys ..., ty login (keys.cc).
void add_key_commands(CLI::App& app, Context& ctx, Action& action);
// Where this user's key lives: $XDG_CONFIG_HOME/trainyard/key (~/.config/...).
std::string user_key_path();
void add_cloud_commands(CLI::App& app, Context& ctx, Action& action);  // cloud.cc

// `ty submit ARGS...`, parsed by the sbatch-style option table rather than
// CLI11 (so flags and #SBATCH directives mean the same).
int run_submit(Context& ctx, const std::vector<std::string>& args);
// What a submission from this process depends on: cwd, user, host, environment.
client::SubmitContext submit_context(const Context& ctx);
std::string submit_help();

}  // namespace trainyard::ty

// ty: the Trainyard command line. Parses flags, resolves endpoints, runs one
// subcommand through the client library and maps the outcome to an exit code.
#include <pwd.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <optional>
#include <set>

#include "commands.h"
#include "directory.h"
#include "local.h"
#include "slurm.h"
#include "srun.h"
#include "token.h"

namespace {

std::string login_name() {
  if (const char* u = std::getenv("USER"); u && *u) return u;
  if (auto* pw = getpwuid(getuid())) return pw->pw_name;
  return std::to_string(getuid());
}

using namespace trainyard::ty;

// Called as sbatch, squeue... (a link to ty): Slurm's command line. Nothing
// when called as ty.
std::optional<int> run_as_linked_command(int argc, char** argv, Context& ctx) {
  std::string_view self = argv[0];
  if (auto slash = self.rfind('/'); slash != std::string_view::npos) self.remove_prefix(slash + 1);
  if (is_slurm_command(self)) return run_slurm_command(self, ctx, std::vector<std::string>(argv + 1, argv + argc));
  if (self == "srun") return run_srun(ctx, std::vector<std::string>(argv + 1, argv + argc), "srun");
  if (self == "salloc") return run_salloc(ctx, std::vector<std::string>(argv + 1, argv + argc));
  return std::nullopt;
}

// The options every command takes (the endpoints, the config, the timeout)
// and the help's footer.
void add_global_options(CLI::App& app, Context& ctx) {
  app.set_version_flag("--version", "ty 0.1.0");
  app.require_subcommand(1);
  app.fallthrough();
  app.add_option("--scheduler", ctx.scheduler, "Scheduler endpoint (config scheduler.endpoint; tcp://127.0.0.1:5560)");
  app.add_option("--broker", ctx.broker, "Resource broker endpoint (config broker.endpoint; tcp://127.0.0.1:5561)");
  app.add_option("--metrics", ctx.metrics, "Metrics-aggregator endpoint (config metrics.endpoint; tcp://127.0.0.1:5562)");
  app.add_option("--billing", ctx.billing, "Billing endpoint (config billing.endpoint; tcp://127.0.0.1:5563)");
  app.add_option("--bus", ctx.bus, "Bus backend(s) to watch events on, comma-separated (config bus.backend; "
                                   "tcp://127.0.0.1:5551)");
  app.add_option("--config", ctx.config, "Config file (instead of $TY_CONFIG, then ~/.config/trainyard/config.toml)");
  app.add_option("--request-timeout", ctx.timeout_ms, "Milliseconds to wait for a service's answer, per try "
                                              "(config client.timeout_ms; default 1500; two tries)");
  app.footer(
      "Endpoints: a flag, else the file named by $TY_CONFIG (or --config), else ~/.config/trainyard/config.toml,\n"
      "else the running local Trainyard's (ty local up), else the local defaults. Every listing takes --json.\n"
      "\n"
      "Exit codes:\n"
      "  0  ok\n"
      "  1  the operation failed (a job failed or was not found, a wait timed out...)\n"
      "  2  usage error: a bad flag, job spec or batch script\n"
      "  3  a service is unavailable (did not answer within the timeout)\n");
}

// The index of "submit" or "run" in argv, after the global options; -1 for
// any other command.
// `ty [global options] submit|run ARGS...`: everything after "submit" or
// "run" goes to the sbatch-style parser untouched. Those two, the most
// frequent calls, need only the global options: the rest of the command
// tree (hundreds of options) is built only for the other commands.
int submit_or_run_at(int argc, char** argv) {
  static const std::set<std::string> kValued = {"--scheduler", "--broker", "--metrics", "--billing",
                                                "--bus",       "--config", "--request-timeout"};
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (kValued.count(a)) {
      ++i;
      continue;
    }
    if (a == "-h" || a == "--help") break;  // the whole tree's help
    if (!a.empty() && a[0] == '-') continue;
    if (a == "submit" || a == "run") return i;
    break;
  }
  return -1;
}

// The subcommands: all of them, or (`submit_only`) only `submit` and `run`,
// whose arguments are passed on as they are.
void add_commands(CLI::App& app, Context& ctx, Action& action, bool submit_only) {
  if (!submit_only) {
    add_job_commands(app, ctx, action);
    add_cluster_commands(app, ctx, action);
    add_key_commands(app, ctx, action);
    add_directory_commands(app, ctx, action);  // after keys: it joins their `ty admin`
    add_cloud_commands(app, ctx, action);
    add_local_commands(app, ctx, action);
    add_token_commands(app, ctx, action);
  } else {
    app.add_subcommand("submit")->allow_extras();
  }
  app.add_subcommand("run", "Run a command in a new allocation and wait: its output here, its exit code "
                            "(--pty: an interactive terminal; ty run --help)")
      ->allow_extras();
}

}  // namespace

int main(int argc, char** argv) {
  Context ctx;
  ctx.user = login_name();
  if (auto rc = run_as_linked_command(argc, argv, ctx)) return *rc;

  CLI::App app{"ty: submit and follow training jobs on Trainyard, see their metrics and what they cost."};
  add_global_options(app, ctx);
  int submit_at = submit_or_run_at(argc, argv);
  Action action;
  add_commands(app, ctx, action, submit_at >= 0);

  try {
    app.parse(submit_at < 0 ? argc : submit_at + 1, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  }
  if (submit_at >= 0) {
    std::vector<std::string> rest(argv + submit_at + 1, argv + argc);
    if (std::string_view(argv[submit_at]) == "run") return run_srun(ctx, rest, "ty run");
    return run_submit(ctx, rest);
  }
  if (!action) {
    std::cerr << app.help();
    return kExitUsage;
  }
  return action();
}

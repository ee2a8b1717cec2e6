// srun, salloc and `ty run`: inside a job srun starts a step
// (srun_step.cc); outside one it submits a job with the given options that
// runs srun in its allocation, streams its output and exits with its exit
// code, as a blocking srun does. --pty (and salloc) give the job a
// terminal instead (pty_session.cc).
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <thread>

#include "srun.h"
#include "trainyard/job_spec.h"

namespace trainyard::ty {
namespace {

bool inside_job() {
  const char* id = std::getenv("TY_JOB_ID");
  return id && *id;
}

// srun options that only shape an allocation or a binding: inside a job
// they are accepted and have no effect (the allocation exists already).
bool takes_value_ignored(const std::string& name) {
  static const char* kNames[] = {"nodes",  "cpus-per-task", "mem",       "time",       "job-name", "partition",
                                 "gres",   "gpus",          "mpi",       "cpu-bind",   "distribution",
                                 "export", "output",        "error",     "input",      "chdir",    "account",
                                 "gpus-per-task",           "mem-per-cpu", "ntasks-per-node", "gpu-bind", "qos"};
  for (auto* n : kNames) {
    if (name == n) return true;
  }
  return false;
}

bool flag_ignored(const std::string& name) {
  for (auto* n : {"unbuffered", "kill-on-bad-exit", "exclusive", "overlap", "quiet", "verbose", "wait"}) {
    if (name == n) return true;
  }
  return false;
}

Result<uint32_t> task_count(const std::string& v) {
  try {
    size_t used = 0;
    long n = std::stol(v, &used);
    if (used == v.size() && n >= 1 && n <= 100000) return static_cast<uint32_t>(n);
  } catch (const std::exception&) {
  }
  return Status::invalid("--ntasks '" + v + "' is not a task count (1 to 100000)");
}

// A short option's long name, and whether it takes a value.
std::pair<std::string, bool> short_option(char c) {
  switch (c) {
    case 'n': return {"ntasks", true};
    case 'l': return {"label", false};
    case 'N': return {"nodes", true};
    case 'c': return {"cpus-per-task", true};
    case 't': return {"time", true};
    case 'J': return {"job-name", true};
    case 'p': return {"partition", true};
    case 'o': return {"output", true};
    case 'e': return {"error", true};
    case 'D': return {"chdir", true};
    case 'A': return {"account", true};
    case 'G': return {"gpus", true};
    case 'u': return {"unbuffered", false};
    case 'K': return {"kill-on-bad-exit", false};
    case 'Q': return {"quiet", false};
    case 'v': return {"verbose", false};
    default: return {"", false};
  }
}

}  // namespace

Result<StepRequest> parse_step_request(const std::vector<std::string>& args) {
  StepRequest out;
  size_t i = 0;
  for (; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") {
      ++i;
      break;
    }
    if (a.size() < 2 || a[0] != '-') break;
    std::string name, value;
    bool has_value = false, wants_value = false;
    if (a[1] == '-') {
      auto eq = a.find('=');
      name = a.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
      if (eq != std::string::npos) value = a.substr(eq + 1), has_value = true;
      wants_value = name == "ntasks" || takes_value_ignored(name);
    } else {
      std::tie(name, wants_value) = short_option(a[1]);
      if (name.empty()) return Status::invalid("unrecognized option '" + a.substr(0, 2) + "'");
      if (a.size() > 2) value = a.substr(2), has_value = true;
    }
    if (wants_value && !has_value) {
      if (i + 1 >= args.size()) return Status::invalid("option '" + a + "' needs a value");
      value = args[++i];
    }
    if (name == "ntasks") {
      auto n = task_count(value);
      if (!n) return n.status();
      out.ntasks = *n;
    } else if (name == "label") {
      out.label = true;
    } else if (!takes_value_ignored(name) && !flag_ignored(name)) {
      return Status::invalid("unrecognized option '--" + name + "' (docs/slurm.md lists what srun accepts)");
    }
  }
  out.command.assign(args.begin() + static_cast<long>(i), args.end());
  if (out.command.empty()) return Status::invalid("no command given (srun [OPTIONS] COMMAND [ARGS...])");
  return out;
}

namespace {

// The exit code a blocking srun gives for a job that ended.
int job_exit_code(const fb::JobRecordT& j) {
  if (j.state == fb::JobState::Succeeded) return 0;
  if (j.state == fb::JobState::Failed && j.exit_code > 0 && j.exit_code < 256) return j.exit_code;
  std::cerr << "srun: error: job " << j.job_id << " " << fb::EnumNameJobState(j.state)
            << (j.reason.empty() ? "" : ": " + j.reason) << "\n";
  return 1;
}

// Follows one of the job's logs to `out` until the run ends. A job just
// placed may not have its run on the node yet (NotFound): asked again, from
// where it stopped.
Status follow_log(client::Client& c, uint64_t id, bool err, FILE* out) {
  client::LogOptions o;
  o.follow = true;
  o.stderr_stream = err;
  for (int tries = 0;; ++tries) {
    auto s = c.logs(id, o, [&](std::string_view d) {
      std::fwrite(d.data(), 1, d.size(), out);
      std::fflush(out);
      o.offset += d.size();
    });
    if (s.code() != ErrorCode::NotFound || tries >= 150) return s;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

// Streams the job's stdout here and its stderr (on a thread with its own
// client) to stderr until it ends, then returns its exit code.
int follow_job(Context& ctx, client::Client& c, uint64_t id) {
  auto endpoints = c.endpoints();
  std::string principal = "user:" + ctx.user;
  std::thread err([endpoints, principal, id] {
    client::Client ec(endpoints, principal);
    (void)follow_log(ec, id, true, stderr);
  });
  auto s = follow_log(c, id, false, stdout);
  err.join();
  auto done = c.wait({id}, std::chrono::milliseconds(0));
  if (!done) return fail(done.status());
  if (!s && done->front().state == fb::JobState::Succeeded) return fail(s);
  return job_exit_code(done->front());
}

// Outside a job: an allocation from the options, srun inside it (or the
// command on a terminal with --pty).
int allocate_and_run(Context& ctx, std::vector<std::string> args, const char* self, bool salloc) {
  using client::ExtraOption;
  using client::OptionArg;
  std::vector<ExtraOption> extras = {{"label", 'l', OptionArg::kNone},   {"pty", 0, OptionArg::kNone},
                                     {"unbuffered", 'u', OptionArg::kNone}, {"mpi", 0, OptionArg::kRequired},
                                     {"kill-on-bad-exit", 'K', OptionArg::kNone}};
  args.insert(args.begin(), "--export=ALL");  // srun's default: the caller's environment goes along
  if (salloc) {
    // salloc without a command: the user's shell, on the allocation's node.
    auto split = client::split_command_line(args, extras);
    const char* shell = std::getenv("SHELL");
    if (split && split->positionals.empty()) args.push_back(shell && *shell ? shell : "/bin/sh");
  }
  auto built = client::build_job_request(args, submit_context(ctx), extras);
  if (!built) {
    std::cerr << self << ": error: " << built.status().message() << "\n";
    return kExitUsage;
  }
  auto& spec = built->request.spec;
  bool pty = salloc || built->extras.count("pty");
  if (spec.command.empty()) {
    std::cerr << self << ": error: no command given (" << self << " [OPTIONS] COMMAND [ARGS...])\n";
    return kExitUsage;
  }
  if (pty && spec.nodes > 1) {
    std::cerr << self << ": error: an interactive session is one terminal on one node; ask for -N 1 (the other "
              << "nodes of a multi-node job are reached with srun from a batch script)\n";
    return kExitUsage;
  }
  if (pty) {
    spec.pty = true;
  } else {
    std::vector<std::string> inner = {"srun"};
    if (built->extras.count("label")) inner.push_back("--label");
    inner.push_back("--");
    spec.command.insert(spec.command.begin(), inner.begin(), inner.end());
  }
  for (auto& w : built->request.warnings) {
    std::cerr << self << ": warning: " << (w.where.empty() ? "" : w.where + ": ") << w.message << "\n";
  }
  auto* c = ctx.client();
  if (!c) return kExitUnavailable;
  auto r = c->submit(spec);
  if (!r) return fail(r.status());
  if (r->job_ids.size() != 1) {
    std::cerr << self << ": error: --array is not for " << self << " (use sbatch)\n";
    return kExitUsage;
  }
  uint64_t id = r->job_ids.front();
  if (pty) return run_terminal(ctx, id);
  return follow_job(ctx, *c, id);
}

}  // namespace

int run_srun(Context& ctx, const std::vector<std::string>& args, const char* self) {
  for (auto& a : args) {
    if (a == "--") break;
    if (a == "-h" || a == "--help" || a == "--usage") {
      std::cout << "Usage: " << self << " [OPTIONS] COMMAND [ARGS...]   (Trainyard's srun; docs/slurm.md)\n"
                << "Inside a job: starts -n/--ntasks tasks (default $SLURM_NTASKS) with SLURM_PROCID/LOCALID;\n"
                << "  -l/--label prefixes each line with the task's rank.\n"
                << "Outside a job: asks for an allocation with the job options below, runs in it and returns\n"
                << "  its exit code; --pty gives COMMAND a terminal (an interactive session).\n\n"
                << "Job options:\n"
                << client::spec_options_help();
      return kExitOk;
    }
  }
  bool pty = false;
  for (auto& a : args) {
    if (a == "--" || (!a.empty() && a[0] != '-')) break;
    pty = pty || a == "--pty";
  }
  if (inside_job() && !pty && std::string_view(self) == "srun") {
    auto step = parse_step_request(args);
    if (!step) {
      std::cerr << "srun: error: " << step.status().message() << "\n";
      return kExitUsage;
    }
    return run_step(*step);
  }
  return allocate_and_run(ctx, args, self, false);
}

int run_salloc(Context& ctx, const std::vector<std::string>& args) {
  return allocate_and_run(ctx, args, "salloc", true);
}

}  // namespace trainyard::ty

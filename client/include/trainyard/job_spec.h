// Turning what a researcher types into a fb::JobSpec: command-line flags,
// TOML/JSON spec files and Slurm batch scripts with #SBATCH directives.
// Everything here is pure (no sockets, no clock); it only reads the files it
// is given. `ty submit` is a thin shell around build_job_request().
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "trainyard/fb/jobs_generated.h"
#include "util/status.h"

namespace trainyard::client {

// What a submission depends on besides its arguments: passed in, never
// looked up, so tests decide it.
struct SubmitContext {
  std::string cwd;                           // the submit directory (absolute)
  int64_t now_ns = 0;                        // the wall clock (--begin)
  int64_t utc_offset_s = 0;                  // the submitter's time zone at now_ns, east of UTC (--begin)
  std::string user;                          // who submits
  std::map<std::string, std::string> env;    // the submitting environment (for --export)
  std::string host;                          // the submitting host (SLURM_SUBMIT_HOST)
};

// A note for the user that does not stop the submission (an ignored Slurm
// directive, say). `where` is "script.sh line 4" or "command line".
struct SpecWarning {
  std::string where;
  std::string message;
};

// A spec ready to send, plus what is not part of the spec.
struct JobRequest {
  fb::JobSpecT spec;
  bool hold = false;                 // --hold: submitted Held (in the same request)
  std::vector<SpecWarning> warnings;
};

// ---- value formats (shared by flags, directives and spec files) ----

// Slurm --time: "MM", "MM:SS", "HH:MM:SS", "D-HH", "D-HH:MM", "D-HH:MM:SS".
// "UNLIMITED", "INFINITE" and "-1" give 0: the partition's default limit,
// which the scheduler fills in (it refuses the job when the partition has
// none: every Trainyard job runs under a finite limit). Returns seconds.
Result<uint64_t> parse_time_limit(std::string_view text);

// Slurm --mem: an integer with an optional K, M, G or T suffix (an optional
// trailing B is accepted; case-insensitive); no suffix means megabytes.
// "0" means "no limit asked". Returns megabytes, rounded up.
Result<uint64_t> parse_memory_mb(std::string_view text);

struct GpuRequest {
  std::string type;   // empty: any type
  uint32_t count = 0;
};
// --gres: "gpu", "gpu:N", "gpu:TYPE", "gpu:TYPE:N" (optionally "gres/gpu...").
// Only GPUs are supported as generic resources.
Result<GpuRequest> parse_gres(std::string_view text);
// --gpus / --gpus-per-node: "N" or "TYPE:N".
Result<GpuRequest> parse_gpu_count(std::string_view text);

// --begin, in the submitter's local time (`utc_offset_s` east of UTC at
// `now_ns`): "now", "now+N[UNIT]" (seconds by default; minutes, hours,
// days, weeks), "HH:MM[:SS]" (today, or tomorrow once it has passed),
// "YYYY-MM-DD[THH:MM[:SS]]", "MM/DD[/YY]", "today", "tomorrow",
// "midnight", "noon", "fika" (15:00), "teatime" (16:00). Returns the wall
// time in ns since the epoch.
Result<int64_t> parse_begin_time(std::string_view text, int64_t now_ns, int64_t utc_offset_s);

// --nodelist / --exclude: Slurm's host lists, "gpu[01-04,07],cpu1" (one
// bracket group a name; ranges keep the start's zero padding). At most
// 1024 names.
Result<std::vector<std::string>> expand_hostlist(std::string_view text);

// --mail-type: "BEGIN,END,FAIL,REQUEUE,TIME_LIMIT", "ALL", "NONE". Types
// sbatch knows that mean nothing here (TIME_LIMIT_80, ARRAY_TASKS...) are
// put in *ignored, not refused.
Result<fb::NotifyOn> parse_mail_types(std::string_view text, std::vector<std::string>* ignored);

// --signal: "[B:]SIG[@TIME]": SIG a number or a name (USR1, SIGUSR1), TIME
// seconds before the time limit (default 60, at most 65535); "B:" sends it
// to the batch shell only.
struct SignalRequest {
  int signal = 0;
  uint32_t before_s = 60;
  bool batch_only = false;
};
Result<SignalRequest> parse_signal_option(std::string_view text);

// --array: comma-separated items "A", "A-B" or "A-B:STEP", then an optional
// "%MAX" (most tasks running at once). Returns the number of tasks.
Result<uint64_t> validate_array(std::string_view text);

// --dependency: "afterok:ID[:ID...]", "afterany:...", "afternotok:...",
// several joined by ',' (all must hold).
Result<std::vector<fb::DependencyT>> parse_dependency(std::string_view text);

// ---- building a spec from options ----

// One option as sbatch names it: the long name without dashes ("job-name")
// or a one-letter short name ("J"); `value` is absent for a flag.
struct SpecOption {
  std::string name;
  std::optional<std::string> value;
  std::string where;   // for messages: "job.sh line 3", "command line"
};

// Accumulates options in order (a later one overrides an earlier one, so
// apply directives first, then command-line flags) and checks the result.
class SpecBuilder {
 public:
  explicit SpecBuilder(SubmitContext ctx);

  // Starts from a spec (a spec file's). Options applied later override it.
  void set_base(fb::JobSpecT spec) {
    nodes_given_ = spec.nodes > 1;
    request_.spec = std::move(spec);
  }

  // Applies one option. Errors name `where` and the option. Slurm options
  // with no meaning here (--mail-user, --qos...) are accepted with a warning.
  Status apply(const SpecOption& option);

  // The command to run: argv as given.
  void set_command(std::vector<std::string> argv) { request_.spec.command = std::move(argv); }
  // A batch script's text, run as a copy in place of argv[arg] (JobSpec.script).
  void set_script(std::string text, uint32_t arg) {
    request_.spec.script = std::move(text);
    request_.spec.script_arg = arg;
  }
  // What --export means when no option says (a batch script: "ALL", as
  // sbatch; flags: "NONE"), and the job's name when none is given.
  void set_default_export(std::string value) { default_export_ = std::move(value); }
  void set_default_name(std::string name) { default_name_ = std::move(name); }
  // Where stdout goes when no --output says (a batch script: sbatch's
  // slurm-%j.out, slurm-%A_%a.out for an array, in the work dir; else the
  // agent's own log file, read with `ty logs`).
  void set_batch_script(bool batch) { batch_script_ = batch; }

  // Resolves what depends on several options (--gpus over --nodes, CPUs per
  // task times tasks, --mem-per-cpu, --export, relative paths) and returns
  // the request. Fails when no command was given.
  Result<JobRequest> finish();

 private:
  friend struct OptionTable;
  // finish()'s steps.
  Status finish_gpus(uint32_t tasks_per_node);
  Status finish_cpus_and_memory(uint32_t tasks_per_node);
  void finish_defaults();
  Status finish_environment();
  // A warning about the option being applied.
  void note(std::string message) { request_.warnings.push_back({where_, std::move(message)}); }

  SubmitContext ctx_;
  std::string where_;  // of the option being applied
  JobRequest request_;
  // Values that are combined in finish().
  std::optional<GpuRequest> gpus_total_;   // --gpus (whole job)
  std::optional<uint32_t> cpus_per_task_;
  std::optional<uint32_t> tasks_per_node_;
  std::optional<uint32_t> ntasks_;
  std::optional<uint64_t> mem_per_cpu_mb_;
  std::optional<uint64_t> mem_per_gpu_mb_;
  std::optional<uint32_t> cpus_per_gpu_;
  std::optional<GpuRequest> gpus_per_task_;
  bool nodes_given_ = false;               // --nodes, or a spec file's nodes (else --nodelist's count)
  bool notify_default_ = false;            // --notify given: END and FAIL unless --mail-type says
  std::optional<std::string> export_;      // --export as given
  std::string default_export_ = "NONE";
  std::string default_name_;
  bool batch_script_ = false;
};

// Whether an option takes a value: never, always ("--mem 4G", "--mem=4G"),
// or only attached ("--nice=5"), as in getopt.
enum class OptionArg { kNone, kRequired, kOptional };
// The argument kind of spec option `name` (long, unique long prefix, or short;
// no dashes). nullopt: not a spec option.
std::optional<OptionArg> spec_option_arg(std::string_view name);

// One line per spec option, for `ty submit --help`.
std::string spec_options_help();

// ---- command lines, batch scripts and spec files ----

// An option a caller adds on top of the spec options (`ty submit --wait`).
struct ExtraOption {
  std::string long_name;
  char short_name = 0;
  OptionArg arg = OptionArg::kNone;
};

struct SplitCommandLine {
  std::vector<SpecOption> spec_options;
  std::vector<SpecOption> extra_options;  // by long name
  std::vector<std::string> positionals;   // from the first non-option on
};
// Splits arguments as sbatch does: "--opt=value", "--opt value", "-J name",
// "-Jname", unique prefixes of long names; options stop at the first
// non-option argument or "--".
Result<SplitCommandLine> split_command_line(const std::vector<std::string>& args,
                                            const std::vector<ExtraOption>& extras = {});

// The #SBATCH (and #TY, with the same options) directives of a batch script,
// read until the first line that is neither blank nor a comment, as sbatch
// does. Each line may carry several options; quotes group, '#' after a space
// starts a comment. Errors name the file and line.
Result<std::vector<SpecOption>> read_directives(std::string_view script, const std::string& path);

// Whether the file at `path` should be submitted as a batch script (it
// starts with "#!" or is named *.sh, *.sbatch, *.slurm, *.bash).
bool looks_like_batch_script(const std::string& path);

// A job spec from a TOML (.toml) or JSON (.json) file: the fields of
// fb::JobSpec by name, plus "time_limit" (Slurm form) and "memory" ("16G")
// for convenience; env and labels as tables; dependencies as strings
// ("afterok:12") or {kind, job_id}. An error names the file, line and field.
Result<fb::JobSpecT> parse_spec_file(std::string_view text, const std::string& path);
Result<fb::JobSpecT> load_spec_file(const std::string& path);

// The whole of `ty submit ARGS`: options, an optional --file spec, then a
// batch script (its directives, then the command-line options over them) or
// a command. A script runs as `bash -c <its text at submit time> <path>
// <args...>` in the submit directory (a later edit of the file does not
// change a submitted job, as with sbatch); a script whose #! names another
// interpreter runs as that interpreter with the script's path.
struct SubmitArgs {
  JobRequest request;
  std::map<std::string, std::string> extras;  // extra options given (flags: "")
  std::string script_path;                    // empty: not a script
};
Result<SubmitArgs> build_job_request(const std::vector<std::string>& args, const SubmitContext& ctx,
                                     const std::vector<ExtraOption>& extras = {});

}  // namespace trainyard::client

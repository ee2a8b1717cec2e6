// The table of submission options: each option as sbatch spells it (plus a
// few of ty's own), and for those that change the spec, the handler that
// applies its value to a SpecBuilder. This file is a data table: one entry
// per option, long because there are many options, not because it holds logic.
#include <charconv>
#include <cstdlib>

#include "decimal.h"
#include "paths.h"
#include "spec_option_table.h"

namespace trainyard::client {

using detail::absolute;
using detail::to_u64;

namespace {

std::optional<int64_t> to_i64(std::string_view s) {
  if (s.empty()) return std::nullopt;
  if (s.front() == '+') s.remove_prefix(1);
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

Result<uint32_t> positive_u32(std::string_view option, const std::string& v, bool allow_zero = false) {
  auto n = to_u64(v);
  if (!n || (*n == 0 && !allow_zero) || *n > 0xffffffffu) {
    return Status::invalid("--" + std::string(option) + " '" + v + "' is not a " +
                           (allow_zero ? "whole number" : "positive whole number"));
  }
  return static_cast<uint32_t>(*n);
}

Status set_key_value(std::vector<std::unique_ptr<fb::KeyValueT>>& list, std::string_view option, const std::string& v) {
  auto eq = v.find('=');
  if (eq == std::string::npos || eq == 0) {
    return Status::invalid("--" + std::string(option) + " '" + v + "' is not KEY=VALUE");
  }
  auto key = v.substr(0, eq);
  for (auto& kv : list) {
    if (kv->key == key) {
      kv->value = v.substr(eq + 1);
      return Status::success();
    }
  }
  auto kv = std::make_unique<fb::KeyValueT>();
  kv->key = key;
  kv->value = v.substr(eq + 1);
  list.push_back(std::move(kv));
  return Status::success();
}

constexpr OptionDef spec(std::string_view l, char s, ArgKind a, std::string_view help,
                         Status (*fn)(SpecBuilder&, const std::string&)) {
  return OptionDef{l, s, a, OptionKind::kSpec, help, fn};
}
constexpr OptionDef ignored(std::string_view l, char s = 0, ArgKind a = ArgKind::kRequired) {
  return OptionDef{l, s, a, OptionKind::kIgnored, "", nullptr};
}
constexpr OptionDef refused(std::string_view l, char s, ArgKind a, std::string_view why) {
  return OptionDef{l, s, a, OptionKind::kRefused, why, nullptr};
}

using A = ArgKind;

}  // namespace

// Constant-initialized, so it is whole before any code (a static
// initializer elsewhere included) can look an option up.
constinit const OptionDef OptionTable::kOptions[] = {
  // --- Slurm options with a Trainyard meaning ---
  spec("job-name", 'J', A::kRequired, "NAME  the job's name (default: the script's or command's name)",
       [](SpecBuilder& b, const std::string& v) {
         b.request_.spec.name = v;
         return Status::success();
       }),
  spec("account", 'A', A::kRequired, "ACCOUNT  the account (project) charged",
       [](SpecBuilder& b, const std::string& v) {
         b.request_.spec.account = v;
         return Status::success();
       }),
  spec("partition", 'p', A::kRequired, "PARTITION  where to run",
       [](SpecBuilder& b, const std::string& v) {
         b.request_.spec.partition = v;
         return Status::success();
       }),
  spec("gres", 0, A::kRequired, "gpu[:TYPE]:N  N GPUs per node (of TYPE)",
       [](SpecBuilder& b, const std::string& v) -> Status {
         auto g = parse_gres(v);
         if (!g) return g.status();
         b.request_.spec.gpus_per_node = g->count;
         b.request_.spec.gpu_type = g->type;
         b.gpus_total_.reset();
         return Status::success();
       }),
  spec("gpus", 'G', A::kRequired, "[TYPE:]N  N GPUs for the whole job (split evenly over --nodes)",
       [](SpecBuilder& b, const std::string& v) -> Status {
         auto g = parse_gpu_count(v);
         if (!g) return g.status();
         b.gpus_total_ = *g;
         return Status::success();
       }),
  spec("gpus-per-node", 0, A::kRequired, "[TYPE:]N  N GPUs on each node",
       [](SpecBuilder& b, const std::string& v) -> Status {
         auto g = parse_gpu_count(v);
         if (!g) return g.status();
         b.request_.spec.gpus_per_node = g->count;
         b.request_.spec.gpu_type = g->type;
         b.gpus_total_.reset();
         return Status::success();
       }),
  spec("gpu-type", 0, A::kRequired, "TYPE  the GPU type (A100, H100...; default any)",
       [](SpecBuilder& b, const std::string& v) {
         b.request_.spec.gpu_type = v;
         if (b.gpus_total_) b.gpus_total_->type = v;
         return Status::success();
       }),
  spec("cpus-per-task", 'c', A::kRequired, "N  CPUs per task (times tasks per node = CPUs per node)",
       [](SpecBuilder& b, const std::string& v) -> Status {
         auto n = positive_u32("cpus-per-task", v);
         if (!n) return n.status();
         b.cpus_per_task_ = *n;
         b.request_.spec.cpus_per_task = *n;
         return Status::success();
       }),
  spec("ntasks", 'n', A::kRequired, "N  tasks in all (spread over --nodes; sizes the CPUs)",
       [](SpecBuilder& b, const std::string& v) -> Status {
         auto n = positive_u32("ntasks", v);
         if (!n) return n.status();
         b.ntasks_ = *n;
         b.request_.spec.ntasks = *n;
         return Status::success();
       }),
  spec("ntasks-per-node", 0, A::kRequired, "N  tasks on each node (sizes the CPUs)",
       [](SpecBuilder& b, const std::string& v) -> Status {
         auto n = positive_u32("ntasks-per-node", v);
         if (!n) return n.status();
         b.tasks_per_node_ = *n;
         b.request_.spec.ntasks_per_node = *n;
         return Status::success();
       }),
  spec("mem", 0, A::kRequired, "SIZE  memory per node (K/M/G/T; default M; 0: no limit)",
       [](SpecBuilder& b, const std::string& v) -> Status {
         auto m = parse_memory_mb(v);
         if (!m) return m.status();
         b.request_.spec.memory_mb = *m;
         b.mem_per_cpu_mb_.reset();
         b.mem_per_gpu_mb_.reset();
         return Status::success();
       }),
  spec("mem-per-cpu", 0, A::kRequired, "SIZE  memory per CPU",
       [](SpecBuilder& b, const std::string& v) -> Status {
         auto m = parse_memory_mb(v);
         if (!m) return m.status();
         b.mem_per_cpu_mb_ = *m;
         b.mem_per_gpu_mb_.reset();
         return Status::success();
       }),
  spec("mem-per-gpu", 0, A::kRequired, "SIZE  memory per GPU",
       [](SpecBuilder& b, const std::string& v) -> Status {
         auto m = parse_memory_mb(v);
         if (!m) return m.status();
         b.mem_per_gpu_mb_ = *m;
         b.mem_per_cpu_mb_.reset();
         return Status::success();
       }),
  spec("time", 't', A::kRequired, "TIME  time limit: MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS",
       [](SpecBuilder& b, const std::string& v) -> Status {
         auto s = parse_time_limit(v);
         if (!s) return s.status();
         b.request_.spec.time_limit_s = *s;
         if (*s == 0) b.note("--time " + v + " means the partition's default time limit here");
         return Status::success();
       }),
  spec("nodes", 'N', A::kRequired, "N  nodes, gang-scheduled (all or none)",
       [](SpecBuilder& b, const std::string& v) -> Status {
         std::string n = v;
         if (auto dash = v.find('-'); dash != std::string::npos) {
           if (v.substr(0, dash) != v.substr(dash + 1)) {
             return Status::invalid("--nodes '" + v +
                                    "': a range of node counts is not supported; give one number");
           }
           n = v.substr(0, dash);
         }
         auto c = positive_u32("nodes", n);
         if (!c) return c.status();
         b.request_.spec.nodes = *c;
         b.nodes_given_ = true;
         return Status::success();
       }),
  spec("array", 'a', A::kRequired, "INDICES  a job array: 0-99%8, 1,3,5, 0-15:4",
       [](SpecBuilder& b, const std::string& v) -> Status {
         auto n = validate_array(v);
         if (!n) return n.status();
         b.request_.spec.array = v;
         return Status::success();
       }),
  spec("dependency", 'd', A::kRequired, "LIST  afterok:ID[:ID...], afterany:..., afternotok:... (',' = all)",
       [](SpecBuilder& b, const std::string& v) -> Status {
         auto d = parse_dependency(v);
         if (!d) return d.status();
         b.request_.spec.dependencies.clear();
         for (auto& dep : *d) b.request_.spec.dependencies.push_back(std::make_unique<fb::DependencyT>(dep));
         return Status::success();
       }),
  spec("output", 'o', A::kRequired,
       "PATH  stdout file (relative to the work dir; %A %a %j %J %x %u %N %n %t %s %% and %3a-style "
       "padding, as sbatch; scripts default to slurm-%j.out)",
       [](SpecBuilder& b, const std::string& v) {
         b.request_.spec.stdout_path = v;
         return Status::success();
       }),
  spec("error", 'e', A::kRequired, "PATH  stderr file (default: with stdout when --output is given)",
       [](SpecBuilder& b, const std::string& v) {
         b.request_.spec.stderr_path = v;
         return Status::success();
       }),
  spec("open-mode", 0, A::kRequired, "append|truncate  keep or empty existing --output/--error files "
       "(default truncate, as sbatch)",
       [](SpecBuilder& b, const std::string& v) -> Status {
         if (v == "append" || v == "a" || v == "A") {
           b.request_.spec.open_append = true;
         } else if (v == "truncate" || v == "t" || v == "T") {
           b.request_.spec.open_append = false;
         } else {
           return Status::invalid("--open-mode '" + v + "' is not append or truncate");
         }
         return Status::success();
       }),
  spec("chdir", 'D', A::kRequired, "DIR  the job's working directory (default: the submit directory)",
       [](SpecBuilder& b, const std::string& v) {
         b.request_.spec.workdir = absolute(b.ctx_.cwd, v);
         return Status::success();
       }),
  spec("hold", 'H', A::kNone, "submit held (release with ty release JOB)",
       [](SpecBuilder& b, const std::string&) {
         b.request_.hold = true;
         return Status::success();
       }),
  spec("export", 0, A::kRequired,
       "ALL|NONE|[ALL,]VAR[=VALUE],...  environment passed on (scripts: ALL, as sbatch; else NONE)",
       [](SpecBuilder& b, const std::string& v) {
         b.export_ = v;
         return Status::success();
       }),
  spec("wrap", 0, A::kRequired, "COMMAND  run this shell command line (bash -c)",
       [](SpecBuilder& b, const std::string& v) {
         b.request_.spec.command = {"bash", "-c", v};
         if (b.default_name_.empty()) b.default_name_ = "wrap";
         return Status::success();
       }),
  spec("comment", 0, A::kRequired, "TEXT  kept as the label comment=TEXT",
       [](SpecBuilder& b, const std::string& v) {
         return set_key_value(b.request_.spec.labels, "comment", "comment=" + v);
       }),
  spec("nice", 0, A::kOptional, "[N]  lower the priority by N (default 100)",
       [](SpecBuilder& b, const std::string& v) -> Status {
         auto n = v.empty() ? std::optional<int64_t>(100) : to_i64(v);
         if (!n) return Status::invalid("--nice '" + v + "' is not a number");
         b.request_.spec.priority = static_cast<int32_t>(-*n);
         return Status::success();
       }),
  spec("requeue", 0, A::kNone, "requeue after a node failure (the default)",
       [](SpecBuilder& b, const std::string&) {
         if (b.request_.spec.max_retries == 0) b.request_.spec.max_retries = 1;
         return Status::success();
       }),
  spec("no-requeue", 0, A::kNone, "never run again after a failure (max retries 0)",
       [](SpecBuilder& b, const std::string&) {
         b.request_.spec.max_retries = 0;
         return Status::success();
       }),
  // --- Trainyard's own ---
  spec("resumable", 0, A::kNone,
       "the job checkpoints and resumes from its latest checkpoint after a requeue (it may be moved from a rented "
       "node to owned GPUs)",
       [](SpecBuilder& b, const std::string&) -> Status {
         b.request_.spec.resumable = true;
         return Status::success();
       }),
  spec("priority", 0, A::kRequired, "N  priority tier (higher runs first)",
       [](SpecBuilder& b, const std::string& v) -> Status {
         auto n = to_i64(v);
         if (!n || *n < -1'000'000 || *n > 1'000'000) return Status::invalid("--priority '" + v + "' is not a number");
         b.request_.spec.priority = static_cast<int32_t>(*n);
         return Status::success();
       }),
  spec("max-retries", 0, A::kRequired, "N  runs again after a failure or lost node, up to N times",
       [](SpecBuilder& b, const std::string& v) -> Status {
         auto n = positive_u32("max-retries", v, true);
         if (!n) return n.status();
         b.request_.spec.max_retries = *n;
         return Status::success();
       }),
  spec("experiment", 0, A::kRequired, "NAME  the experiment this run belongs to (ty compare)",
       [](SpecBuilder& b, const std::string& v) {
         b.request_.spec.experiment = v;
         return Status::success();
       }),
  spec("label", 0, A::kRequired, "KEY=VALUE  a free label, e.g. lr=0.001 (repeatable)",
       [](SpecBuilder& b, const std::string& v) { return set_key_value(b.request_.spec.labels, "label", v); }),
  spec("env", 0, A::kRequired, "KEY=VALUE  an environment variable of the job (repeatable)",
       [](SpecBuilder& b, const std::string& v) { return set_key_value(b.request_.spec.env, "env", v); }),
  spec("grace", 0, A::kRequired, "SECONDS  from SIGTERM to SIGKILL on cancel or timeout (default 30)",
       [](SpecBuilder& b, const std::string& v) -> Status {
         auto n = positive_u32("grace", v, true);
         if (!n) return n.status();
         b.request_.spec.grace_s = *n;
         return Status::success();
       }),
  spec("no-preempt", 0, A::kNone, "never preempt this job",
       [](SpecBuilder& b, const std::string&) {
         b.request_.spec.preemptible = false;
         return Status::success();
       }),
  spec("sim-duration", 0, A::kRequired, "SECONDS  how long the job 'runs' on a simulated agent",
       [](SpecBuilder& b, const std::string& v) -> Status {
         char* end = nullptr;
         double d = std::strtod(v.c_str(), &end);
         if (v.empty() || *end != '\0' || !(d >= 0)) return Status::invalid("--sim-duration '" + v + "' is not a number of seconds");
         b.request_.spec.sim_duration_s = d;
         return Status::success();
       }),
  spec("begin", 'b', A::kRequired,
       "TIME  not started before TIME: now+N[minutes|hours|days], HH:MM, YYYY-MM-DD[THH:MM]",
       [](SpecBuilder& b, const std::string& v) -> Status {
         auto at = parse_begin_time(v, b.ctx_.now_ns, b.ctx_.utc_offset_s);
         if (!at) return at.status();
         b.request_.spec.begin_ns = *at;
         return Status::success();
       }),
  spec("signal", 0, A::kRequired,
       "[B:]SIG[@TIME]  send SIG TIME seconds (default 60) before the time limit (B: the batch shell only)",
       [](SpecBuilder& b, const std::string& v) -> Status {
         auto sig = parse_signal_option(v);
         if (!sig) return sig.status();
         b.request_.spec.signal = sig->signal;
         b.request_.spec.signal_before_s = sig->before_s;
         b.request_.spec.signal_batch_only = sig->batch_only;
         return Status::success();
       }),
  spec("nodelist", 'w', A::kRequired, "NODES  on these nodes, every one (gpu[01-04]; --nodes defaults to their number)",
       [](SpecBuilder& b, const std::string& v) -> Status {
         auto names = expand_hostlist(v);
         if (!names) return Status::invalid("--nodelist: " + names.status().message());
         b.request_.spec.nodelist = std::move(*names);
         return Status::success();
       }),
  spec("exclude", 'x', A::kRequired, "NODES  never on these nodes (gpu[01-04])",
       [](SpecBuilder& b, const std::string& v) -> Status {
         auto names = expand_hostlist(v);
         if (!names) return Status::invalid("--exclude: " + names.status().message());
         b.request_.spec.exclude = std::move(*names);
         return Status::success();
       }),
  spec("constraint", 'C', A::kRequired, "LABELS  nodes with these labels: ib, rack=r1, a&b, a|b",
       [](SpecBuilder& b, const std::string& v) -> Status {
         b.request_.spec.constraint = v;
         return Status::success();
       }),
  spec("exclusive", 0, A::kOptional, "  alone on its nodes: no other job is placed there while it runs",
       [](SpecBuilder& b, const std::string&) -> Status {
         b.request_.spec.exclusive = true;
         return Status::success();
       }),
  spec("mail-type", 0, A::kRequired,
       "TYPES  notify on BEGIN, END, FAIL, REQUEUE, TIME_LIMIT, ALL or NONE (comma-separated)",
       [](SpecBuilder& b, const std::string& v) -> Status {
         std::vector<std::string> ignored;
         auto on = parse_mail_types(v, &ignored);
         if (!on) return on.status();
         for (auto& t : ignored) {
           b.note("--mail-type " + t + " means nothing here (every task of an array is told on its "
                  "own; of the time limit, only reaching it is told)");
         }
         b.request_.spec.notify_on = *on;
         return Status::success();
       }),
  spec("mail-user", 0, A::kRequired, "ADDRESS  where notifications go (default: the submitting user)",
       [](SpecBuilder& b, const std::string& v) -> Status {
         b.request_.spec.notify.clear();
         size_t start = 0;
         while (start <= v.size()) {
           auto comma = v.find(',', start);
           std::string one = v.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
           if (!one.empty()) b.request_.spec.notify.push_back(one);
           start = comma == std::string::npos ? v.size() + 1 : comma + 1;
         }
         return Status::success();
       }),
  spec("notify", 0, A::kRequired,
       "DEST  also notify DEST (a mail address or a webhook URL); on END and FAIL unless --mail-type says",
       [](SpecBuilder& b, const std::string& v) -> Status {
         b.request_.spec.notify.push_back(v);
         b.notify_default_ = true;
         return Status::success();
       }),
  spec("qos", 'q', A::kRequired, "QOS  a quality of service the site configures (priority, limits)",
       [](SpecBuilder& b, const std::string& v) -> Status {
         b.request_.spec.qos = v;
         return Status::success();
       }),
  spec("cpus-per-gpu", 0, A::kRequired, "N  CPUs for each GPU of a node",
       [](SpecBuilder& b, const std::string& v) -> Status {
         auto n = positive_u32("cpus-per-gpu", v);
         if (!n) return n.status();
         b.cpus_per_gpu_ = *n;
         return Status::success();
       }),
  spec("gpus-per-task", 0, A::kRequired, "[TYPE:]N  N GPUs for each task (times the tasks per node)",
       [](SpecBuilder& b, const std::string& v) -> Status {
         auto g = parse_gpu_count(v);
         if (!g) return g.status();
         b.gpus_per_task_ = *g;
         return Status::success();
       }),
  // --- Slurm options that change nothing here: accepted, with a warning ---
  ignored("reservation"), ignored("licenses", 'L'), ignored("time-min"), ignored("propagate"), ignored("profile"),
  ignored("wckey"), ignored("kill-on-invalid-dep"), ignored("hint"), ignored("threads-per-core"),
  ignored("sockets-per-node"), ignored("cores-per-socket"), ignored("distribution", 'm'), ignored("gpu-bind"),
  ignored("gpu-freq"), ignored("cpu-freq"), ignored("mem-bind"), ignored("mincpus"), ignored("tmp"),
  ignored("network"), ignored("power"), ignored("prefer"), ignored("switches"), ignored("acctg-freq"),
  ignored("core-spec", 'S'), ignored("thread-spec"), ignored("tres-per-task"), ignored("delay-boot"),
  ignored("cluster", 'M'), ignored("clusters"), ignored("deadline"), ignored("uid"), ignored("gid"),
  ignored("ntasks-per-core"), ignored("ntasks-per-socket"), ignored("ntasks-per-gpu"), ignored("mcs-label"),
  ignored("container"), ignored("bb"), ignored("bbf"), ignored("extra-node-info", 'B'), ignored("input", 'i'),
  // ... of them, those that take no value.
  ignored("parsable", 0, A::kNone), ignored("spread-job", 0, A::kNone), ignored("use-min-nodes", 0, A::kNone),
  ignored("contiguous", 0, A::kNone), ignored("oversubscribe", 's', A::kNone), ignored("overcommit", 'O', A::kNone),
  ignored("no-kill", 'k', A::kNone), ignored("reboot", 0, A::kNone), ignored("quiet", 'Q', A::kNone),
  ignored("verbose", 'v', A::kNone), ignored("ignore-pbs", 0, A::kNone), ignored("wait-all-nodes", 0, A::kNone),
  ignored("get-user-env", 0, A::kOptional),
  // --- Slurm options Trainyard cannot honour: refused ---
  refused("nodefile", 'F', A::kRequired, "use --nodelist with the names"),
  refused("test-only", 0, A::kNone, "use ty submit --estimate"),
  refused("wait", 'W', A::kNone, "use ty submit --wait on the command line"),
  refused("export-file", 0, A::kRequired, "use --export or --env"),
  refused("batch", 0, A::kRequired, "node features are not supported"),
};

std::span<const OptionDef> OptionTable::get() { return kOptions; }

}  // namespace trainyard::client

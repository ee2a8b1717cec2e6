// ty's job commands: submit, queue, status, cancel, hold, release, logs, wait.
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <map>

#include "commands.h"
#include "format.h"
#include "trainyard/job_spec.h"
#include "util/clock.h"

extern char** environ;

namespace trainyard::ty {
namespace {

// A job a JOB argument named, and whether it came from naming a whole array.
struct Named {
  fb::JobRecordT job;
  bool whole_array = false;
};

// Parses JOB arguments (N, an array id for all its tasks, or ARRAY_INDEX)
// without asking anyone; prints and returns false on a bad one.
bool parse_job_refs(const std::vector<std::string>& texts, std::vector<client::JobRef>* refs) {
  for (auto& t : texts) {
    auto r = client::parse_job_ref(t);
    if (!r) {
      std::cerr << "ty: " << r.status().message() << "\n";
      return false;
    }
    refs->push_back(*r);
  }
  return true;
}

// The jobs that JOB arguments name, in order; an exit code after printing why not.
Result<std::vector<Named>> jobs_named(client::Client& c, const std::vector<client::JobRef>& refs) {
  std::vector<Named> out;
  for (auto& ref : refs) {
    auto jobs = c.jobs_named(ref);
    if (!jobs) return jobs.status();
    bool whole = !ref.index && !(jobs->size() == 1 && jobs->front().job_id == ref.id);
    for (auto& j : *jobs) out.push_back({std::move(j), whole});
  }
  return out;
}

std::string gpus_of(const fb::JobSpecT* spec) {
  if (!spec || spec->gpus_per_node == 0) return "0";
  uint64_t total = uint64_t{spec->gpus_per_node} * std::max<uint32_t>(1, spec->nodes);
  return std::to_string(total) + (spec->gpu_type.empty() ? "" : "x" + spec->gpu_type);
}

std::string join(const std::vector<std::string>& parts, const std::string& sep) {
  std::string out;
  for (auto& p : parts) out += (out.empty() ? "" : sep) + p;
  return out;
}

std::string elapsed_of(const fb::JobRecordT& j) {
  if (j.start_time_ns <= 0) return "0:00";
  int64_t end = j.end_time_ns > 0 ? j.end_time_ns : SystemClock().now_ns();
  return format_duration((end - j.start_time_ns) / 1'000'000'000);
}

// One line on stderr each time the jobs' states change, while waiting.
class ProgressLine {
 public:
  void operator()(const std::vector<fb::JobRecordT>& jobs) {
    std::map<std::string, int> counts;
    for (auto& j : jobs) counts[state_name(j.state)]++;
    std::string line;
    for (auto& [state, n] : counts) line += (line.empty() ? "" : ", ") + std::to_string(n) + " " + state;
    if (line == last_) return;
    last_ = line;
    std::cerr << "ty: " << jobs.size() << (jobs.size() == 1 ? " job: " : " jobs: ") << line << std::endl;
  }

 private:
  std::string last_;
};

// Waits for `ids`, reports failures; 0 only when every job succeeded.
int wait_for(client::Client& c, const std::vector<uint64_t>& ids, int64_t timeout_s, bool json) {
  ProgressLine progress;
  auto done = c.wait(ids, std::chrono::seconds(timeout_s), std::ref(progress));
  if (!done) return fail(done.status());
  int rc = kExitOk;
  nlohmann::json out = nlohmann::json::array();
  for (auto& j : *done) {
    if (j.state != fb::JobState::Succeeded) {
      rc = kExitFailed;
      std::cerr << "ty: job " << client::job_name_of(j) << " " << state_name(j.state);
      if (j.state == fb::JobState::Failed) std::cerr << " (exit code " << j.exit_code << ")";
      if (!j.reason.empty()) std::cerr << ": " << j.reason;
      std::cerr << "\n";
    }
    out.push_back(to_json(j));
  }
  if (json) std::cout << out.dump(2) << "\n";
  return rc;
}

void print_status(const fb::JobRecordT& j) {
  const fb::JobSpecT empty;
  const fb::JobSpecT& s = j.spec ? *j.spec : empty;
  std::cout << "Job " << j.job_id << (s.name.empty() ? "" : " (" + s.name + ")") << ": " << state_name(j.state);
  if (!j.reason.empty()) std::cout << " — " << j.reason;
  std::cout << "\n";
  Table t({"", ""});
  t.add({"user", s.user});
  t.add({"account", s.account.empty() ? "-" : s.account});
  t.add({"partition", s.partition.empty() ? "-" : s.partition});
  if (!s.experiment.empty()) t.add({"experiment", s.experiment});
  std::string command = join(s.command, " ");
  if (command.size() > 200) command = command.substr(0, 197) + "...";
  for (auto& c : command) {
    if (c == '\n') c = ' ';
  }
  t.add({"command", command});
  t.add({"workdir", s.workdir});
  std::string res = std::to_string(std::max<uint32_t>(1, s.nodes)) + (s.nodes > 1 ? " nodes" : " node") + ", " +
                    std::to_string(s.gpus_per_node) + " GPU" + (s.gpus_per_node == 1 ? "" : "s") +
                    (s.gpu_type.empty() ? "" : " (" + s.gpu_type + ")") + (s.nodes > 1 ? " per node" : "") + ", " +
                    std::to_string(std::max<uint32_t>(1, s.cpus)) + " CPUs, " +
                    (s.memory_mb ? std::to_string(s.memory_mb) + " MB" : std::string("memory not limited"));
  t.add({"resources", res});
  t.add({"time limit", s.time_limit_s ? format_duration(static_cast<int64_t>(s.time_limit_s)) : "-"});
  if (j.array_job_id) t.add({"array", std::to_string(j.array_job_id) + " index " + std::to_string(j.array_index)});
  if (!j.nodes.empty()) t.add({"nodes", join(j.nodes, ",")});
  if (!j.gpu_indices.empty()) {
    std::vector<std::string> g;
    for (auto i : j.gpu_indices) g.push_back(std::to_string(i));
    t.add({"GPUs", join(g, ",")});
  }
  if (client::is_terminal(j.state)) t.add({"exit code", std::to_string(j.exit_code)});
  t.add({"attempt", std::to_string(j.attempt)});
  if (j.preemptions) t.add({"preemptions", std::to_string(j.preemptions)});
  if (j.state == fb::JobState::Pending || j.state == fb::JobState::Held) {
    char b[128];
    std::snprintf(b, sizeof b, "%.1f (tier %ld, fair share %.3f, age %.3f)", j.priority_score,
                  static_cast<long>(j.priority_tier), j.fairshare_factor, j.age_factor);
    t.add({"priority", b});
    if (j.expected_start_ns > 0) t.add({"expected start", format_time(j.expected_start_ns)});
  }
  t.add({"submitted", format_time(j.submit_time_ns)});
  t.add({"started", format_time(j.start_time_ns)});
  t.add({"ended", format_time(j.end_time_ns)});
  if (j.start_time_ns > 0) t.add({"elapsed", elapsed_of(j)});
  std::string rendered = t.render();
  std::cout << rendered.substr(rendered.find('\n') + 1);  // no header row
  if (!j.history.empty()) {
    std::cout << "\nHistory:\n";
    Table h({"TIME", "STATE", "REASON"});
    for (auto& e : j.history) h.add({format_time(e->time_ns), state_name(e->to), e->reason});
    std::cout << h.render();
  }
}

// An array's tasks, one line each, as `ty status ARRAY` shows them.
void print_array_status(uint64_t array, const std::vector<fb::JobRecordT>& tasks) {
  std::map<std::string, int> counts;
  for (auto& j : tasks) counts[state_name(j.state)]++;
  std::string summary;
  for (auto& [state, n] : counts) summary += (summary.empty() ? "" : ", ") + std::to_string(n) + " " + state;
  const fb::JobSpecT* s = tasks.front().spec.get();
  std::cout << "Array " << array << (s && !s->name.empty() ? " (" + s->name + ")" : "") << ": " << tasks.size()
            << " tasks, " << summary << "\n";
  Table t({"JOBID", "ID", "STATE", "EXIT", "ELAPSED", "NODES(REASON)"});
  for (auto& j : tasks) {
    std::string where = j.nodes.empty() ? (j.reason.empty() ? "" : "(" + j.reason + ")") : join(j.nodes, ",");
    t.add({client::job_name_of(j), std::to_string(j.job_id), state_name(j.state),
           client::is_terminal(j.state) ? std::to_string(j.exit_code) : "", elapsed_of(j), where});
  }
  std::cout << t.render();
}

}  // namespace

client::SubmitContext submit_context(const Context& ctx) {
  client::SubmitContext sctx;
  char cwd[4096];
  if (getcwd(cwd, sizeof cwd)) sctx.cwd = cwd;
  sctx.user = ctx.user;
  char host[256] = {0};
  if (gethostname(host, sizeof host - 1) == 0) sctx.host = host;
  for (char** e = environ; e && *e; ++e) {
    std::string kv(*e);
    auto eq = kv.find('=');
    if (eq != std::string::npos) sctx.env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return sctx;
}

std::string submit_help() {
  return "Submit a job: ty submit [OPTIONS] (SCRIPT [ARGS...] | COMMAND [ARGS...] | --wrap CMD | --file SPEC)\n"
         "\n"
         "A batch script (a file starting with #! or named *.sh/*.sbatch/*.slurm) runs unchanged: its #SBATCH\n"
         "(or #TY) directives are read up to its first command, options given here override them, and it runs\n"
         "with bash in the submit directory (its text as of now). Anything else is a command run as given.\n"
         "Options take '--opt value', '--opt=value', '-J name' or '-Jname', as with sbatch.\n"
         "\n"
         "ty options:\n"
         "  --file SPEC                   a TOML or JSON job spec (fields of the JobSpec; options override it)\n"
         "  --estimate                    show the cost estimate (billing) before submitting\n"
         "  --wait                        wait for the job(s) to end; exit 0 only if all succeeded\n"
         "  --parsable                    print only the job id(s)\n"
         "  --json                        print the ids as JSON\n"
         "  --scheduler/--billing/--bus/--config/--request-timeout   as for every ty command\n"
         "\n"
         "Job options:\n" +
         client::spec_options_help() +
         "\n"
         "Exit codes: 0 submitted (with --wait: all succeeded), 1 failed, 2 bad options or spec, 3 a service is\n"
         "unavailable.\n";
}

int run_submit(Context& ctx, const std::vector<std::string>& args) {
  for (auto& a : args) {
    if (a == "--") break;
    if (a == "-h" || a == "--help") {
      std::cout << submit_help();
      return kExitOk;
    }
  }
  using client::ExtraOption;
  using client::OptionArg;
  std::vector<ExtraOption> extras = {
      {"json", 0, OptionArg::kNone},           {"wait", 0, OptionArg::kNone},
      {"estimate", 0, OptionArg::kNone},       {"parsable", 0, OptionArg::kNone},
      {"scheduler", 0, OptionArg::kRequired},  {"broker", 0, OptionArg::kRequired},
      {"metrics", 0, OptionArg::kRequired},    {"billing", 0, OptionArg::kRequired},
      {"bus", 0, OptionArg::kRequired},        {"config", 0, OptionArg::kRequired},
      {"request-timeout", 0, OptionArg::kRequired},
  };
  auto built = client::build_job_request(args, submit_context(ctx), extras);
  if (!built) {
    std::cerr << "ty submit: " << built.status().message() << "\n";
    return kExitUsage;
  }
  auto& x = built->extras;
  for (auto [name, field] : {std::pair{"scheduler", &ctx.scheduler}, {"broker", &ctx.broker}, {"metrics", &ctx.metrics},
                             {"billing", &ctx.billing}, {"bus", &ctx.bus}, {"config", &ctx.config}}) {
    if (x.count(name)) *field = x[name];
  }
  if (x.count("request-timeout")) {
    try {
      ctx.timeout_ms = std::stoi(x["request-timeout"]);
    } catch (const std::exception&) {
      std::cerr << "ty submit: --request-timeout '" << x["request-timeout"] << "' is not a number of milliseconds\n";
      return kExitUsage;
    }
  }
  for (auto& w : built->request.warnings) {
    std::cerr << "ty: warning: " << (w.where.empty() ? "" : w.where + ": ") << w.message << "\n";
  }
  auto* c = ctx.client();
  if (!c) return kExitUsage;
  const auto& spec = built->request.spec;
  if (x.count("estimate")) {
    auto e = c->estimate(spec);
    if (!e) return fail(e.status());
    std::cerr << "Estimated cost: " << format_money(e->cost_micros) << " " << e->currency << " (the whole time limit, "
              << (spec.time_limit_s ? format_duration(static_cast<int64_t>(spec.time_limit_s)) : "none given")
              << ", at current prices" << (spec.array.empty() ? "" : ", per array task") << ")\n";
  }
  auto r = c->submit(spec);
  if (!r) return fail(r.status());
  if (built->request.hold) {
    for (auto id : r->job_ids) {
      if (auto s = c->hold(id); !s) std::cerr << "ty: warning: job " << id << " could not be held: " << s.message() << "\n";
    }
  }
  if (x.count("json")) {
    std::cout << nlohmann::json{{"job_ids", r->job_ids}, {"array_job_id", r->array_job_id}}.dump() << "\n";
  } else if (x.count("parsable")) {
    for (auto id : r->job_ids) std::cout << id << "\n";
  } else if (r->job_ids.size() == 1) {
    std::cout << "Submitted job " << r->job_ids.front() << "\n";
  } else if (!r->job_ids.empty()) {
    std::cout << "Submitted array job " << r->array_job_id << ": " << r->job_ids.size() << " jobs, "
              << r->job_ids.front() << " to " << r->job_ids.back() << "\n";
  }
  std::cout.flush();
  if (x.count("wait")) return wait_for(*c, r->job_ids, 0, false);
  return kExitOk;
}

void add_job_commands(CLI::App& app, Context& ctx, Action& action) {
  // submit is parsed by run_submit; this entry is for `ty --help`.
  app.add_subcommand("submit", "Submit a job: flags, a spec file (--file) or an #SBATCH batch script (ty submit --help)")
      ->allow_extras();

  {
    auto* cmd = app.add_subcommand("queue", "List jobs (default: every user's pending, held and running jobs)");
    auto all = std::make_shared<bool>(false), me = std::make_shared<bool>(false),
         json = std::make_shared<bool>(false);
    auto user = std::make_shared<std::string>(), account = std::make_shared<std::string>(),
         experiment = std::make_shared<std::string>();
    auto states = std::make_shared<std::vector<std::string>>();
    auto limit = std::make_shared<uint32_t>(1000);
    auto factors = std::make_shared<bool>(false);
    cmd->add_flag("-a,--all", *all, "Include finished jobs");
    cmd->add_flag("-l,--long", *factors,
                  "Show each job's priority factors (tier, fair share, age) and expected start, as sprio does");
    cmd->add_option("-u,--user", *user, "Only this user's jobs");
    cmd->add_flag("--me", *me, "Only my jobs");
    cmd->add_option("-A,--account", *account, "Only this account's jobs");
    cmd->add_option("--experiment", *experiment, "Only this experiment's jobs");
    cmd->add_option("-t,--state", *states, "Only jobs in these states (pending,running,... comma-separated)")
        ->delimiter(',');
    cmd->add_option("--limit", *limit, "At most this many jobs (default 1000)");
    cmd->add_flag("--json", *json, "Print JSON");
    cmd->callback([=, &ctx, &action] {
      action = [=, &ctx]() -> int {
        client::JobFilter f;
        f.user = *me ? ctx.user : *user;
        f.account = *account;
        f.experiment = *experiment;
        f.limit = *limit;
        for (auto& s : *states) {
          fb::JobState st;
          if (!parse_state(s, &st)) {
            std::cerr << "ty queue: unknown state '" << s << "' (pending, held, scheduled, running, succeeded, failed, "
                      << "cancelled, timed_out, node_failure)\n";
            return kExitUsage;
          }
          f.states.push_back(st);
        }
        if (f.states.empty() && !*all) {
          f.states = {fb::JobState::Pending, fb::JobState::Held, fb::JobState::Scheduled, fb::JobState::Running};
        }
        auto* c = ctx.client();
        if (!c) return kExitUsage;
        auto jobs = c->list(f);
        if (!jobs) return fail(jobs.status());
        if (*json) {
          nlohmann::json out = nlohmann::json::array();
          for (auto& j : *jobs) out.push_back(to_json(j));
          std::cout << out.dump(2) << "\n";
          return kExitOk;
        }
        std::vector<std::string> head = {"JOBID", "NAME", "USER", "ACCOUNT", "PARTITION", "STATE", "GPUS", "TIME", "PRIORITY"};
        if (*factors) head.insert(head.end(), {"TIER", "FAIRSHARE", "AGE", "EXP.START"});
        head.push_back("NODES(REASON)");
        Table t(head);
        auto fixed = [](double v, int digits) {
          char b[32];
          std::snprintf(b, sizeof b, "%.*f", digits, v);
          return std::string(b);
        };
        for (auto& j : *jobs) {
          const fb::JobSpecT* s = j.spec.get();
          bool waiting = j.state == fb::JobState::Pending || j.state == fb::JobState::Held;
          std::string where = j.nodes.empty() ? (j.reason.empty() ? "" : "(" + j.reason + ")") : join(j.nodes, ",");
          std::vector<std::string> row = {std::to_string(j.job_id), s ? s->name : "", s ? s->user : "",
                                          s ? s->account : "", s ? s->partition : "", state_name(j.state),
                                          gpus_of(s), elapsed_of(j), waiting ? fixed(j.priority_score, 1) : ""};
          if (*factors) {
            row.push_back(waiting ? std::to_string(j.priority_tier) : "");
            row.push_back(waiting ? fixed(j.fairshare_factor, 3) : "");
            row.push_back(waiting ? fixed(j.age_factor, 3) : "");
            row.push_back(waiting && j.expected_start_ns > 0 ? format_time(j.expected_start_ns) : "");
          }
          row.push_back(where);
          t.add(row);
        }
        std::cout << t.render();
        return kExitOk;
      };
    });
  }

  {
    auto* cmd = app.add_subcommand("status", "Show a job: state, reason, nodes, GPUs and history");
    auto job = std::make_shared<std::string>();
    auto json = std::make_shared<bool>(false);
    cmd->add_option("JOB", *job, "Job id, array id (all its tasks) or ARRAYID_INDEX")->required();
    cmd->add_flag("--json", *json, "Print JSON (an array's tasks: a list)");
    cmd->callback([=, &ctx, &action] {
      action = [=, &ctx]() -> int {
        std::vector<client::JobRef> refs;
        if (!parse_job_refs({*job}, &refs)) return kExitUsage;
        auto* c = ctx.client();
        if (!c) return kExitUsage;
        auto r = c->jobs_named(refs[0]);
        if (!r) return fail(r.status());
        bool array = !refs[0].index && (r->size() > 1 || r->front().job_id != refs[0].id);
        if (*json) {
          if (!array) {
            std::cout << to_json(r->front()).dump(2) << "\n";
          } else {
            nlohmann::json out = nlohmann::json::array();
            for (auto& j : *r) out.push_back(to_json(j));
            std::cout << out.dump(2) << "\n";
          }
        } else if (!array) {
          print_status(r->front());
        } else {
          print_array_status(refs[0].id, *r);
        }
        return kExitOk;
      };
    });
  }

  // cancel, hold, release: the same shape.
  struct Simple {
    const char* name;
    const char* help;
    const char* done;
    std::function<Status(client::Client&, uint64_t, const std::string&)> fn;
  };
  for (auto& s : std::vector<Simple>{
           {"cancel", "Cancel jobs (running ones get SIGTERM, their grace period, then SIGKILL)", "Cancelled",
            [](client::Client& c, uint64_t id, const std::string& reason) { return c.cancel(id, reason); }},
           {"hold", "Keep pending jobs from starting", "Held",
            [](client::Client& c, uint64_t id, const std::string&) { return c.hold(id); }},
           {"release", "Let held jobs start", "Released",
            [](client::Client& c, uint64_t id, const std::string&) { return c.release(id); }}}) {
    auto* cmd = app.add_subcommand(s.name, s.help);
    auto jobs = std::make_shared<std::vector<std::string>>();
    auto reason = std::make_shared<std::string>();
    cmd->add_option("JOB", *jobs, "Job ids, array ids (all their tasks) or ARRAYID_INDEX")->required();
    if (std::string(s.name) == "cancel") cmd->add_option("--reason", *reason, "Why (shown in the job's history)");
    cmd->callback([=, &ctx, &action] {
      action = [=, &ctx]() -> int {
        std::vector<client::JobRef> refs;
        if (!parse_job_refs(*jobs, &refs)) return kExitUsage;
        auto* c = ctx.client();
        if (!c) return kExitUsage;
        std::string verb = s.name;
        int rc = kExitOk;
        // Each JOB on its own: one that does not exist is reported and the others still go.
        std::vector<Named> named;
        for (auto& ref : refs) {
          auto one = jobs_named(*c, {ref});
          if (!one) {
            rc = std::max(rc, fail(one.status()));
            if (one.status().code() == ErrorCode::Unavailable) return rc;
            continue;
          }
          for (auto& n : *one) named.push_back(std::move(n));
        }
        for (auto& n : named) {
          // A whole array means the tasks the verb applies to, as scancel
          // does: cancel the ones not ended, hold the pending, release the held.
          auto state = n.job.state;
          bool applies = verb == "cancel" ? !client::is_terminal(state)
                         : verb == "hold" ? state == fb::JobState::Pending
                                          : state == fb::JobState::Held;
          if (n.whole_array && !applies) continue;
          auto st = s.fn(*c, n.job.job_id, *reason);
          std::string name = client::job_name_of(n.job);
          if (st) {
            std::cout << s.done << " job " << name << "\n";
          } else {
            rc = std::max(rc, fail(Status(st.code(), "job " + name + ": " + st.message())));
            if (st.code() == ErrorCode::Unavailable) break;
          }
        }
        return rc;
      };
    });
  }

  {
    auto* cmd = app.add_subcommand("logs", "Print a job's output (stdout, or stderr), from the node that ran it");
    auto job = std::make_shared<std::string>();
    auto follow = std::make_shared<bool>(false), err = std::make_shared<bool>(false);
    auto attempt = std::make_shared<uint32_t>(0);
    cmd->add_option("JOB", *job, "Job id or ARRAYID_INDEX")->required();
    cmd->add_flag("-f,--follow", *follow, "Keep printing until the job ends (waits for a pending job to start)");
    cmd->add_flag("--stderr", *err, "Print stderr instead of stdout");
    cmd->add_option("--attempt", *attempt, "Which run of a requeued job (default: the latest)");
    cmd->callback([=, &ctx, &action] {
      action = [=, &ctx]() -> int {
        std::vector<client::JobRef> refs;
        if (!parse_job_refs({*job}, &refs)) return kExitUsage;
        auto* c = ctx.client();
        if (!c) return kExitUsage;
        uint64_t id = refs[0].id;
        if (refs[0].index) {
          auto named = c->jobs_named(refs[0]);
          if (!named) return fail(named.status());
          id = named->front().job_id;
        }
        client::LogOptions o;
        o.follow = *follow;
        o.stderr_stream = *err;
        o.attempt = *attempt;
        auto s = c->logs(id, o, [](std::string_view data) {
          std::fwrite(data.data(), 1, data.size(), stdout);
          std::fflush(stdout);
        });
        return s ? kExitOk : fail(s);
      };
    });
  }

  {
    auto* cmd = app.add_subcommand("wait", "Wait for jobs to end (progress on stderr); exit 0 only if all succeeded");
    auto jobs = std::make_shared<std::vector<std::string>>();
    auto timeout = std::make_shared<int64_t>(0);
    auto json = std::make_shared<bool>(false);
    cmd->add_option("JOB", *jobs, "Job ids, array ids (all their tasks) or ARRAYID_INDEX")->required();
    cmd->add_option("--timeout", *timeout, "Give up after this many seconds (exit 1; default: no limit)");
    cmd->add_flag("--json", *json, "Print the final records as JSON");
    cmd->callback([=, &ctx, &action] {
      action = [=, &ctx]() -> int {
        std::vector<client::JobRef> refs;
        if (!parse_job_refs(*jobs, &refs)) return kExitUsage;
        auto* c = ctx.client();
        if (!c) return kExitUsage;
        auto named = jobs_named(*c, refs);
        if (!named) return fail(named.status());
        std::vector<uint64_t> ids;
        for (auto& n : *named) ids.push_back(n.job.job_id);
        return wait_for(*c, ids, *timeout, *json);
      };
    });
  }
}

}  // namespace trainyard::ty

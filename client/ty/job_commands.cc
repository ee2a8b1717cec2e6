// ty's job commands other than submit: queue, status, cancel, hold, release, requeue,
// logs and wait. Each is an add_<command>() that registers its flags and an
// <command>_action() that runs it.
#include <cstdio>
#include <iostream>

#include "format.h"
#include "jobs.h"

namespace trainyard::ty {
namespace {

using jobs::Named;

// ---- ty queue ----

struct QueueFlags {
  bool all = false, me = false, json = false, factors = false;
  std::string user, account, experiment;
  std::vector<std::string> states;
  uint32_t limit = 1000;
};

std::string fixed(double v, int digits) {
  char b[32];
  std::snprintf(b, sizeof b, "%.*f", digits, v);
  return std::string(b);
}

void print_queue(const std::vector<fb::JobRecordT>& list, bool factors) {
  std::vector<std::string> head = {"JOBID", "NAME", "USER", "ACCOUNT", "PARTITION", "STATE", "GPUS", "TIME", "PRIORITY"};
  if (factors) head.insert(head.end(), {"TIER", "FAIRSHARE", "AGE", "EXP.START"});
  head.push_back("NODES(REASON)");
  Table t(head);
  for (auto& j : list) {
    const fb::JobSpecT* s = j.spec.get();
    bool waiting = j.state == fb::JobState::Pending || j.state == fb::JobState::Held;
    std::string where = j.nodes.empty() ? (j.reason.empty() ? "" : "(" + j.reason + ")") : jobs::join(j.nodes, ",");
    std::vector<std::string> row = {std::to_string(j.job_id), s ? s->name : "", s ? s->user : "",
                                    s ? s->account : "", s ? s->partition : "", state_name(j.state),
                                    jobs::gpus_of(s), jobs::elapsed_of(j), waiting ? fixed(j.priority_score, 1) : ""};
    if (factors) {
      row.push_back(waiting ? std::to_string(j.priority_tier) : "");
      row.push_back(waiting ? fixed(j.fairshare_factor, 3) : "");
      row.push_back(waiting ? fixed(j.age_factor, 3) : "");
      row.push_back(waiting && j.expected_start_ns > 0 ? format_time(j.expected_start_ns) : "");
    }
    row.push_back(where);
    t.add(row);
  }
  std::cout << t.render();
}

int queue_action(Context& ctx, const QueueFlags& q) {
  client::JobFilter f;
  f.user = q.me ? ctx.user : q.user;
  f.account = q.account;
  f.experiment = q.experiment;
  f.limit = q.limit;
  for (auto& s : q.states) {
    fb::JobState st;
    if (!parse_state(s, &st)) {
      std::cerr << "ty queue: unknown state '" << s << "' (pending, held, scheduled, running, succeeded, failed, "
                << "cancelled, timed_out, node_failure)\n";
      return kExitUsage;
    }
    f.states.push_back(st);
  }
  if (f.states.empty() && !q.all) {
    f.states = {fb::JobState::Pending, fb::JobState::Held, fb::JobState::Scheduled, fb::JobState::Running};
  }
  auto* c = ctx.client();
  if (!c) return kExitUsage;
  auto list = c->list(f);
  if (!list) return fail(list.status());
  if (q.json) {
    nlohmann::json out = nlohmann::json::array();
    for (auto& j : *list) out.push_back(to_json(j));
    std::cout << out.dump(2) << "\n";
    return kExitOk;
  }
  print_queue(*list, q.factors);
  return kExitOk;
}

void add_queue(CLI::App& app, Context& ctx, Action& action) {
  auto* cmd = app.add_subcommand("queue", "List jobs (default: every user's pending, held and running jobs)");
  auto f = std::make_shared<QueueFlags>();
  cmd->add_flag("-a,--all", f->all, "Include finished jobs");
  cmd->add_flag("-l,--long", f->factors,
                "Show each job's priority factors (tier, fair share, age) and expected start, as sprio does");
  cmd->add_option("-u,--user", f->user, "Only this user's jobs");
  cmd->add_flag("--me", f->me, "Only my jobs");
  cmd->add_option("-A,--account", f->account, "Only this account's jobs");
  cmd->add_option("--experiment", f->experiment, "Only this experiment's jobs");
  cmd->add_option("-t,--state", f->states, "Only jobs in these states (pending,running,... comma-separated)")
      ->delimiter(',');
  cmd->add_option("--limit", f->limit, "At most this many jobs (default 1000)");
  cmd->add_flag("--json", f->json, "Print JSON");
  cmd->callback([f, &ctx, &action] { action = [f, &ctx] { return queue_action(ctx, *f); }; });
}

// ---- ty status JOB ----

int status_action(Context& ctx, const std::string& job, bool json) {
  std::vector<client::JobRef> refs;
  if (!jobs::parse_job_refs({job}, &refs)) return kExitUsage;
  auto* c = ctx.client();
  if (!c) return kExitUsage;
  auto r = c->jobs_named(refs[0]);
  if (!r) return fail(r.status());
  bool array = !refs[0].index && (r->size() > 1 || r->front().job_id != refs[0].id);
  if (json) {
    if (!array) {
      std::cout << to_json(r->front()).dump(2) << "\n";
    } else {
      nlohmann::json out = nlohmann::json::array();
      for (auto& j : *r) out.push_back(to_json(j));
      std::cout << out.dump(2) << "\n";
    }
  } else if (!array) {
    jobs::print_status(r->front());
  } else {
    jobs::print_array_status(refs[0].id, *r);
  }
  return kExitOk;
}

struct StatusFlags {
  std::string job;
  bool json = false;
};

void add_status(CLI::App& app, Context& ctx, Action& action) {
  auto* cmd = app.add_subcommand("status", "Show a job: state, reason, nodes, GPUs and history");
  auto f = std::make_shared<StatusFlags>();
  cmd->add_option("JOB", f->job, "Job id, array id (all its tasks) or ARRAYID_INDEX")->required();
  cmd->add_flag("--json", f->json, "Print JSON (an array's tasks: a list)");
  cmd->callback([f, &ctx, &action] { action = [f, &ctx] { return status_action(ctx, f->job, f->json); }; });
}

// ---- ty cancel, hold, release, requeue: the same shape ----

struct Verb {
  const char* name;
  const char* help;
  const char* done;
  std::function<Status(client::Client&, uint64_t, const std::string&)> fn;
};

struct VerbFlags {
  std::vector<std::string> jobs;
  std::string reason;
};

// Each JOB on its own: one that does not exist is reported and the others still go.
Result<std::vector<Named>> each_named(client::Client& c, const std::vector<client::JobRef>& refs, int* rc) {
  std::vector<Named> named;
  for (auto& ref : refs) {
    auto one = jobs::jobs_named(c, {ref});
    if (!one) {
      *rc = std::max(*rc, fail(one.status()));
      if (one.status().code() == ErrorCode::Unavailable) return one.status();
      continue;
    }
    for (auto& n : *one) named.push_back(std::move(n));
  }
  return named;
}

int verb_action(Context& ctx, const Verb& v, const VerbFlags& f) {
  std::vector<client::JobRef> refs;
  if (!jobs::parse_job_refs(f.jobs, &refs)) return kExitUsage;
  auto* c = ctx.client();
  if (!c) return kExitUsage;
  std::string verb = v.name;
  int rc = kExitOk;
  auto named = each_named(*c, refs, &rc);
  if (!named) return rc;
  for (auto& n : *named) {
    // A whole array means the tasks the verb applies to, as scancel
    // does: cancel the ones not ended, hold the pending, release the held.
    auto state = n.job.state;
    bool applies = verb == "cancel"    ? !client::is_terminal(state)
                   : verb == "hold"    ? state == fb::JobState::Pending
                   : verb == "requeue" ? state == fb::JobState::Running || state == fb::JobState::Scheduled
                                       : state == fb::JobState::Held;
    if (n.whole_array && !applies) continue;
    auto st = v.fn(*c, n.job.job_id, f.reason);
    std::string name = client::job_name_of(n.job);
    if (st) {
      std::cout << v.done << " job " << name << "\n";
    } else {
      rc = std::max(rc, fail(Status(st.code(), "job " + name + ": " + st.message())));
      if (st.code() == ErrorCode::Unavailable) break;
    }
  }
  return rc;
}

void add_verb(CLI::App& app, Context& ctx, Action& action, const Verb& v) {
  auto* cmd = app.add_subcommand(v.name, v.help);
  auto f = std::make_shared<VerbFlags>();
  cmd->add_option("JOB", f->jobs, "Job ids, array ids (all their tasks) or ARRAYID_INDEX")->required();
  if (std::string(v.name) == "cancel") cmd->add_option("--reason", f->reason, "Why (shown in the job's history)");
  cmd->callback([v, f, &ctx, &action] { action = [v, f, &ctx] { return verb_action(ctx, v, *f); }; });
}

void add_cancel_hold_release(CLI::App& app, Context& ctx, Action& action) {
  add_verb(app, ctx, action,
           {"cancel", "Cancel jobs (running ones get SIGTERM, their grace period, then SIGKILL)", "Cancelled",
            [](client::Client& c, uint64_t id, const std::string& reason) { return c.cancel(id, reason); }});
  add_verb(app, ctx, action,
           {"hold", "Keep pending jobs from starting", "Held",
            [](client::Client& c, uint64_t id, const std::string&) { return c.hold(id); }});
  add_verb(app, ctx, action,
           {"release", "Let held jobs start", "Released",
            [](client::Client& c, uint64_t id, const std::string&) { return c.release(id); }});
  add_verb(app, ctx, action,
           {"requeue", "Stop running jobs and queue them again under the same id (a new attempt, no retry spent)",
            "Requeued", [](client::Client& c, uint64_t id, const std::string&) { return c.requeue(id); }});
}

// ---- ty logs JOB ----

struct LogsFlags {
  std::string job;
  bool follow = false, err = false;
  uint32_t attempt = 0;
};

int logs_action(Context& ctx, const LogsFlags& f) {
  std::vector<client::JobRef> refs;
  if (!jobs::parse_job_refs({f.job}, &refs)) return kExitUsage;
  auto* c = ctx.client();
  if (!c) return kExitUsage;
  uint64_t id = refs[0].id;
  if (refs[0].index) {
    auto named = c->jobs_named(refs[0]);
    if (!named) return fail(named.status());
    id = named->front().job_id;
  }
  client::LogOptions o;
  o.follow = f.follow;
  o.stderr_stream = f.err;
  o.attempt = f.attempt;
  auto s = c->logs(id, o, [](std::string_view data) {
    std::fwrite(data.data(), 1, data.size(), stdout);
    std::fflush(stdout);
  });
  return s ? kExitOk : fail(s);
}

void add_logs(CLI::App& app, Context& ctx, Action& action) {
  auto* cmd = app.add_subcommand("logs", "Print a job's output (stdout, or stderr), from the node that ran it");
  auto f = std::make_shared<LogsFlags>();
  cmd->add_option("JOB", f->job, "Job id or ARRAYID_INDEX")->required();
  cmd->add_flag("-f,--follow", f->follow, "Keep printing until the job ends (waits for a pending job to start)");
  cmd->add_flag("--stderr", f->err, "Print stderr instead of stdout");
  cmd->add_option("--attempt", f->attempt, "Which run of a requeued job (default: the latest)");
  cmd->callback([f, &ctx, &action] { action = [f, &ctx] { return logs_action(ctx, *f); }; });
}

// ---- ty wait JOB... ----

struct WaitFlags {
  std::vector<std::string> jobs;
  int64_t timeout = 0;
  bool json = false;
};

int wait_action(Context& ctx, const WaitFlags& f) {
  std::vector<client::JobRef> refs;
  if (!jobs::parse_job_refs(f.jobs, &refs)) return kExitUsage;
  auto* c = ctx.client();
  if (!c) return kExitUsage;
  auto named = jobs::jobs_named(*c, refs);
  if (!named) return fail(named.status());
  std::vector<uint64_t> ids;
  for (auto& n : *named) ids.push_back(n.job.job_id);
  return jobs::wait_for(*c, ids, f.timeout, f.json);
}

void add_wait(CLI::App& app, Context& ctx, Action& action) {
  auto* cmd = app.add_subcommand("wait", "Wait for jobs to end (progress on stderr); exit 0 only if all succeeded");
  auto f = std::make_shared<WaitFlags>();
  cmd->add_option("JOB", f->jobs, "Job ids, array ids (all their tasks) or ARRAYID_INDEX")->required();
  cmd->add_option("--timeout", f->timeout, "Give up after this many seconds (exit 1; default: no limit)");
  cmd->add_flag("--json", f->json, "Print the final records as JSON");
  cmd->callback([f, &ctx, &action] { action = [f, &ctx] { return wait_action(ctx, *f); }; });
}

}  // namespace

void add_job_commands(CLI::App& app, Context& ctx, Action& action) {
  // submit is parsed by run_submit; this entry is for `ty --help`.
  app.add_subcommand("submit", "Submit a job: flags, a spec file (--file) or an #SBATCH batch script (ty submit --help)")
      ->allow_extras();
  add_queue(app, ctx, action);
  add_status(app, ctx, action);
  add_cancel_hold_release(app, ctx, action);
  add_logs(app, ctx, action);
  add_wait(app, ctx, action);
}

}  // namespace trainyard::ty

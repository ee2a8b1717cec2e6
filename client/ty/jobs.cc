// ty submit (flags, a spec file or an #SBATCH batch script), what a
// submission depends on, and reading JOB arguments (jobs.h).
#include <time.h>
#include <unistd.h>

#include <iostream>
#include <map>

#include "format.h"
#include "jobs.h"
#include "trainyard/job_spec.h"

extern char** environ;

namespace trainyard::ty {

namespace jobs {

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

}  // namespace jobs

client::SubmitContext submit_context(const Context& ctx) {
  client::SubmitContext sctx;
  char cwd[4096];
  if (getcwd(cwd, sizeof cwd)) sctx.cwd = cwd;
  sctx.user = ctx.user;
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);
  sctx.now_ns = static_cast<int64_t>(now.tv_sec) * 1'000'000'000 + now.tv_nsec;
  struct tm local{};
  if (::localtime_r(&now.tv_sec, &local)) sctx.utc_offset_s = local.tm_gmtoff;
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

namespace {

// The endpoint flags ty submit takes among the job's options (--scheduler,
// --request-timeout...); false after printing why one is bad.
bool apply_endpoint_flags(Context& ctx, std::map<std::string, std::string>& x) {
  for (auto [name, field] : {std::pair{"scheduler", &ctx.scheduler}, {"broker", &ctx.broker}, {"metrics", &ctx.metrics},
                             {"billing", &ctx.billing}, {"bus", &ctx.bus}, {"config", &ctx.config}}) {
    if (x.count(name)) *field = x[name];
  }
  if (x.count("request-timeout")) {
    try {
      ctx.timeout_ms = std::stoi(x["request-timeout"]);
    } catch (const std::exception&) {
      std::cerr << "ty submit: --request-timeout '" << x["request-timeout"] << "' is not a number of milliseconds\n";
      return false;
    }
  }
  return true;
}

void print_submitted(const client::SubmitResult& r, bool json, bool parsable) {
  if (json) {
    std::cout << nlohmann::json{{"job_ids", r.job_ids}, {"array_job_id", r.array_job_id}}.dump() << "\n";
  } else if (parsable) {
    for (auto id : r.job_ids) std::cout << id << "\n";
  } else if (r.job_ids.size() == 1) {
    std::cout << "Submitted job " << r.job_ids.front() << "\n";
  } else if (!r.job_ids.empty()) {
    std::cout << "Submitted array job " << r.array_job_id << ": " << r.job_ids.size() << " jobs, "
              << r.job_ids.front() << " to " << r.job_ids.back() << "\n";
  }
  std::cout.flush();
}

}  // namespace

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
  if (!apply_endpoint_flags(ctx, x)) return kExitUsage;
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
    // Where no owned node has its GPUs, or it waits past a pool's threshold, it rents.
    if (auto cloud = c->cloud_estimate(spec); cloud && !cloud->estimate_pool.empty()) {
      std::cerr << "If it rents a cloud node (pool " << cloud->estimate_pool << "): at most "
                << format_money(cloud->estimate_micros) << " " << e->currency
                << " (whole nodes: boot, the time limit, the idle release)";
      if (cloud->budget_left_micros >= 0) {
        std::cerr << "; account budget left this month: " << format_money(cloud->budget_left_micros) << " "
                  << e->currency << (cloud->estimate_micros > cloud->budget_left_micros ? ", so it would not rent" : "");
      }
      std::cerr << "\n";
    }
  }
  auto r = c->submit(spec, built->request.hold);
  if (!r) return fail(r.status());
  print_submitted(*r, x.count("json") > 0, x.count("parsable") > 0);
  if (x.count("wait")) return jobs::wait_for(*c, r->job_ids, 0, false);
  return kExitOk;
}

}  // namespace trainyard::ty

// sacct: jobs past and present, in sacct's --format fields, fixed or parsable.
#include <algorithm>
#include <climits>
#include <iostream>
#include <set>
#include <utility>

#include "format.h"
#include "slurm_shim.h"
#include "util/clock.h"

namespace trainyard::ty::slurm {

namespace {

std::string sacct_field(const std::string& name, const fb::JobRecordT& j) {
  const fb::JobSpecT empty;
  const fb::JobSpecT& s = j.spec ? *j.spec : empty;
  std::string f = upper(name);
  if (f == "JOBID") return client::job_name_of(j);
  if (f == "JOBIDRAW") return std::to_string(j.job_id);
  if (f == "JOBNAME") return s.name;
  if (f == "STATE") return slurm_state(j.state);
  if (f == "EXITCODE") return exit_code_of(j);
  if (f == "ELAPSED") return elapsed(j);
  if (f == "ELAPSEDRAW") {
    if (j.start_time_ns <= 0) return "0";
    int64_t end = j.end_time_ns > 0 ? j.end_time_ns : SystemClock().now_ns();
    return std::to_string((end - j.start_time_ns) / 1'000'000'000);
  }
  if (f == "START") return iso_time(j.start_time_ns);
  if (f == "END") return iso_time(j.end_time_ns);
  if (f == "SUBMIT") return iso_time(j.submit_time_ns);
  if (f == "PARTITION") return s.partition;
  if (f == "ACCOUNT") return s.account;
  if (f == "USER") return s.user;
  if (f == "NNODES") return std::to_string(std::max<uint32_t>(1, s.nodes));
  if (f == "ALLOCCPUS" || f == "NCPUS") return std::to_string(std::max<uint32_t>(1, s.cpus) * std::max<uint32_t>(1, s.nodes));
  if (f == "ALLOCGRES" || f == "REQGRES") return s.gpus_per_node ? "gpu:" + std::to_string(s.gpus_per_node) : "";
  if (f == "NODELIST") return j.nodes.empty() ? "None assigned" : join(j.nodes, ",");
  if (f == "TIMELIMIT") return time_limit(&s);
  if (f == "WORKDIR") return s.workdir;
  if (f == "REQMEM") return s.memory_mb ? std::to_string(s.memory_mb) + "M" : "0";
  if (f == "ARRAYJOBID") return j.array_job_id ? std::to_string(j.array_job_id) : std::to_string(j.job_id);
  if (f == "ARRAYTASKID") return j.array_index >= 0 ? std::to_string(j.array_index) : "";
  if (f == "REASON") return j.reason.empty() ? "None" : j.reason;
  if (f == "RESTARTS") return std::to_string(j.attempt > 0 ? j.attempt - 1 : 0);
  return "";
}

const std::set<std::string>& sacct_fields() {
  static const std::set<std::string> k = {"JOBID",    "JOBIDRAW", "JOBNAME",  "STATE",     "EXITCODE", "ELAPSED",
                                          "ELAPSEDRAW", "START",  "END",      "SUBMIT",    "PARTITION", "ACCOUNT",
                                          "USER",     "NNODES",   "ALLOCCPUS", "NCPUS",    "ALLOCGRES", "REQGRES",
                                          "NODELIST", "TIMELIMIT", "WORKDIR", "REQMEM",    "ARRAYJOBID", "ARRAYTASKID",
                                          "REASON",   "RESTARTS"};
  return k;
}

// The columns: the default set, -b's, or --format's (checked against sacct_fields()).
Result<std::vector<std::string>> sacct_columns(const Parsed& p) {
  std::vector<std::string> fields = {"JobID", "JobName", "Partition", "Account", "AllocCPUS", "State", "ExitCode"};
  if (p.has("brief")) fields = {"JobID", "State", "ExitCode"};
  if (!p.has("format")) return fields;
  fields.clear();
  for (auto& f : all_values(p, "format")) {
    std::string name = f.substr(0, f.find('%'));  // "JobName%30": the width is ours to choose
    if (!sacct_fields().count(upper(name))) {
      return Status::invalid("Invalid field requested: \"" + name + "\" (docs/slurm.md lists the fields)");
    }
    fields.push_back(name);
  }
  return fields;
}

// -S/--starttime and -E/--endtime: a date or "now"; 0 when absent.
Status sacct_window(const Parsed& p, int64_t* since, int64_t* until) {
  for (auto [opt, out] : {std::pair{"starttime", since}, {"endtime", until}}) {
    if (!p.has(opt)) continue;
    std::string v = p.last(opt);
    if (v == "now") {
      *out = SystemClock().now_ns();
    } else if (!parse_date(v, out)) {
      return Status::invalid("--" + std::string(opt) + " '" + v + "' is not a date (YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS])");
    }
  }
  return Status::success();
}

// Slurm's fixed columns: 10 wide (JobID 12, NodeList 15), right-aligned, values cut with '+'.
void print_sacct_table(const std::vector<std::string>& fields, const std::vector<std::vector<std::string>>& rows,
                       bool header) {
  auto cell = [](std::string v, size_t w) {
    if (v.size() > w) v = v.substr(0, w - 1) + "+";
    return std::string(w - v.size(), ' ') + v;
  };
  std::vector<size_t> widths;
  for (auto& f : fields) widths.push_back(upper(f) == "JOBID" ? 12 : upper(f) == "NODELIST" ? 15 : 10);
  if (header) {
    std::string head, dash;
    for (size_t i = 0; i < fields.size(); ++i) {
      head += (i ? " " : "") + cell(fields[i], widths[i]);
      dash += (i ? " " : "") + std::string(widths[i], '-');
    }
    std::cout << head << "\n" << dash << "\n";
  }
  for (auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) line += (i ? " " : "") + cell(r[i], widths[i]);
    std::cout << line << "\n";
  }
}

void print_sacct(const Parsed& p, const std::vector<std::string>& fields,
                 const std::vector<std::vector<std::string>>& rows) {
  if (!p.has("parsable2") && !p.has("parsable")) return print_sacct_table(fields, rows, !p.has("noheader"));
  std::string tail = p.has("parsable") && !p.has("parsable2") ? "|" : "";
  if (!p.has("noheader")) std::cout << join(fields, "|") << tail << "\n";
  for (auto& r : rows) std::cout << join(r, "|") << tail << "\n";
}

}  // namespace

int sacct(Context& ctx, const std::vector<std::string>& args) {
  auto p = parse_options(args, {{"jobs", 'j', true},        {"user", 'u', true},      {"format", 'o', true},
                                {"parsable2", 'P', false},  {"parsable", 'p', false}, {"noheader", 'n', false},
                                {"allusers", 'a', false},   {"allocations", 'X', false}, {"brief", 'b', false},
                                {"starttime", 'S', true},   {"endtime", 'E', true},   {"state", 's', true},
                                {"partition", 'r', true},   {"accounts", 'A', true},  {"name", 0, true},
                                {"help", 0, false},         {"noconvert", 0, false},  {"units", 0, true}});
  if (!p) return usage_error("sacct", p.status());
  if (p->has("help")) {
    std::cout << "Usage: sacct [-j ID[,..]] [-u USER] [-a] [-S TIME] [-E TIME] [-s STATE] [--format=F,..] [-P|-p] "
                 "[-n] [-X] [-b]   (Trainyard's sacct; docs/slurm.md)\n";
    return kExitOk;
  }
  auto fields = sacct_columns(*p);
  if (!fields) return usage_error("sacct", fields.status());
  int64_t since = 0, until = 0;
  if (auto s = sacct_window(*p, &since, &until); !s) return usage_error("sacct", s);
  auto* c = ctx.client();
  if (!c) return kExitUsage;
  auto m = match_of(*p, {"user", "partition", "accounts", "name", "state"});
  if (!m) return usage_error("sacct", m.status());
  if (m->users.empty() && !p->has("allusers") && !p->has("jobs")) m->users.insert(ctx.user);
  client::JobFilter f;
  f.limit = 1'000'000;
  if (m->users.size() == 1) f.user = *m->users.begin();
  auto jobs = fetch_jobs(*c, all_values(*p, "jobs"), f);
  if (!jobs) return service_error("sacct", jobs.status());
  std::vector<std::vector<std::string>> rows;
  for (auto& j : *jobs) {
    if (!(*m)(j)) continue;
    int64_t end = j.end_time_ns > 0 ? j.end_time_ns : INT64_MAX;
    if (since && end < since) continue;
    if (until && j.submit_time_ns > until) continue;
    std::vector<std::string> row;
    for (auto& field : *fields) row.push_back(sacct_field(field, j));
    rows.push_back(std::move(row));
  }
  print_sacct(*p, *fields, rows);
  return kExitOk;
}

}  // namespace trainyard::ty::slurm

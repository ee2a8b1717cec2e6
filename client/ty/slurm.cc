// The commands Slurm users' fingers and scripts know, as names of the ty
// binary (sbatch, squeue, scancel, sacct, sinfo): each a thin layer over the
// client library that reads Slurm's common options and prints Slurm's
// formats closely enough for the usual one-liners (`sbatch --parsable`,
// `squeue -h -o %i -u $USER | wc -l`, `sacct -P -n --format=...`).
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "commands.h"
#include "format.h"
#include "slurm.h"
#include "trainyard/job_spec.h"
#include "util/clock.h"

namespace trainyard::ty {
namespace {

constexpr int kSlurmError = 1;  // Slurm's commands exit 1 on any error

// ---- a small getopt for the shims' own options ----

struct Opt {
  std::string long_name;
  char short_name = 0;
  bool value = false;
};

struct Parsed {
  std::map<std::string, std::vector<std::string>> opts;  // by long name
  std::vector<std::string> positionals;
  bool has(const std::string& n) const { return opts.count(n) > 0; }
  std::string last(const std::string& n) const { return has(n) ? opts.at(n).back() : std::string(); }
};

Result<Parsed> parse_options(const std::vector<std::string>& args, const std::vector<Opt>& table) {
  Parsed out;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") {
      out.positionals.insert(out.positionals.end(), args.begin() + static_cast<long>(i) + 1, args.end());
      break;
    }
    if (a.rfind("--", 0) == 0) {
      auto eq = a.find('=');
      std::string name = a.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
      const Opt* o = nullptr;
      for (auto& t : table) {
        if (t.long_name == name) o = &t;
      }
      if (!o) return Status::invalid("unrecognized option '--" + name + "'");
      std::string v;
      if (o->value) {
        if (eq != std::string::npos) {
          v = a.substr(eq + 1);
        } else if (i + 1 < args.size()) {
          v = args[++i];
        } else {
          return Status::invalid("option '--" + name + "' requires an argument");
        }
      } else if (eq != std::string::npos) {
        return Status::invalid("option '--" + name + "' doesn't allow an argument");
      }
      out.opts[o->long_name].push_back(v);
      continue;
    }
    if (a.size() >= 2 && a[0] == '-') {
      for (size_t k = 1; k < a.size(); ++k) {
        const Opt* o = nullptr;
        for (auto& t : table) {
          if (t.short_name == a[k]) o = &t;
        }
        if (!o) return Status::invalid("invalid option -- '" + std::string(1, a[k]) + "'");
        if (!o->value) {
          out.opts[o->long_name].push_back("");
          continue;
        }
        if (k + 1 < a.size()) {
          out.opts[o->long_name].push_back(a.substr(k + 1));
        } else if (i + 1 < args.size()) {
          out.opts[o->long_name].push_back(args[++i]);
        } else {
          return Status::invalid("option requires an argument -- '" + std::string(1, a[k]) + "'");
        }
        break;
      }
      continue;
    }
    out.positionals.push_back(a);
  }
  return out;
}

std::vector<std::string> split_list(const std::string& s, char sep = ',') {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, sep);) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

std::vector<std::string> all_values(const Parsed& p, const std::string& name) {
  std::vector<std::string> out;
  if (!p.has(name)) return out;
  for (auto& v : p.opts.at(name)) {
    for (auto& item : split_list(v)) out.push_back(item);
  }
  return out;
}

int usage_error(const std::string& cmd, const Status& s) {
  std::cerr << cmd << ": error: " << s.message() << "\n";
  return kExitUsage;
}

int service_error(const std::string& cmd, const Status& s) {
  std::cerr << cmd << ": error: " << s.message() << "\n";
  if (s.code() == ErrorCode::InvalidArgument) return kExitUsage;  // a spec the scheduler refused
  return s.code() == ErrorCode::Unavailable ? kExitUnavailable : kSlurmError;
}

std::string upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

// ---- Slurm's names for Trainyard's states ----

std::string slurm_state(fb::JobState s) {
  switch (s) {
    case fb::JobState::Pending:
    case fb::JobState::Held: return "PENDING";
    case fb::JobState::Scheduled: return "CONFIGURING";
    case fb::JobState::Running: return "RUNNING";
    case fb::JobState::Succeeded: return "COMPLETED";
    case fb::JobState::Failed: return "FAILED";
    case fb::JobState::Cancelled: return "CANCELLED";
    case fb::JobState::TimedOut: return "TIMEOUT";
    case fb::JobState::NodeFailure: return "NODE_FAIL";
    case fb::JobState::Preempted: return "PREEMPTED";
  }
  return "UNKNOWN";
}

std::string slurm_state_short(fb::JobState s) {
  static const std::map<std::string, std::string> kShort = {
      {"PENDING", "PD"},   {"CONFIGURING", "CF"}, {"RUNNING", "R"},    {"COMPLETED", "CD"}, {"FAILED", "F"},
      {"CANCELLED", "CA"}, {"TIMEOUT", "TO"},     {"NODE_FAIL", "NF"}, {"PREEMPTED", "PR"}};
  return kShort.at(slurm_state(s));
}

// -t/--states values: Slurm's long or short names, or "all".
Result<std::vector<fb::JobState>> parse_slurm_states(const std::vector<std::string>& names) {
  std::vector<fb::JobState> out;
  const fb::JobState all[] = {fb::JobState::Pending,   fb::JobState::Held,      fb::JobState::Scheduled,
                              fb::JobState::Running,   fb::JobState::Succeeded, fb::JobState::Failed,
                              fb::JobState::Cancelled, fb::JobState::TimedOut,  fb::JobState::NodeFailure,
                              fb::JobState::Preempted};
  for (auto& n : names) {
    std::string u = upper(n);
    if (u == "ALL") return std::vector<fb::JobState>(std::begin(all), std::end(all));
    bool found = false;
    for (auto s : all) {
      if (slurm_state(s) == u || slurm_state_short(s) == u || upper(state_name(s)) == u) {
        out.push_back(s);
        found = true;
      }
    }
    if (!found) return Status::invalid("invalid job state specified: " + n);
  }
  return out;
}

std::string exit_code_of(const fb::JobRecordT& j) {
  // Slurm's "code:signal"; a job killed by a signal shows 0:SIG.
  int code = j.exit_code, sig = 0;
  if (code > 128 && j.state != fb::JobState::Succeeded && j.state != fb::JobState::Failed) {
    sig = code - 128;
    code = 0;
  }
  return std::to_string(code) + ":" + std::to_string(sig);
}

std::string elapsed(const fb::JobRecordT& j) {
  if (j.start_time_ns <= 0) return "00:00:00";
  int64_t end = j.end_time_ns > 0 ? j.end_time_ns : SystemClock().now_ns();
  int64_t s = std::max<int64_t>(0, (end - j.start_time_ns) / 1'000'000'000);
  char b[64];
  if (s >= 86400) {
    std::snprintf(b, sizeof b, "%ld-%02ld:%02ld:%02ld", static_cast<long>(s / 86400), static_cast<long>(s / 3600 % 24),
                  static_cast<long>(s / 60 % 60), static_cast<long>(s % 60));
  } else {
    std::snprintf(b, sizeof b, "%02ld:%02ld:%02ld", static_cast<long>(s / 3600), static_cast<long>(s / 60 % 60),
                  static_cast<long>(s % 60));
  }
  return b;
}

std::string time_limit(const fb::JobSpecT* s) {
  if (!s || s->time_limit_s == 0) return "UNLIMITED";
  return format_duration(static_cast<int64_t>(s->time_limit_s));
}

std::string iso_time(int64_t ns) {
  if (ns <= 0) return "Unknown";
  time_t t = static_cast<time_t>(ns / 1'000'000'000);
  struct tm tm;
  localtime_r(&t, &tm);
  char b[32];
  std::strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%S", &tm);
  return b;
}

std::string join(const std::vector<std::string>& v, const std::string& sep) {
  std::string out;
  for (auto& x : v) out += (out.empty() ? "" : sep) + x;
  return out;
}

// The jobs the ID arguments name (N, ARRAY, ARRAY_INDEX, comma lists).
Result<std::vector<fb::JobRecordT>> jobs_of_ids(client::Client& c, const std::vector<std::string>& ids) {
  std::vector<fb::JobRecordT> out;
  for (auto& id : ids) {
    auto ref = client::parse_job_ref(id);
    if (!ref) return ref.status();
    auto jobs = c.jobs_named(*ref);
    if (!jobs) return jobs.status();
    for (auto& j : *jobs) out.push_back(std::move(j));
  }
  return out;
}

// A filter over records for what the API's JobFilter cannot say.
struct Match {
  std::set<std::string> users, names, partitions, accounts;
  std::set<fb::JobState> states;
  bool operator()(const fb::JobRecordT& j) const {
    const fb::JobSpecT empty;
    const fb::JobSpecT& s = j.spec ? *j.spec : empty;
    if (!users.empty() && !users.count(s.user)) return false;
    if (!names.empty() && !names.count(s.name)) return false;
    if (!partitions.empty() && !partitions.count(s.partition)) return false;
    if (!accounts.empty() && !accounts.count(s.account)) return false;
    if (!states.empty() && !states.count(j.state)) return false;
    return true;
  }
};

// ---- sbatch ----

int sbatch(Context& ctx, std::vector<std::string> args) {
  using client::ExtraOption;
  using client::OptionArg;
  for (auto& a : args) {
    if (a == "--") break;
    if (a == "-h" || a == "--help" || a == "--usage") {
      std::cout << "Usage: sbatch [OPTIONS] SCRIPT [ARGS...]   (Trainyard's sbatch; docs/slurm.md)\n"
                << "  --parsable   print only the job id      -W, --wait   wait for the job to end\n"
                << "  --test-only  check the script, submit nothing\n\n"
                << "Job options:\n"
                << client::spec_options_help();
      return kExitOk;
    }
  }
  std::vector<ExtraOption> extras = {
      {"parsable", 0, OptionArg::kNone}, {"wait", 'W', OptionArg::kNone}, {"test-only", 0, OptionArg::kNone}};
  // No script and no --wrap: sbatch reads the script from stdin.
  std::string stdin_script;
  auto split = client::split_command_line(args, extras);
  bool wrap = false;
  if (split) {
    for (auto& o : split->spec_options) wrap = wrap || o.name == "wrap";
  }
  if (split && split->positionals.empty() && !wrap && !isatty(0)) {
    char path[] = "/tmp/sbatch-stdin-XXXXXX.sh";
    int fd = mkstemps(path, 3);
    if (fd < 0) return service_error("sbatch", Status::internal("cannot store the script read from stdin"));
    std::ostringstream text;
    text << std::cin.rdbuf();
    std::string body = text.str();
    (void)!::write(fd, body.data(), body.size());
    ::close(fd);
    stdin_script = path;
    args.push_back(stdin_script);
  }
  auto built = client::build_job_request(args, submit_context(ctx), extras);
  if (!stdin_script.empty()) ::unlink(stdin_script.c_str());
  if (!built) return usage_error("sbatch", built.status());
  auto& spec = built->request.spec;
  if (!stdin_script.empty() && spec.name.rfind("sbatch-stdin-", 0) == 0) spec.name = "sbatch";
  for (auto& w : built->request.warnings) {
    std::cerr << "sbatch: warning: " << (w.where.empty() ? "" : w.where + ": ") << w.message << "\n";
  }
  auto& x = built->extras;
  if (x.count("test-only")) {
    std::cerr << "sbatch: the job is valid (" << std::max<uint32_t>(1, spec.nodes) << " node(s), "
              << spec.gpus_per_node << " GPU(s) per node" << (spec.partition.empty() ? "" : ", partition " + spec.partition)
              << "); test only, not submitted\n";
    return kExitOk;
  }
  auto* c = ctx.client();
  if (!c) return kExitUsage;
  auto r = c->submit(spec);
  if (!r) return service_error("sbatch", r.status());
  if (built->request.hold) {
    for (auto id : r->job_ids) {
      if (auto s = c->hold(id); !s) std::cerr << "sbatch: warning: job " << id << " could not be held: " << s.message() << "\n";
    }
  }
  uint64_t id = r->array_job_id ? r->array_job_id : (r->job_ids.empty() ? 0 : r->job_ids.front());
  if (x.count("parsable")) {
    std::cout << id << "\n";
  } else {
    std::cout << "Submitted batch job " << id << "\n";
  }
  std::cout.flush();
  if (!x.count("wait")) return kExitOk;
  auto done = c->wait(r->job_ids, std::chrono::milliseconds(0));
  if (!done) return service_error("sbatch", done.status());
  int rc = kExitOk;
  for (auto& j : *done) {
    if (j.state == fb::JobState::Succeeded) continue;
    rc = std::max(rc, j.exit_code != 0 ? j.exit_code : kSlurmError);
  }
  return rc;
}

// ---- squeue ----

// One % field of squeue's -o/--format.
std::string squeue_field(char f, const fb::JobRecordT& j) {
  const fb::JobSpecT empty;
  const fb::JobSpecT& s = j.spec ? *j.spec : empty;
  bool waiting = j.state == fb::JobState::Pending || j.state == fb::JobState::Held;
  std::string reason = j.state == fb::JobState::Held ? "JobHeldUser" : (j.reason.empty() ? "None" : j.reason);
  switch (f) {
    case 'i': return client::job_name_of(j);
    case 'A': return std::to_string(j.job_id);
    case 'F': return std::to_string(j.array_job_id ? j.array_job_id : j.job_id);
    case 'K': return j.array_index >= 0 ? std::to_string(j.array_index) : "N/A";
    case 'j': return s.name;
    case 'u': return s.user;
    case 'a': return s.account;
    case 'P': return s.partition;
    case 'T': return slurm_state(j.state);
    case 't': return slurm_state_short(j.state);
    case 'M': return j.start_time_ns > 0 ? format_duration((SystemClock().now_ns() - j.start_time_ns) / 1'000'000'000) : "0:00";
    case 'l': return time_limit(&s);
    case 'D': return std::to_string(std::max<uint32_t>(1, s.nodes));
    case 'C': return std::to_string(std::max<uint32_t>(1, s.cpus) * std::max<uint32_t>(1, s.nodes));
    case 'b': return s.gpus_per_node ? "gres/gpu" + (s.gpu_type.empty() ? "" : ":" + s.gpu_type) + ":" +
                                           std::to_string(s.gpus_per_node)
                                     : "N/A";
    case 'N': return join(j.nodes, ",");
    case 'r': return waiting ? reason : "None";
    case 'R': return waiting || j.nodes.empty() ? "(" + reason + ")" : join(j.nodes, ",");
    case 'V': return iso_time(j.submit_time_ns);
    case 'S': return j.start_time_ns > 0 ? iso_time(j.start_time_ns) : "N/A";
    case 'e': return j.end_time_ns > 0 ? iso_time(j.end_time_ns) : "N/A";
    case 'Q': return std::to_string(static_cast<int64_t>(j.priority_score));
    case 'Z': return s.workdir;
    case 'o': return join(s.command, " ");
    case 'q': return "normal";
    case 'm': return s.memory_mb ? std::to_string(s.memory_mb) + "M" : "0";
    case '%': return "%";
  }
  return std::string("%") + f;
}

// Renders a squeue format ("%.18i %.9P %8j...") for one job: '.' right-
// justifies, a number is the width (longer values are cut, as squeue does).
std::string squeue_line(const std::string& fmt, const fb::JobRecordT& j) {
  std::string out;
  for (size_t i = 0; i < fmt.size(); ++i) {
    if (fmt[i] != '%' || i + 1 >= fmt.size()) {
      out += fmt[i];
      continue;
    }
    size_t k = i + 1;
    bool right = false;
    if (fmt[k] == '.') {
      right = true;
      ++k;
    }
    size_t width = 0;
    while (k < fmt.size() && std::isdigit(static_cast<unsigned char>(fmt[k]))) width = width * 10 + (fmt[k++] - '0');
    if (k >= fmt.size()) break;
    std::string v = squeue_field(fmt[k], j);
    if (width) {
      if (v.size() > width) v.resize(width);
      std::string pad(width - v.size(), ' ');
      v = right ? pad + v : v + pad;
    }
    out += v;
    i = k;
  }
  return out;
}

std::string squeue_header(const std::string& fmt) {
  static const std::map<char, std::string> kNames = {
      {'i', "JOBID"}, {'A', "JOBID"},   {'F', "ARRAY_JOB_ID"}, {'K', "ARRAY_TASK_ID"}, {'j', "NAME"},
      {'u', "USER"},  {'a', "ACCOUNT"}, {'P', "PARTITION"},    {'T', "STATE"},         {'t', "ST"},
      {'M', "TIME"},  {'l', "TIME_LIMIT"}, {'D', "NODES"},     {'C', "CPUS"},          {'b', "TRES_PER_NODE"},
      {'N', "NODELIST"}, {'r', "REASON"}, {'R', "NODELIST(REASON)"}, {'V', "SUBMIT_TIME"}, {'S', "START_TIME"},
      {'e', "END_TIME"}, {'Q', "PRIORITY"}, {'Z', "WORK_DIR"}, {'o', "COMMAND"},    {'q', "QOS"},
      {'m', "MIN_MEMORY"}};
  std::string out;
  for (size_t i = 0; i < fmt.size(); ++i) {
    if (fmt[i] != '%' || i + 1 >= fmt.size()) {
      out += fmt[i];
      continue;
    }
    size_t k = i + 1;
    bool right = false;
    if (fmt[k] == '.') {
      right = true;
      ++k;
    }
    size_t width = 0;
    while (k < fmt.size() && std::isdigit(static_cast<unsigned char>(fmt[k]))) width = width * 10 + (fmt[k++] - '0');
    if (k >= fmt.size()) break;
    auto it = kNames.find(fmt[k]);
    std::string v = it == kNames.end() ? std::string(1, fmt[k]) : it->second;
    if (width) {
      if (v.size() > width) v.resize(width);
      std::string pad(width - v.size(), ' ');
      v = right ? pad + v : v + pad;
    }
    out += v;
    i = k;
  }
  return out;
}

int squeue(Context& ctx, const std::vector<std::string>& args) {
  auto p = parse_options(args, {{"noheader", 'h', false}, {"format", 'o', true}, {"user", 'u', true},
                                {"me", 0, false},         {"jobs", 'j', true},   {"states", 't', true},
                                {"partition", 'p', true}, {"account", 'A', true}, {"name", 'n', true},
                                {"all", 'a', false},      {"array", 'r', false}, {"long", 'l', false},
                                {"help", 0, false},       {"noconvert", 0, false}, {"sort", 'S', true}});
  if (!p) return usage_error("squeue", p.status());
  if (p->has("help")) {
    std::cout << "Usage: squeue [-h] [-o FORMAT] [-u USER[,..]] [--me] [-j ID[,..]] [-t STATE[,..]] [-p PART] "
                 "[-A ACCOUNT] [-n NAME]   (Trainyard's squeue; docs/slurm.md)\n";
    return kExitOk;
  }
  if (!p->positionals.empty()) return usage_error("squeue", Status::invalid("unexpected argument '" + p->positionals[0] + "'"));
  auto* c = ctx.client();
  if (!c) return kExitUsage;
  Match m;
  for (auto& u : all_values(*p, "user")) m.users.insert(u);
  if (p->has("me")) m.users.insert(ctx.user);
  for (auto& v : all_values(*p, "partition")) m.partitions.insert(v);
  for (auto& v : all_values(*p, "account")) m.accounts.insert(v);
  for (auto& v : all_values(*p, "name")) m.names.insert(v);
  auto states = parse_slurm_states(all_values(*p, "states"));
  if (!states) return usage_error("squeue", states.status());
  m.states.insert(states->begin(), states->end());
  std::vector<fb::JobRecordT> jobs;
  auto ids = all_values(*p, "jobs");
  if (!ids.empty()) {
    auto r = jobs_of_ids(*c, ids);
    if (!r) return service_error("squeue", r.status());
    jobs = std::move(*r);
  } else {
    client::JobFilter f;
    f.limit = 1'000'000;
    if (m.states.empty()) {
      f.states = {fb::JobState::Pending, fb::JobState::Held, fb::JobState::Scheduled, fb::JobState::Running};
    } else {
      f.states.assign(m.states.begin(), m.states.end());
    }
    if (m.users.size() == 1) f.user = *m.users.begin();
    if (m.accounts.size() == 1) f.account = *m.accounts.begin();
    auto r = c->list(f);
    if (!r) return service_error("squeue", r.status());
    jobs = std::move(*r);
  }
  std::string fmt = p->has("format") ? p->last("format") : "%.18i %.9P %.8j %.8u %.2t %.10M %.6D %R";
  if (!p->has("noheader")) std::cout << squeue_header(fmt) << "\n";
  for (auto& j : jobs) {
    if (m(j)) std::cout << squeue_line(fmt, j) << "\n";
  }
  return kExitOk;
}

// ---- scancel ----

int scancel(Context& ctx, const std::vector<std::string>& args) {
  auto p = parse_options(args, {{"user", 'u', true}, {"name", 'n', true}, {"state", 't', true},
                                {"partition", 'p', true}, {"account", 'A', true}, {"me", 0, false},
                                {"quiet", 'Q', false}, {"verbose", 'v', false}, {"help", 0, false},
                                {"signal", 's', true}, {"batch", 'b', false}, {"full", 'f', false},
                                {"interactive", 'i', false}});
  if (!p) return usage_error("scancel", p.status());
  if (p->has("help")) {
    std::cout << "Usage: scancel [-u USER] [-n NAME] [-t STATE] [-p PART] [-A ACCOUNT] [--me] [ID|ID_INDEX...]   "
                 "(Trainyard's scancel; docs/slurm.md)\n";
    return kExitOk;
  }
  if (p->has("signal")) {
    return usage_error("scancel", Status::invalid("--signal is not supported: Trainyard stops jobs with SIGTERM, their "
                                                   "grace period, then SIGKILL"));
  }
  if (p->has("interactive")) return usage_error("scancel", Status::invalid("--interactive is not supported"));
  Match m;
  for (auto& u : all_values(*p, "user")) m.users.insert(u);
  if (p->has("me")) m.users.insert(ctx.user);
  for (auto& v : all_values(*p, "name")) m.names.insert(v);
  for (auto& v : all_values(*p, "partition")) m.partitions.insert(v);
  for (auto& v : all_values(*p, "account")) m.accounts.insert(v);
  auto states = parse_slurm_states(all_values(*p, "state"));
  if (!states) return usage_error("scancel", states.status());
  m.states.insert(states->begin(), states->end());
  std::vector<std::string> ids;
  for (auto& a : p->positionals) {
    for (auto& id : split_list(a)) ids.push_back(id);
  }
  bool filtered = !m.users.empty() || !m.names.empty() || !m.partitions.empty() || !m.accounts.empty() ||
                  !m.states.empty();
  if (ids.empty() && !filtered) {
    return usage_error("scancel", Status::invalid("no job identification provided (give job ids, or -u/-n/-t/-p/-A)"));
  }
  auto* c = ctx.client();
  if (!c) return kExitUsage;
  std::vector<fb::JobRecordT> jobs;
  int rc = kExitOk;
  if (!ids.empty()) {
    for (auto& id : ids) {
      auto r = jobs_of_ids(*c, {id});
      if (!r) {
        std::cerr << "scancel: error: Kill job error on job id " << id << ": " << r.status().message() << "\n";
        if (r.status().code() == ErrorCode::Unavailable) return kExitUnavailable;
        rc = kSlurmError;
        continue;
      }
      for (auto& j : *r) jobs.push_back(std::move(j));
    }
  } else {
    client::JobFilter f;
    f.limit = 1'000'000;
    f.states = {fb::JobState::Pending, fb::JobState::Held, fb::JobState::Scheduled, fb::JobState::Running};
    auto r = c->list(f);
    if (!r) return service_error("scancel", r.status());
    jobs = std::move(*r);
  }
  for (auto& j : jobs) {
    // As scancel: ended jobs (and ended tasks of a named array) are left alone.
    if (client::is_terminal(j.state) || !m(j)) continue;
    auto s = c->cancel(j.job_id, "scancel");
    if (s) {
      if (p->has("verbose")) std::cerr << "scancel: Terminating job " << client::job_name_of(j) << "\n";
      continue;
    }
    if (s.code() == ErrorCode::FailedPrecondition) continue;  // it ended meanwhile
    if (!p->has("quiet")) {
      std::cerr << "scancel: error: Kill job error on job id " << client::job_name_of(j) << ": " << s.message() << "\n";
    }
    rc = s.code() == ErrorCode::Unavailable ? kExitUnavailable : kSlurmError;
  }
  return rc;
}

// ---- sacct ----

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
  std::vector<std::string> fields = {"JobID", "JobName", "Partition", "Account", "AllocCPUS", "State", "ExitCode"};
  if (p->has("brief")) fields = {"JobID", "State", "ExitCode"};
  if (p->has("format")) {
    fields.clear();
    for (auto& f : all_values(*p, "format")) {
      std::string name = f.substr(0, f.find('%'));  // "JobName%30": the width is ours to choose
      if (!sacct_fields().count(upper(name))) {
        return usage_error("sacct", Status::invalid("Invalid field requested: \"" + name + "\" (docs/slurm.md lists the fields)"));
      }
      fields.push_back(name);
    }
  }
  int64_t since = 0, until = 0;
  for (auto [opt, out] : {std::pair{"starttime", &since}, {"endtime", &until}}) {
    if (!p->has(opt)) continue;
    std::string v = p->last(opt);
    if (v == "now") {
      *out = SystemClock().now_ns();
    } else if (!parse_date(v, out)) {
      return usage_error("sacct", Status::invalid("--" + std::string(opt) + " '" + v +
                                                   "' is not a date (YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS])"));
    }
  }
  auto* c = ctx.client();
  if (!c) return kExitUsage;
  Match m;
  for (auto& u : all_values(*p, "user")) m.users.insert(u);
  if (m.users.empty() && !p->has("allusers") && !p->has("jobs")) m.users.insert(ctx.user);
  for (auto& v : all_values(*p, "partition")) m.partitions.insert(v);
  for (auto& v : all_values(*p, "accounts")) m.accounts.insert(v);
  for (auto& v : all_values(*p, "name")) m.names.insert(v);
  auto states = parse_slurm_states(all_values(*p, "state"));
  if (!states) return usage_error("sacct", states.status());
  m.states.insert(states->begin(), states->end());
  std::vector<fb::JobRecordT> jobs;
  auto ids = all_values(*p, "jobs");
  if (!ids.empty()) {
    auto r = jobs_of_ids(*c, ids);
    if (!r) return service_error("sacct", r.status());
    jobs = std::move(*r);
  } else {
    client::JobFilter f;
    f.limit = 1'000'000;
    if (m.users.size() == 1) f.user = *m.users.begin();
    auto r = c->list(f);
    if (!r) return service_error("sacct", r.status());
    jobs = std::move(*r);
  }
  bool parsable = p->has("parsable2") || p->has("parsable");
  std::vector<std::vector<std::string>> rows;
  for (auto& j : jobs) {
    if (!m(j)) continue;
    int64_t end = j.end_time_ns > 0 ? j.end_time_ns : INT64_MAX;
    if (since && end < since) continue;
    if (until && j.submit_time_ns > until) continue;
    std::vector<std::string> row;
    for (auto& f : fields) row.push_back(sacct_field(f, j));
    rows.push_back(std::move(row));
  }
  if (parsable) {
    std::string tail = p->has("parsable") && !p->has("parsable2") ? "|" : "";
    if (!p->has("noheader")) std::cout << join(fields, "|") << tail << "\n";
    for (auto& r : rows) std::cout << join(r, "|") << tail << "\n";
    return kExitOk;
  }
  // Slurm's fixed columns: 10 wide (JobID 12), right-aligned, values cut with '+'.
  auto cell = [](std::string v, size_t w) {
    if (v.size() > w) v = v.substr(0, w - 1) + "+";
    return std::string(w - v.size(), ' ') + v;
  };
  std::vector<size_t> widths;
  for (auto& f : fields) widths.push_back(upper(f) == "JOBID" ? 12 : upper(f) == "NODELIST" ? 15 : 10);
  if (!p->has("noheader")) {
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
  return kExitOk;
}

// ---- sinfo ----

std::string node_state(const fb::NodeStatusT& n) {
  size_t gpus = n.node ? n.node->gpus.size() : 0;
  if (!n.up) return "down";
  if (n.drained) return n.leases.empty() ? "drain" : "drng";
  if (n.leases.empty()) return "idle";
  if (gpus > 0 && n.allocated_gpus.size() < gpus) return "mix";
  return "alloc";
}

std::string gres_of(const fb::NodeStatusT& n) {
  if (!n.node || n.node->gpus.empty()) return "(null)";
  std::map<std::string, int> types;
  for (auto& g : n.node->gpus) types[g->type.empty() ? "gpu" : g->type]++;
  std::string out;
  for (auto& [t, count] : types) out += (out.empty() ? "" : ",") + std::string("gpu:") + t + ":" + std::to_string(count);
  return out;
}

std::string sinfo_field(char f, const std::string& partition, const std::string& state,
                        const std::vector<const fb::NodeStatusT*>& nodes) {
  std::vector<std::string> names;
  for (auto* n : nodes) names.push_back(n->node ? n->node->name : "");
  switch (f) {
    case 'P':
    case 'R': return partition;
    case 'a': return "up";
    case 'l': return "infinite";
    case 'D': return std::to_string(nodes.size());
    case 't':
    case 'T': return state;
    case 'N':
    case 'n': return join(names, ",");
    case 'G': return nodes.empty() ? "" : gres_of(*nodes.front());
    case 'c': return nodes.empty() || !nodes.front()->node ? "0" : std::to_string(nodes.front()->node->cpus);
    case 'm': return nodes.empty() || !nodes.front()->node ? "0" : std::to_string(nodes.front()->node->memory_mb);
    case '%': return "%";
  }
  return std::string("%") + f;
}

int sinfo(Context& ctx, const std::vector<std::string>& args) {
  auto p = parse_options(args, {{"noheader", 'h', false}, {"format", 'o', true}, {"Node", 'N', false},
                                {"partition", 'p', true}, {"long", 'l', false},  {"help", 0, false},
                                {"summarize", 's', false}, {"all", 'a', false}});
  if (!p) return usage_error("sinfo", p.status());
  if (p->has("help")) {
    std::cout << "Usage: sinfo [-h] [-N] [-p PART] [-o FORMAT]   (Trainyard's sinfo; docs/slurm.md)\n";
    return kExitOk;
  }
  auto* c = ctx.client();
  if (!c) return kExitUsage;
  auto nodes = c->nodes();
  if (!nodes) return service_error("sinfo", nodes.status());
  std::set<std::string> parts;
  for (auto& v : all_values(*p, "partition")) parts.insert(v);
  bool per_node = p->has("Node");
  std::string fmt = p->has("format") ? p->last("format")
                    : per_node       ? "%N %.6D %P %.6t %G"
                                     : "%P %.5a %.10l %.6D %.6t %N %G";
  // Rows: (partition, state) groups, or one per node with -N.
  std::map<std::pair<std::string, std::string>, std::vector<const fb::NodeStatusT*>> groups;
  std::vector<std::pair<std::pair<std::string, std::string>, std::vector<const fb::NodeStatusT*>>> rows;
  for (auto& n : *nodes) {
    std::string part = n.node && !n.node->partition.empty() ? n.node->partition : "default";
    if (!parts.empty() && !parts.count(part)) continue;
    if (per_node) {
      rows.push_back({{part, node_state(n)}, {&n}});
    } else {
      groups[{part, node_state(n)}].push_back(&n);
    }
  }
  for (auto& g : groups) rows.push_back(g);
  static const std::map<char, std::string> kNames = {{'P', "PARTITION"}, {'R', "PARTITION"}, {'a', "AVAIL"},
                                                     {'l', "TIMELIMIT"}, {'D', "NODES"},     {'t', "STATE"},
                                                     {'T', "STATE"},     {'N', "NODELIST"},  {'n', "HOSTNAMES"},
                                                     {'G', "GRES"},      {'c', "CPUS"},      {'m', "MEMORY"}};
  auto render = [&fmt](const std::function<std::string(char)>& field) {
    std::string out;
    for (size_t i = 0; i < fmt.size(); ++i) {
      if (fmt[i] != '%' || i + 1 >= fmt.size()) {
        out += fmt[i];
        continue;
      }
      size_t k = i + 1;
      bool right = fmt[k] == '.';
      if (right) ++k;
      size_t width = 0;
      while (k < fmt.size() && std::isdigit(static_cast<unsigned char>(fmt[k]))) width = width * 10 + (fmt[k++] - '0');
      if (k >= fmt.size()) break;
      std::string v = field(fmt[k]);
      if (width && v.size() < width) v = right ? std::string(width - v.size(), ' ') + v : v + std::string(width - v.size(), ' ');
      out += v;
      i = k;
    }
    return out;
  };
  if (!p->has("noheader")) {
    std::cout << render([](char f) {
      auto it = kNames.find(f);
      return it == kNames.end() ? std::string(1, f) : it->second;
    }) << "\n";
  }
  for (auto& row : rows) {
    const auto& key = row.first;
    const auto& members = row.second;
    std::cout << render([&key, &members](char f) { return sinfo_field(f, key.first, key.second, members); }) << "\n";
  }
  return kExitOk;
}

}  // namespace

bool is_slurm_command(std::string_view name) {
  return name == "sbatch" || name == "squeue" || name == "scancel" || name == "sacct" || name == "sinfo";
}

int run_slurm_command(std::string_view name, Context& ctx, const std::vector<std::string>& args) {
  if (name == "sbatch") return sbatch(ctx, args);
  if (name == "squeue") return squeue(ctx, args);
  if (name == "scancel") return scancel(ctx, args);
  if (name == "sacct") return sacct(ctx, args);
  if (name == "sinfo") return sinfo(ctx, args);
  std::cerr << "ty: " << name << " is not a Slurm command Trainyard provides\n";
  return kExitUsage;
}

}  // namespace trainyard::ty

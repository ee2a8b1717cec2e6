// squeue: the jobs waiting and running, in squeue's -o/--format.
#include <algorithm>
#include <iostream>
#include <map>

#include "format.h"
#include "slurm_shim.h"
#include "util/clock.h"

namespace trainyard::ty::slurm {

namespace {

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
    case 'P': return j.partition.empty() ? s.partition : j.partition;  // started with -p a,b: the one it got
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
    case 'q': return s.qos.empty() ? "normal" : s.qos;
    case 'm': return s.memory_mb ? std::to_string(s.memory_mb) + "M" : "0";
    case '%': return "%";
  }
  return std::string("%") + f;
}

// Renders a squeue format ("%.18i %.9P %8j...") for one job: '.' right-
// justifies, a number is the width (longer values are cut, as squeue does).
std::string squeue_line(const std::string& fmt, const fb::JobRecordT& j) {
  return render_format(fmt, [&j](char f) { return squeue_field(f, j); }, true);
}

std::string squeue_header(const std::string& fmt) {
  static const std::map<char, std::string> kNames = {
      {'i', "JOBID"}, {'A', "JOBID"},   {'F', "ARRAY_JOB_ID"}, {'K', "ARRAY_TASK_ID"}, {'j', "NAME"},
      {'u', "USER"},  {'a', "ACCOUNT"}, {'P', "PARTITION"},    {'T', "STATE"},         {'t', "ST"},
      {'M', "TIME"},  {'l', "TIME_LIMIT"}, {'D', "NODES"},     {'C', "CPUS"},          {'b', "TRES_PER_NODE"},
      {'N', "NODELIST"}, {'r', "REASON"}, {'R', "NODELIST(REASON)"}, {'V', "SUBMIT_TIME"}, {'S', "START_TIME"},
      {'e', "END_TIME"}, {'Q', "PRIORITY"}, {'Z', "WORK_DIR"}, {'o', "COMMAND"},    {'q', "QOS"},
      {'m', "MIN_MEMORY"}};
  return render_format(fmt, [](char f) {
    auto it = kNames.find(f);
    return it == kNames.end() ? std::string(1, f) : it->second;
  }, true);
}

}  // namespace

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
  auto m = match_of(*p, {"user", "partition", "account", "name", "states"});
  if (!m) return usage_error("squeue", m.status());
  if (p->has("me")) m->users.insert(ctx.user);
  client::JobFilter f;
  f.limit = 1'000'000;
  if (m->states.empty()) {
    f.states = {fb::JobState::Pending, fb::JobState::Held, fb::JobState::Scheduled, fb::JobState::Running};
  } else {
    f.states.assign(m->states.begin(), m->states.end());
  }
  if (m->users.size() == 1) f.user = *m->users.begin();
  if (m->accounts.size() == 1) f.account = *m->accounts.begin();
  auto jobs = fetch_jobs(*c, all_values(*p, "jobs"), f);
  if (!jobs) return service_error("squeue", jobs.status());
  std::string fmt = p->has("format") ? p->last("format") : "%.18i %.9P %.8j %.8u %.2t %.10M %.6D %R";
  if (!p->has("noheader")) std::cout << squeue_header(fmt) << "\n";
  for (auto& j : *jobs) {
    if ((*m)(j)) std::cout << squeue_line(fmt, j) << "\n";
  }
  return kExitOk;
}

}  // namespace trainyard::ty::slurm

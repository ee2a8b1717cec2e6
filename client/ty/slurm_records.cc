// Slurm's names and formats for Trainyard's jobs: states, exit codes,
// elapsed time, time limits, dates, the jobs an ID list names, and the
// %-format renderer squeue and sinfo share.
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <iterator>

#include "format.h"
#include "slurm_shim.h"
#include "util/clock.h"

namespace trainyard::ty::slurm {

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

std::string render_format(const std::string& fmt, const std::function<std::string(char)>& field, bool cut) {
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
    if (width && cut && v.size() > width) v.resize(width);
    if (width && v.size() < width) v = right ? std::string(width - v.size(), ' ') + v : v + std::string(width - v.size(), ' ');
    out += v;
    i = k;
  }
  return out;
}

Result<Match> match_of(const Parsed& p, const MatchFlags& flags) {
  Match m;
  for (auto& v : all_values(p, flags.user)) m.users.insert(v);
  for (auto& v : all_values(p, flags.partition)) m.partitions.insert(v);
  for (auto& v : all_values(p, flags.account)) m.accounts.insert(v);
  for (auto& v : all_values(p, flags.name)) m.names.insert(v);
  auto states = parse_slurm_states(all_values(p, flags.state));
  if (!states) return states.status();
  m.states.insert(states->begin(), states->end());
  return m;
}

Result<std::vector<fb::JobRecordT>> fetch_jobs(client::Client& c, const std::vector<std::string>& ids,
                                               const client::JobFilter& filter) {
  if (!ids.empty()) return jobs_of_ids(c, ids);
  return c.list(filter);
}

}  // namespace trainyard::ty::slurm

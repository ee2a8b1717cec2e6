// What the Slurm commands (slurm.cc's sbatch, squeue, scancel, sacct, sinfo)
// share: their small getopt and error exits (slurm_options.cc), Slurm's names
// and formats for Trainyard's records (slurm_records.cc), and each command's
// entry point (slurm_<command>.cc). Private to client/ty.
#pragma once

#include <algorithm>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "commands.h"

namespace trainyard::ty::slurm {

constexpr int kSlurmError = 1;  // Slurm's commands exit 1 on any error

// ---- a small getopt for the shims' own options (slurm_options.cc) ----

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

Result<Parsed> parse_options(const std::vector<std::string>& args, const std::vector<Opt>& table);
std::vector<std::string> split_list(const std::string& s, char sep = ',');
// Every value of option `name`, comma lists split.
std::vector<std::string> all_values(const Parsed& p, const std::string& name);
int usage_error(const std::string& cmd, const Status& s);
int service_error(const std::string& cmd, const Status& s);
std::string upper(std::string s);

// ---- Slurm's names for Trainyard's records (slurm_records.cc) ----

std::string slurm_state(fb::JobState s);
std::string slurm_state_short(fb::JobState s);
// -t/--states values: Slurm's long or short names, or "all".
Result<std::vector<fb::JobState>> parse_slurm_states(const std::vector<std::string>& names);
std::string exit_code_of(const fb::JobRecordT& j);
std::string elapsed(const fb::JobRecordT& j);
std::string time_limit(const fb::JobSpecT* s);
std::string iso_time(int64_t ns);
std::string join(const std::vector<std::string>& v, const std::string& sep);
// The jobs the ID arguments name (N, ARRAY, ARRAY_INDEX, comma lists).
Result<std::vector<fb::JobRecordT>> jobs_of_ids(client::Client& c, const std::vector<std::string>& ids);

// Renders a squeue/sinfo format ("%.18i %.9P %8j..."): `field` gives each %
// letter's value; '.' right-justifies, a number is the width, and with `cut`
// a longer value is cut to it (as squeue does; sinfo does not).
std::string render_format(const std::string& fmt, const std::function<std::string(char)>& field, bool cut);

// A filter over records for what the API's JobFilter cannot say.
struct Match {
  std::set<std::string> users, names, partitions, accounts;
  std::set<fb::JobState> states;
  bool operator()(const fb::JobRecordT& j) const {
    const fb::JobSpecT empty;
    const fb::JobSpecT& s = j.spec ? *j.spec : empty;
    if (!users.empty() && !users.count(s.user)) return false;
    if (!names.empty() && !names.count(s.name)) return false;
    if (!partitions.empty() && !in_partitions(j.partition.empty() ? s.partition : j.partition)) return false;
    if (!accounts.empty() && !accounts.count(s.account)) return false;
    if (!states.empty() && !states.count(j.state)) return false;
    return true;
  }
  // "a,b" (a job submitted to either, not yet started) matches a and b.
  bool in_partitions(std::string_view list) const {
    for (size_t at = 0; at <= list.size();) {
      size_t comma = std::min(list.find(',', at), list.size());
      if (partitions.count(std::string(list.substr(at, comma - at)))) return true;
      at = comma + 1;
    }
    return false;
  }
};

// The option names a command gives each filter (sacct's accounts are
// "accounts", scancel's states "state"...).
struct MatchFlags {
  const char* user;
  const char* partition;
  const char* account;
  const char* name;
  const char* state;
};
// The Match those options ask for; InvalidArgument names a bad state.
Result<Match> match_of(const Parsed& p, const MatchFlags& flags);
// The jobs `ids` names, or without ids the jobs `filter` lists.
Result<std::vector<fb::JobRecordT>> fetch_jobs(client::Client& c, const std::vector<std::string>& ids,
                                               const client::JobFilter& filter);

// ---- the commands: each returns its exit code ----

int sbatch(Context& ctx, std::vector<std::string> args);
int squeue(Context& ctx, const std::vector<std::string>& args);
int scancel(Context& ctx, const std::vector<std::string>& args);
int sacct(Context& ctx, const std::vector<std::string>& args);
int sinfo(Context& ctx, const std::vector<std::string>& args);
int scontrol(Context& ctx, const std::vector<std::string>& args);

}  // namespace trainyard::ty::slurm

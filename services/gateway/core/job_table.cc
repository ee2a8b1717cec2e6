#include "core/job_table.h"

#include <algorithm>
#include <map>
#include <set>

#include "core/codec.h"
#include "wire/fb_str.h"

namespace trainyard::gateway {

JobRow row_of(const fb::JobRecord& j) {
  JobRow r;
  const auto* spec = j.spec();
  r.state = j.state();
  r.partition = spec ? str(spec->partition()) : "";
  r.experiment = spec ? str(spec->experiment()) : "";
  r.user = spec ? str(spec->user()) : "";
  r.submit_ns = j.submit_time_ns();
  r.start_ns = j.start_time_ns();
  r.updated_ns = j.submit_time_ns();
  if (j.history() && j.history()->size() > 0) {
    r.updated_ns = std::max(r.updated_ns, j.history()->Get(j.history()->size() - 1)->time_ns());
  }
  return r;
}

void JobTable::submitted(const fb::JobSubmitted& e, int64_t time_ns) {
  auto [it, fresh] = rows_.try_emplace(e.job_id());
  if (!fresh) return;  // seeded already, or a duplicate
  JobRow& r = it->second;
  const auto* spec = e.spec();
  r.partition = spec ? str(spec->partition()) : "";
  r.experiment = spec ? str(spec->experiment()) : "";
  r.user = spec ? str(spec->user()) : "";
  r.submit_ns = e.submit_time_ns() ? e.submit_time_ns() : time_ns;
  r.updated_ns = r.submit_ns;
  r.generation = generation_;
}

bool JobTable::state_changed(const fb::JobStateChanged& e, int64_t time_ns) {
  auto it = rows_.find(e.job_id());
  if (it == rows_.end()) return false;
  JobRow& r = it->second;
  if (time_ns < r.updated_ns) return true;  // older than what the table holds
  r.state = e.to();
  r.updated_ns = time_ns;
  r.generation = generation_;
  // As the scheduler does: a start time when it first runs, none once requeued.
  if (e.to() == fb::JobState::Running && r.start_ns == 0) {
    r.start_ns = time_ns;
    r.start_exact = false;
  } else if (e.to() == fb::JobState::Pending && e.from() != fb::JobState::Pending) {
    r.start_ns = 0;
    r.start_exact = true;
  }
  return true;
}

void JobTable::seed(const fb::JobList& list, uint64_t since_generation) {
  std::unordered_map<uint64_t, JobRow> next;
  if (list.jobs()) {
    for (const auto* j : *list.jobs()) next[j->job_id()] = row_of(*j);
  }
  // Rows no event touched since the list was asked for are the list's (a job
  // the scheduler no longer lists is gone); touched rows stay when newer.
  for (auto& [id, row] : rows_) {
    if (row.generation < since_generation) continue;
    auto it = next.find(id);
    if (it == next.end() || row.updated_ns > it->second.updated_ns) next[id] = std::move(row);
  }
  rows_ = std::move(next);
}

void JobTable::set_start(uint64_t job_id, int64_t start_ns) {
  auto it = rows_.find(job_id);
  if (it == rows_.end()) return;
  it->second.start_ns = start_ns;
  it->second.start_exact = true;
}

std::vector<uint64_t> JobTable::inexact_starts(size_t max) const {
  std::vector<uint64_t> out;
  for (const auto& [id, r] : rows_) {
    if (out.size() >= max) break;
    if (!r.start_exact) out.push_back(id);
  }
  return out;
}

const JobRow* JobTable::find(uint64_t job_id) const {
  auto it = rows_.find(job_id);
  return it == rows_.end() ? nullptr : &it->second;
}

JobStats JobTable::stats() const {
  JobStats s;
  for (auto st : fb::EnumValuesJobState()) s.by_state[state_name(st)] = 0;
  for (const auto& [id, r] : rows_) {
    std::string state = state_name(r.state);
    std::string partition = r.partition.empty() ? "default" : r.partition;
    ++s.by_state_partition[{state, partition}];
    ++s.by_state[state];
    ++s.total;
    if (r.start_ns > 0 && r.submit_ns > 0 && r.start_ns >= r.submit_ns) {
      s.queue_waits_s.push_back(static_cast<double>(r.start_ns - r.submit_ns) / 1e9);
    }
  }
  return s;
}

nlohmann::json JobTable::experiments() const {
  using Json = nlohmann::json;
  struct Agg {
    uint64_t jobs = 0, active = 0, succeeded = 0, failed = 0;
    int64_t last_submit = 0;
    std::set<std::string> users;
  };
  std::map<std::string, Agg> by;
  for (const auto& [id, r] : rows_) {
    if (r.experiment.empty()) continue;
    auto& a = by[r.experiment];
    ++a.jobs;
    if (!is_terminal(r.state)) ++a.active;
    if (r.state == fb::JobState::Succeeded) ++a.succeeded;
    if (is_terminal(r.state) && r.state != fb::JobState::Succeeded) ++a.failed;
    a.last_submit = std::max(a.last_submit, r.submit_ns);
    if (!r.user.empty()) a.users.insert(r.user);
  }
  Json list = Json::array();
  for (const auto& [name, a] : by) {
    list.push_back({{"name", name}, {"jobs", a.jobs}, {"active", a.active}, {"succeeded", a.succeeded},
                    {"failed", a.failed}, {"last_submit_ms", ns_to_ms(a.last_submit)}, {"users", a.users}});
  }
  std::stable_sort(list.begin(), list.end(), [](const Json& a, const Json& b) {
    return a["last_submit_ms"].get<int64_t>() > b["last_submit_ms"].get<int64_t>();
  });
  return list;
}

}  // namespace trainyard::gateway

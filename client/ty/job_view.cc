// How ty shows jobs: ty status's full record and array summary, elapsed
// times and GPU counts, and waiting for jobs with a progress line.
#include <cstdio>
#include <functional>
#include <iostream>
#include <map>

#include "format.h"
#include "jobs.h"
#include "util/clock.h"

namespace trainyard::ty::jobs {
namespace {

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

}  // namespace

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


}  // namespace trainyard::ty::jobs

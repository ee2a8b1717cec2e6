// Starting a run: its state directory (the agent's) and its run directory
// (the job's, created exclusively), the launch spec, and the supervisor.
// Restarted, the agent adopts a run whose state shows it was started.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

#include "job_files.h"
#include "shell.h"
#include "supervisor.h"
#include "wire/check.h"

namespace trainyard::agent {
namespace {

// A small file of the agent's own state directory.
std::string read_small_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) return "";
  char buf[256];
  ssize_t n = ::read(fd, buf, sizeof buf);
  ::close(fd);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

}  // namespace

std::string AgentShell::run_dir_for(const RunRecord& r) const {
  return options_.runs_dir + "/" + std::to_string(r.job_id) + "-" + std::to_string(r.attempt) + "-" +
         std::to_string(r.lease_id);
}

std::string AgentShell::state_dir_for(const RunRecord& r) const {
  return options_.state_dir + "/" + std::to_string(r.job_id) + "-" + std::to_string(r.attempt) + "-" +
         std::to_string(r.lease_id);
}

// Only the agent and the supervisors write the state directory, so what is
// there was put there by them, whatever the job did to its run directory.
bool AgentShell::started_before_restart(const Run& run) const {
  if (run.rec.simulated) return false;
  std::string dir = state_dir_for(run.rec);
  return read_job_started(dir) || read_job_exit(dir) || supervisor_alive(dir);
}

Status AgentShell::prepare_run_dirs(const std::string& run_dir, const std::string& state_dir) {
  if (auto s = ensure_private_dir(state_dir); !s) return s;
  std::string id_path = state_dir + "/run_dir.id";
  auto made = create_fresh_dir(run_dir, 0755);
  struct stat st;
  if (made) {
    if (::lstat(run_dir.c_str(), &st) != 0) {
      return Status::internal("cannot stat " + run_dir + ": " + std::strerror(errno));
    }
    std::string id = std::to_string(st.st_dev) + " " + std::to_string(st.st_ino);
    int fd = ::open(id_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600);
    if (fd >= 0) {
      (void)!::write(fd, id.data(), id.size());
      ::close(fd);
    }
    return Status::ok();
  }
  // This agent created it before it crashed, and recorded which one it was.
  std::string want = read_small_file(id_path);
  if (!want.empty() && ::lstat(run_dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode) &&
      want == std::to_string(st.st_dev) + " " + std::to_string(st.st_ino)) {
    return Status::ok();
  }
  return made;
}

void AgentShell::refused_job_file(Run& run, const std::string& why) {
  ++job_files_refused_;
  if (run.warned_files) return;
  run.warned_files = true;
  spdlog::warn("job {} (lease {}): refused a file the job can write: {}; the agent carries on without it",
               run.rec.job_id, run.rec.lease_id, why);
}

void AgentShell::launch_due_runs() {
  auto queue = std::move(launch_queue_);
  launch_queue_.clear();
  for (uint64_t lease : queue) {
    Run* run = find(lease);
    if (run && run->launch_due && run->rec.state == RunState::kPending) launch(*run);
  }
}

// What the supervisor runs: argv, the job's environment, paths, cgroup.
LaunchSpec AgentShell::launch_spec_for(Run& run, const fb::LeaseGranted& grant, const std::string& workdir) {
  auto& r = run.rec;
  const fb::LeaseGranted* g = &grant;
  const fb::JobSpec& spec = *grant.spec();
  LaunchSpec ls;
  ls.lease_id = r.lease_id;
  for (auto* a : *spec.command()) ls.argv.push_back(a->str());
  JobEnvInput in;
  in.job_id = r.job_id;
  in.attempt = r.attempt;
  in.array_index = r.array_index;
  in.node_rank = g->node_rank();
  if (g->nodes()) {
    for (auto* n : *g->nodes()) in.nodes.push_back(n->str());
  }
  in.node = r.node;
  in.gpu_indices = r.gpu_indices;
  in.metrics_file = r.metrics_path;
  if (spec.env()) {
    for (auto* kv : *spec.env()) {
      if (kv->key()) in.spec_env.emplace_back(kv->key()->str(), kv->value() ? kv->value()->str() : std::string());
    }
  }
  ls.env = job_environment(in, base_env_);
  ls.workdir = workdir;
  ls.run_dir = r.run_dir;
  ls.max_grace_s = options_.max_grace_s;
  ls.stdout_path = r.stdout_path;
  ls.stderr_path = r.stderr_path;
  if (cgroups_) {
    std::string why;
    r.cgroup = cgroups_->create("run-" + std::to_string(r.lease_id), r.cpus, r.memory_mb, &why);
    if (r.cgroup.empty() && !warned_cgroup_) {
      warned_cgroup_ = true;
      spdlog::warn("runs start without cgroup limits: {}", why);
    }
  }
  ls.cgroup = r.cgroup;
  return ls;
}

// Runs after the commit: it may write the run's record (it lands in the next
// batch) but never publishes, since the publisher flushes in this same phase.
void AgentShell::launch(Run& run) {
  run.launch_due = false;
  auto& r = run.rec;
  flatbuffers::Verifier v(reinterpret_cast<const uint8_t*>(run.grant.data()), run.grant.size());
  const fb::LeaseGranted* g = nullptr;
  // Stored by this agent, still checked as on the wire: an old or damaged
  // record never reaches a field the schema allows to be absent.
  if (!run.grant.empty() && fb::VerifyEnvelopeBuffer(v) &&
      wire::envelope_check().check(reinterpret_cast<const uint8_t*>(run.grant.data())).is_ok()) {
    g = fb::GetEnvelope(run.grant.data())->payload_as_LeaseGranted();
  }
  if (!g || !g->spec()) {
    run.launch_error = "the lease's grant is missing from the agent's store";
    return;
  }
  const fb::JobSpec& spec = *g->spec();
  std::string dir = run_dir_for(r);
  std::string state = state_dir_for(r);
  std::string workdir = spec.workdir() && spec.workdir()->size() > 0 ? spec.workdir()->str() : dir;
  std::string out = dir + "/stdout", err = dir + "/stderr";
  if (spec.stdout_path() && spec.stdout_path()->size() > 0) {
    out = expand_log_path(spec.stdout_path()->string_view(), r.job_id, r.array_index, r.attempt, r.node, workdir);
    err = out;  // as Slurm: errors go with the output unless told otherwise
  }
  if (spec.stderr_path() && spec.stderr_path()->size() > 0) {
    err = expand_log_path(spec.stderr_path()->string_view(), r.job_id, r.array_index, r.attempt, r.node, workdir);
  }
  auto use_paths = [&] {
    r.run_dir = dir;
    r.metrics_path = dir + "/metrics.jsonl";
    r.stdout_path = out;
    r.stderr_path = err;
  };
  if (started_before_restart(run)) {
    // Started before a crash of this agent: check_runs() adopts it.
    spdlog::info("job {} (lease {}) was started before this agent restarted; adopting it", r.job_id, r.lease_id);
    use_paths();
    r.state = RunState::kRunning;
    save(run);
    return;
  }
  if (!spec.command() || spec.command()->size() == 0) {
    run.launch_error = "the job's command is empty";
    return;
  }
  // Nothing of a directory the agent did not create is used: not its logs,
  // not its metrics file (a pre-created one could hold fake records or be a
  // symlink into someone else's files).
  if (auto s = prepare_run_dirs(dir, state); !s) {
    run.launch_error = s.message();
    r.metrics_done = true;
    return;
  }
  use_paths();
  r.state = RunState::kRunning;
  // Opened once and kept: a file the job swaps in later is never read.
  std::string why;
  run.metrics_fd = open_job_file(r.metrics_path, O_RDONLY | O_CREAT, &why);
  if (run.metrics_fd < 0) refused_job_file(run, why);

  LaunchSpec ls = launch_spec_for(run, *g, workdir);
  if (auto s = write_launch_spec(state, ls); !s) {
    run.launch_error = s.message();
    return;
  }
  auto pid = start_supervisor(options_.self_exe, state, notify_write_);
  if (!pid) {
    run.launch_error = pid.status().message();
    return;
  }
  r.supervisor_pid = *pid;
  run.our_child = true;
  run.launched_here = true;
  save(run);
}

}  // namespace trainyard::agent

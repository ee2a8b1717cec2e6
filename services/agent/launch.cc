// Starting a run: its state directory (the agent's) and its run directory
// (the job's, created exclusively), the launch spec, and the supervisor.
// Restarted, the agent adopts a run whose state shows it was started.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

#include "job_files.h"
#include "job_user.h"
#include "shell.h"
#include "srun_dir.h"
#include "supervisor.h"
#include "util/fd_io.h"
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

// The facts of the grant that a Slurm job reads as SLURM_* variables.
SlurmFacts slurm_facts(const RunRecord& r, const fb::LeaseGranted& g) {
  const fb::JobSpec& spec = *g.spec();
  auto str = [](const flatbuffers::String* s) { return s ? s->str() : std::string(); };
  SlurmFacts f;
  f.job_id = r.job_id;
  f.job_name = str(spec.name());
  f.array_job_id = g.array_job_id();
  f.array_index = r.array_index;
  f.array_expression = str(spec.array());
  if (g.nodes()) {
    for (auto* n : *g.nodes()) f.nodes.push_back(n->str());
  }
  f.node = r.node;
  f.node_rank = g.node_rank();
  f.ntasks = spec.ntasks();
  f.ntasks_per_node = spec.ntasks_per_node();
  f.cpus_per_task = spec.cpus_per_task();
  f.cpus_on_node = r.cpus;
  f.gpus_on_node = static_cast<uint32_t>(r.gpu_indices.size());
  for (auto i : r.gpu_indices) f.gpu_list += (f.gpu_list.empty() ? "" : ",") + std::to_string(i);
  f.memory_mb = r.memory_mb;
  f.submit_dir = str(spec.submit_dir());
  if (f.submit_dir.empty()) f.submit_dir = str(spec.workdir());
  f.submit_host = str(spec.submit_host());
  f.partition = r.partition;
  f.account = r.account;
  f.user = r.user;
  f.attempt = r.attempt;
  f.tmpdir = r.run_dir.empty() ? std::string() : r.run_dir + "/tmp";
  return f;
}

LogPathFacts log_path_facts(const RunRecord& r, const fb::LeaseGranted& g) {
  const fb::JobSpec& spec = *g.spec();
  LogPathFacts f;
  f.job_id = r.job_id;
  f.array_job_id = g.array_job_id();
  f.array_index = r.array_index;
  f.job_name = spec.name() ? spec.name()->str() : std::string();
  f.user = spec.user() ? spec.user()->str() : std::string();
  f.node = r.node;
  f.node_rank = g.node_rank();
  return f;
}

// sbatch fails a job whose log cannot be created; so does the agent, before
// the job runs, instead of running it with its output lost.
Status check_log_dir(const std::string& path, const char* option) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos || slash == 0) return Status::success();
  std::string dir = path.substr(0, slash);
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) {
    return Status::failed_precondition("the directory of " + std::string(option) + " " + path + " does not exist (" +
                                       dir + "); create it before submitting");
  }
  if (!S_ISDIR(st.st_mode)) {
    return Status::failed_precondition("the directory of " + std::string(option) + " " + path + " is not a directory (" +
                                       dir + ")");
  }
  return Status::success();
}

// The grant stored with the run. Stored by this agent, still checked as on
// the wire: an old or damaged record never reaches a field the schema allows
// to be absent. Null when it is missing or damaged.
const fb::LeaseGranted* stored_grant(const std::string& grant) {
  flatbuffers::Verifier v(reinterpret_cast<const uint8_t*>(grant.data()), grant.size());
  if (!grant.empty() && fb::VerifyEnvelopeBuffer(v) &&
      wire::envelope_check().check(reinterpret_cast<const uint8_t*>(grant.data())).ok()) {
    return fb::GetEnvelope(grant.data())->payload_as_LeaseGranted();
  }
  return nullptr;
}

// Where a run works and writes: its run directory, its working directory, and
// its stdout and stderr (in the run directory unless the spec names paths).
struct RunPaths {
  std::string dir, workdir, out, err;
};

RunPaths run_paths(const RunRecord& r, const fb::LeaseGranted& g, const std::string& dir) {
  const fb::JobSpec& spec = *g.spec();
  RunPaths p;
  p.dir = dir;
  p.workdir = spec.workdir() && spec.workdir()->size() > 0 ? spec.workdir()->str() : dir;
  p.out = dir + "/stdout";
  p.err = dir + "/stderr";
  LogPathFacts facts = log_path_facts(r, g);
  if (spec.stdout_path() && spec.stdout_path()->size() > 0) {
    p.out = expand_log_path(spec.stdout_path()->string_view(), facts, p.workdir);
    p.err = p.out;  // as Slurm: errors go with the output unless told otherwise
  }
  if (spec.stderr_path() && spec.stderr_path()->size() > 0) {
    p.err = expand_log_path(spec.stderr_path()->string_view(), facts, p.workdir);
  }
  return p;
}

void use_paths(RunRecord& r, const RunPaths& p) {
  r.run_dir = p.dir;
  r.metrics_path = p.dir + "/metrics.jsonl";
  r.stdout_path = p.out;
  r.stderr_path = p.err;
}

// --output and --error paths outside the run directory.
Status check_log_dirs(const RunPaths& p) {
  if (p.out != p.dir + "/stdout") {
    if (auto s = check_log_dir(p.out, "--output"); !s) return s;
  }
  if (p.err != p.dir + "/stderr" && p.err != p.out) {
    if (auto s = check_log_dir(p.err, "--error"); !s) return s;
  }
  return Status::success();
}

// The job's scratch directory (SLURM_TMPDIR), inside its run directory.
void make_scratch_dir(const RunRecord& r, const std::string& dir) {
  if (::mkdir((dir + "/tmp").c_str(), 0700) != 0 && errno != EEXIST) {
    spdlog::warn("job {} (lease {}): cannot create its scratch directory {}/tmp: {}", r.job_id, r.lease_id, dir,
                 std::strerror(errno));
  }
}

// A batch script's copy (JobSpec.script), what the job runs in place of the
// script's path: made afresh by the agent, then given to the job's user with
// the run directory, read and execute only.
Status write_batch_script(const std::string& dir, std::string_view text) {
  std::string path = dir + "/" + kBatchScriptName;
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0500);
  if (fd < 0) return Status::internal("cannot write the batch script's copy " + path + ": " + std::strerror(errno));
  bool written = write_all(fd, text);
  int err = written ? 0 : errno;
  ::close(fd);
  if (!written) return Status::internal("cannot write the batch script's copy " + path + ": " + std::strerror(err));
  return Status::success();
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
  auto id_of = [](const struct stat& st) { return std::to_string(st.st_dev) + " " + std::to_string(st.st_ino); };
  struct stat st;
  if (::lstat(run_dir.c_str(), &st) == 0) {
    // This agent made it before it was killed, and recorded which one it was.
    std::string want = read_small_file(id_path);
    if (!want.empty() && S_ISDIR(st.st_mode) && want == id_of(st)) return Status::success();
    return create_fresh_dir(run_dir, 0755);  // refused, naming what is there
  }
  // Made under a name of its own, recorded, then renamed into place: an
  // agent killed at any point leaves no run directory, or one whose identity
  // it recorded (at worst a stray ".new-" directory), never one it must refuse.
  std::string fresh = run_dir + ".new-XXXXXX";
  if (!::mkdtemp(fresh.data())) return Status::internal("cannot create " + run_dir + ": " + std::strerror(errno));
  ::chmod(fresh.c_str(), 0755);
  if (::lstat(fresh.c_str(), &st) != 0) return Status::internal("cannot stat " + fresh + ": " + std::strerror(errno));
  std::string id = id_of(st);
  int fd = ::open(id_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600);
  bool recorded = fd >= 0 && ::write(fd, id.data(), id.size()) == static_cast<ssize_t>(id.size());
  if (fd >= 0) ::close(fd);
  if (!recorded || ::rename(fresh.c_str(), run_dir.c_str()) != 0) {
    int e = errno;
    ::rmdir(fresh.c_str());
    // Something appeared under the run's name meanwhile: refused as above.
    if (e == EEXIST || e == ENOTEMPTY || e == EISDIR || e == ENOTDIR) return create_fresh_dir(run_dir, 0755);
    return Status::internal("cannot create " + run_dir + ": " + std::strerror(e));
  }
  return Status::success();
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
  if (spec.script() && spec.script()->size() > 0 && spec.script_arg() < ls.argv.size()) {
    ls.argv[spec.script_arg()] = r.run_dir + "/" + kBatchScriptName;
  }
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
  in.slurm = slurm_facts(r, *g);
  ls.env = job_environment(in, base_env_);
  put_first_on_path(ls.env, srun_dir_);
  ls.workdir = workdir;
  ls.run_dir = r.run_dir;
  ls.max_grace_s = options_.max_grace_s;
  ls.stdout_path = r.stdout_path;
  ls.stderr_path = r.stderr_path;
  ls.truncate_logs = !spec.open_append() && spec.stdout_path() && spec.stdout_path()->size() > 0;
  // --signal=[B:]SIG@TIME: TIME before the time limit (at once when the
  // limit is shorter); a job without a limit is never warned.
  if (spec.signal() > 0 && spec.signal() < NSIG && r.time_limit_s > 0) {
    ls.warn_signal = spec.signal();
    ls.warn_after_s = r.time_limit_s > spec.signal_before_s() ? r.time_limit_s - spec.signal_before_s() : 0;
    ls.warn_batch_only = spec.signal_batch_only();
  }
  if (cgroups_) {
    auto cgroup = cgroups_->create("run-" + std::to_string(r.lease_id), r.cpus, r.memory_mb);
    r.cgroup = cgroup ? *cgroup : "";
    if (!cgroup && !warned_cgroup_) {
      warned_cgroup_ = true;
      spdlog::warn("runs start without cgroup limits: {}", cgroup.status().message());
    }
  }
  ls.cgroup = r.cgroup;
  return ls;
}

namespace {

// What must hold before anything is made for a run: a command, a user to
// run it as, log directories it may write.
Result<JobUser> check_launchable(const fb::JobSpec& spec, const RunRecord& r, const RunPaths& paths,
                                 bool run_as_submitter) {
  if (!spec.command() || spec.command()->size() == 0) return Status::invalid("the job's command is empty");
  auto user = find_job_user(r.user, r.node, run_as_submitter);
  if (!user) return user.status();
  if (auto s = check_log_dirs(paths); !s) return s;
  return user;
}

}  // namespace

// Runs after the commit: it may write the run's record (it lands in the next
// batch) but never publishes, since the publisher flushes in this same phase.
void AgentShell::launch(Run& run) {
  run.launch_due = false;
  auto& r = run.rec;
  const fb::LeaseGranted* g = stored_grant(run.grant);
  if (!g || !g->spec()) {
    run.launch_error = "the lease's grant is missing from the agent's store";
    return;
  }
  const fb::JobSpec& spec = *g->spec();
  RunPaths paths = run_paths(r, *g, run_dir_for(r));
  if (started_before_restart(run)) {
    // Started before a crash of this agent: check_runs() adopts it.
    spdlog::info("job {} (lease {}) was started before this agent restarted; adopting it", r.job_id, r.lease_id);
    use_paths(r, paths);
    r.state = RunState::kRunning;
    save(run);
    return;
  }
  auto user = check_launchable(spec, r, paths, options_.run_as_submitter);
  if (!user) {
    run.launch_error = user.status().message();
    return;
  }
  // Nothing of a directory the agent did not create is used: not its logs,
  // not its metrics file (a pre-created one could hold fake records or be a
  // symlink into someone else's files).
  if (auto s = prepare_run_dirs(paths.dir, state_dir_for(r)); !s) {
    run.launch_error = s.message();
    r.metrics_done = true;
    return;
  }
  use_paths(r, paths);
  r.state = RunState::kRunning;
  make_scratch_dir(r, paths.dir);
  if (spec.script() && spec.script()->size() > 0) {
    if (auto s = write_batch_script(paths.dir, spec.script()->string_view()); !s) {
      run.launch_error = s.message();
      return;
    }
  }
  // Opened once and kept: a file the job swaps in later is never read.
  auto metrics = open_job_file(r.metrics_path, O_RDONLY | O_CREAT);
  run.metrics_fd = metrics ? *metrics : -1;
  if (!metrics) refused_job_file(run, metrics.status().message());
  if (auto s = give_run_dir(paths.dir, *user); !s) {
    run.launch_error = s.message();
    return;
  }
  if (auto s = start_run_supervisor(run, *g, paths.workdir, *user); !s) {
    run.launch_error = s.message();
    return;
  }
  save(run);
}

Status AgentShell::start_run_supervisor(Run& run, const fb::LeaseGranted& g, const std::string& workdir,
                                        const JobUser& user) {
  std::string state = state_dir_for(run.rec);
  LaunchSpec ls = launch_spec_for(run, g, workdir);
  apply_job_user(user, ls);
  int tty = -1;  // an interactive run's terminal (its master stays here)
  if (g.spec()->pty()) {
    if (auto s = open_terminal(run, user, &tty); !s) return s;
    ls.pty = true;
  }
  if (auto s = write_launch_spec(state, ls); !s) {
    if (tty >= 0) ::close(tty);
    return s;
  }
  auto pid = start_supervisor(options_.self_exe, state, notify_write_, tty);
  if (tty >= 0) ::close(tty);  // the supervisor has it: the job's end closes the terminal
  if (!pid) return pid.status();
  run.rec.supervisor_pid = *pid;
  run.our_child = true;
  run.launched_here = true;
  return Status::success();
}

}  // namespace trainyard::agent

// sbatch: submits a batch script (or --wrap, or a script on stdin).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <sstream>

#include "slurm_shim.h"
#include "trainyard/job_spec.h"

namespace trainyard::ty::slurm {

namespace {

// -h, --help or --usage before any "--".
bool asks_for_help(const std::vector<std::string>& args) {
  for (auto& a : args) {
    if (a == "--") break;
    if (a == "-h" || a == "--help" || a == "--usage") return true;
  }
  return false;
}

// Stores the script sbatch reads from stdin (no script, no --wrap) in a
// temporary file; returns its path.
Result<std::string> script_from_stdin() {
  char path[] = "/tmp/sbatch-stdin-XXXXXX.sh";
  int fd = mkstemps(path, 3);
  if (fd < 0) return Status::internal("cannot store the script read from stdin");
  std::ostringstream text;
  text << std::cin.rdbuf();
  std::string body = text.str();
  (void)!::write(fd, body.data(), body.size());
  ::close(fd);
  return std::string(path);
}

// -W/--wait: 0 when every job succeeded, else the largest exit code (1 for a
// job that failed without one).
int wait_for_jobs(client::Client& c, const std::vector<uint64_t>& ids) {
  auto done = c.wait(ids, std::chrono::milliseconds(0));
  if (!done) return service_error("sbatch", done.status());
  int rc = kExitOk;
  for (auto& j : *done) {
    if (j.state == fb::JobState::Succeeded) continue;
    rc = std::max(rc, j.exit_code != 0 ? j.exit_code : kSlurmError);
  }
  return rc;
}

}  // namespace

int sbatch(Context& ctx, std::vector<std::string> args) {
  using client::ExtraOption;
  using client::OptionArg;
  if (asks_for_help(args)) {
    std::cout << "Usage: sbatch [OPTIONS] SCRIPT [ARGS...]   (Trainyard's sbatch; docs/slurm.md)\n"
              << "  --parsable   print only the job id      -W, --wait   wait for the job to end\n"
              << "  --test-only  check the script, submit nothing\n\n"
              << "Job options:\n"
              << client::spec_options_help();
    return kExitOk;
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
    auto path = script_from_stdin();
    if (!path) return service_error("sbatch", path.status());
    stdin_script = *path;
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
  auto r = c->submit(spec, built->request.hold);
  if (!r) return service_error("sbatch", r.status());
  uint64_t id = r->array_job_id ? r->array_job_id : (r->job_ids.empty() ? 0 : r->job_ids.front());
  if (x.count("parsable")) {
    std::cout << id << "\n";
  } else {
    std::cout << "Submitted batch job " << id << "\n";
  }
  std::cout.flush();
  if (!x.count("wait")) return kExitOk;
  return wait_for_jobs(*c, r->job_ids);
}

}  // namespace trainyard::ty::slurm

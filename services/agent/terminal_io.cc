// TerminalIo: `ty run --pty` (srun --pty, salloc) talking to an interactive
// run's pseudo-terminal, which this agent holds (terminal.h). Only the
// job's own user may type into it or read it.
#include <spdlog/spdlog.h>

#include "shell.h"
#include "job_files.h"
#include "job_user.h"
#include "terminal.h"

namespace trainyard::agent {
namespace {

constexpr size_t kChunkBytes = 64 * 1024;
constexpr int64_t kKeepEndedNs = 60'000'000'000;  // a session's last output stays readable this long

}  // namespace

Status AgentShell::open_terminal(Run& run, const JobUser& user, int* slave_fd) {
  auto t = Terminal::open();
  if (!t) return t.status();
  run.terminal = std::move(t->terminal);
  // The session's transcript in its stdout file, so `ty logs` reads a
  // session as it reads a batch job.
  if (auto fd = open_transcript(run.rec.stdout_path, user.as_user, user.uid, user.gid); fd) {
    run.terminal->record_to(*fd);
  } else {
    spdlog::warn("run {}: the session's output is not recorded: {}", run.rec.lease_id, fd.status().message());
  }
  *slave_fd = t->slave_fd;
  return Status::success();
}

void AgentShell::pump_terminals() {
  int64_t now = clock_.now_ns();
  for (auto& [lease, run] : runs_) {
    if (!run->terminal) continue;
    run->terminal->pump();
    if (run->rec.finished() && run->terminal->closed() && now - run->rec.end_ns > kKeepEndedNs) {
      run->terminal.reset();
    }
  }
}

void AgentShell::on_terminal_io(const fb::Request& req, rpc::Responder& reply) {
  auto* q = req.body_as_TerminalIo();
  if (!q) {
    reply.error(Status::invalid("TerminalIo request without its body"));
    return;
  }
  Run* run = nullptr;
  for (auto& [lease, r] : runs_) {
    if (r->rec.job_id != q->job_id() || !r->terminal) continue;
    if (!run || r->rec.attempt > run->rec.attempt) run = r.get();
  }
  if (!run) {
    reply.error(Status::not_found("job " + std::to_string(q->job_id()) + " has no terminal on node " + options_.node +
                                  " (not an interactive job, not started here yet, or its session ended)"));
    return;
  }
  const std::string& who = reply.principal();  // the key's, under CURVE
  if (who != "user:" + run->rec.user) {
    reply.error(Status::permission_denied("the terminal of job " + std::to_string(q->job_id()) + " belongs to " +
                                          run->rec.user + ", not to " + (who.empty() ? "an anonymous caller" : who)));
    return;
  }
  Terminal& t = *run->terminal;
  if (q->input() && q->input()->size() > 0) {
    t.type(std::string_view(reinterpret_cast<const char*>(q->input()->data()), q->input()->size()),
           q->input_offset());
  }
  t.resize(q->rows(), q->cols());
  t.pump();
  uint64_t start = 0;
  std::string_view data = t.output(q->offset(), kChunkBytes, &start);
  // The run's end is known only once its whole tree is gone, so the
  // terminal is closed too and every byte it wrote is in the buffer.
  bool ended = run->rec.finished() && t.closed() && start + data.size() >= t.output_end();
  auto& b = reply.builder();
  auto bytes = b.CreateVector(reinterpret_cast<const uint8_t*>(data.data()), data.size());
  auto out = fb::CreateTerminalOutput(b, bytes, start, ended, run->rec.exit_code, run->rec.signal);
  reply.ok(fb::ReplyBody::TerminalOutput, out.Union());
}

}  // namespace trainyard::agent

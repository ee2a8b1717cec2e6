// ReadLog: a chunk of a run's stdout or stderr log for `ty logs` and the
// gateway. The log is a file the job can replace, so it is opened as any
// job-writable file (job_files.h): a symlink or FIFO put in its place is
// refused with an error instead of being followed or blocking the loop.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "job_files.h"
#include "security/authz.h"
#include "shell.h"

namespace trainyard::agent {
namespace {

// Up to `max_bytes` (1 byte to 4 MiB) of the open log from `offset`; `size`
// gets the file's size.
std::vector<uint8_t> read_chunk(int fd, uint64_t offset, uint32_t max_bytes, uint64_t* size) {
  std::vector<uint8_t> data;
  struct stat st;
  if (::fstat(fd, &st) == 0) *size = static_cast<uint64_t>(st.st_size);
  if (offset < *size) {
    size_t want = std::min<uint64_t>(std::clamp<uint32_t>(max_bytes, 1, 4u << 20), *size - offset);
    data.resize(want);
    ssize_t n = ::pread(fd, data.data(), want, static_cast<off_t>(offset));
    data.resize(n > 0 ? static_cast<size_t>(n) : 0);
  }
  return data;
}

}  // namespace

void AgentShell::on_read_log(const fb::Request& req, rpc::Responder& reply) {
  auto* q = req.body_as_ReadLog();
  if (!q) {
    reply.error(Status::invalid("ReadLog request without its body"));
    return;
  }
  Run* best = nullptr;
  for (auto& [lease, run] : runs_) {
    auto& r = run->rec;
    if (r.job_id != q->job_id()) continue;
    if (q->attempt() != 0 && r.attempt != q->attempt()) continue;
    if (!best || r.attempt > best->rec.attempt || (r.attempt == best->rec.attempt && r.lease_id > best->rec.lease_id)) {
      best = run.get();
    }
  }
  if (!best) {
    reply.error(Status::not_found("job " + std::to_string(q->job_id()) +
                                  (q->attempt() ? " attempt " + std::to_string(q->attempt()) : std::string()) +
                                  " has no run on node " + options_.node +
                                  " (it ran elsewhere, has not started, or its logs were pruned)"));
    return;
  }
  auto& r = best->rec;
  // A job's logs are its owner's, its account's coordinators' and admins'.
  if (auto c = security::Caller::of(reply.principal(), directory_->current()); c.enforced()) {
    std::string what = "read the logs of job " + std::to_string(r.job_id) + " of user:" + r.user;
    if (!c.may_manage_job(r.user, r.account)) return reply.error(c.refuse("job owner", what));
    // Someone else's logs (a coordinator, an admin): audited once per read, not per chunk.
    if (c.user() && c.name() != r.user && q->offset() == 0) reply.audit(what);
  }
  // Decided before reading: once finished, the file no longer grows, so
  // "finished" with this chunk means nothing more will ever come.
  bool finished = r.finished();
  std::string path = q->stderr() ? r.stderr_path : r.stdout_path;
  std::vector<uint8_t> data;
  uint64_t size = 0;
  uint64_t offset = q->offset();
  if (!path.empty()) {
    auto fd = open_job_file(path, O_RDONLY);
    if (!fd && fd.status().code() != ErrorCode::NotFound) {
      const std::string& why = fd.status().message();
      refused_job_file(*best, why);
      reply.error(Status::failed_precondition("cannot read the " + std::string(q->stderr() ? "stderr" : "stdout") +
                                              " log of job " + std::to_string(r.job_id) + ": " + why));
      return;
    }
    if (fd) {
      data = read_chunk(*fd, offset, q->max_bytes(), &size);
      ::close(*fd);
    }
  }
  auto& b = reply.builder();
  auto d = b.CreateVector(data);
  auto chunk = fb::CreateLogChunk(b, d, offset, size, finished && offset + data.size() >= size);
  reply.ok(fb::ReplyBody::LogChunk, chunk.Union());
}

}  // namespace trainyard::agent

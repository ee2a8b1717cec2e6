#include "job_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace trainyard::agent {

namespace {

// The code open_job_file() gives a failed open(2), by its errno (job_files.h).
ErrorCode open_error_code(int e) {
  switch (e) {
    case ENOENT: return ErrorCode::NotFound;
    case EEXIST: return ErrorCode::AlreadyExists;
    case ELOOP:
    case ENXIO: return ErrorCode::FailedPrecondition;
    case EACCES:
    case EPERM: return ErrorCode::PermissionDenied;
    default: return ErrorCode::Internal;
  }
}

}  // namespace

Result<int> open_job_file(const std::string& path, int flags) {
  int fd = ::open(path.c_str(), flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0644);
  if (fd < 0) {
    int e = errno;
    // ELOOP: a symlink in the last component; ENXIO: a FIFO with no reader.
    return Status(open_error_code(e), path + (e == ELOOP   ? " is a symbolic link"
                                              : e == ENXIO ? " is a FIFO or device, not a regular file"
                                                           : std::string(": ") + std::strerror(e)));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status::failed_precondition(path +
                                       " is not a regular file (a FIFO, socket or device was put in its place)");
  }
  int fl = ::fcntl(fd, F_GETFL);
  if (fl >= 0) ::fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
  return fd;
}

Result<int> open_transcript(const std::string& path, bool give, uid_t uid, gid_t gid) {
  auto created = open_job_file(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND);
  if (created) {
    if (give && ::fchown(*created, uid, gid) != 0) {
      Status refused = Status::internal(path + ": cannot give it to uid " + std::to_string(uid) + ": " +
                                        std::strerror(errno));
      ::close(*created);
      return refused;
    }
    return created;
  }
  if (created.status().code() != ErrorCode::AlreadyExists) return created;
  auto existing = open_job_file(path, O_WRONLY | O_APPEND);
  if (!existing) return existing;
  struct stat st;
  if (::fstat(*existing, &st) != 0 || st.st_nlink != 1 || (give && st.st_uid != uid)) {
    ::close(*existing);
    return Status::failed_precondition(path + " exists and is not the job user's own file with one link");
  }
  return existing;
}

Status create_fresh_dir(const std::string& path, mode_t mode) {
  if (::mkdir(path.c_str(), mode) == 0) {
    ::chmod(path.c_str(), mode);  // the umask may have narrowed it
    return Status::success();
  }
  int e = errno;
  if (e == EEXIST) {
    struct stat st;
    bool link = ::lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode);
    return Status::failed_precondition(path + " already exists" + (link ? " as a symbolic link" : "") +
                                       " and was not created by the agent for this run; refusing to use it");
  }
  return Status::internal("cannot create " + path + ": " + std::strerror(e));
}

Status ensure_private_dir(const std::string& path) {
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
    return Status::internal("cannot create " + path + ": " + std::strerror(errno));
  }
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return Status::internal("cannot stat " + path + ": " + std::strerror(errno));
  if (S_ISLNK(st.st_mode) || !S_ISDIR(st.st_mode)) {
    return Status::failed_precondition(path + " must be a directory, not a symbolic link or a file");
  }
  if (st.st_uid != ::geteuid()) {
    return Status::failed_precondition(path + " belongs to uid " + std::to_string(st.st_uid) +
                                       ", not to the agent's uid " + std::to_string(::geteuid()));
  }
  if ((st.st_mode & 07777) != 0700 && ::chmod(path.c_str(), 0700) != 0) {
    return Status::internal("cannot chmod 0700 " + path + ": " + std::strerror(errno));
  }
  return Status::success();
}

}  // namespace trainyard::agent

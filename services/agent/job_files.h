// Files and directories a job can write: its run directory, its stdout and
// stderr logs, its metrics file. The agent and the supervisor open them so
// that nothing the job swaps in can fool or block them: the last component
// is never followed when it is a symlink (O_NOFOLLOW), an open never waits
// for a FIFO's other end (O_NONBLOCK), and only regular files are accepted.
#pragma once

#include <sys/types.h>

#include <string>

#include "util/status.h"

namespace trainyard::agent {

// Opens `path` with `flags` (O_RDONLY, or O_WRONLY|O_APPEND[|O_CREAT]) plus
// O_NOFOLLOW|O_NONBLOCK|O_CLOEXEC; the fd (the caller's to close) comes back
// blocking again. Otherwise a Status whose message says why ("is a symbolic
// link", "is not a regular file (a FIFO?)", strerror) and whose code carries
// the errno a caller decides by, so that none needs an `int* err` beside it:
//   NotFound            ENOENT: the file (or a directory above it) is absent
//   AlreadyExists       EEXIST: O_EXCL and the name is taken
//   FailedPrecondition  a symlink, FIFO, socket or device in the file's place
//   PermissionDenied    EACCES, EPERM
//   Internal            any other errno
Result<int> open_job_file(const std::string& path, int flags);

// The transcript of an interactive run (its stdout file), opened by the
// agent before the job exists: a new file, given to `uid`:`gid` when
// `give` is set, or an existing regular file with one link that is `uid`'s
// own (never a symlink, a FIFO or a hard link to another user's file, which
// the agent, as root, must not write). The fd, or a Status saying why not.
Result<int> open_transcript(const std::string& path, bool give, uid_t uid, gid_t gid);

// Creates `path` as a new directory with `mode`; a path that already exists
// (a directory, a symlink, anything) is refused with FailedPrecondition.
Status create_fresh_dir(const std::string& path, mode_t mode);

// `path` as a private directory of the agent: created if missing, refused
// when it is a symlink or not a directory, then chmod'ed to 0700.
Status ensure_private_dir(const std::string& path);

}  // namespace trainyard::agent

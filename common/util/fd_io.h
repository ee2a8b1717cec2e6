// Writing a whole buffer to a file descriptor, through short writes and
// EINTR. For shells only (a core does no I/O).
#pragma once

#include <unistd.h>

#include <cerrno>
#include <string_view>

namespace trainyard {

// True once every byte is written; false with errno set otherwise (a closed
// pipe, a full disk).
inline bool write_all(int fd, std::string_view data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0) errno = EIO;
      return false;
    }
    done += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace trainyard

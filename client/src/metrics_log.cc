// log_metrics: a training program's side of metrics reporting. One JSON
// line per call appended to $TY_METRICS_FILE, which the agent follows.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include <nlohmann/json.hpp>

#include "trainyard/client.h"

namespace trainyard::client {

Status log_metrics(int64_t step, const std::map<std::string, double>& values) {
  const char* path = std::getenv("TY_METRICS_FILE");
  if (!path || !*path) return Status::success();  // not running under Trainyard
  nlohmann::json line = nlohmann::json::object();
  line["step"] = step;
  for (auto& [name, value] : values) {
    if (name.empty() || name == "step") {
      return Status::invalid("metric name '" + name + "' is not allowed (empty, or the reserved 'step')");
    }
    if (!std::isfinite(value)) {
      return Status::invalid("metric '" + name + "' at step " + std::to_string(step) +
                             " is not a finite number (NaN or infinity); it would be dropped");
    }
    line[name] = value;
  }
  std::string text = line.dump() + "\n";
  int fd = ::open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Status::internal(std::string("cannot open $TY_METRICS_FILE ") + path + ": " + std::strerror(errno));
  // One write() with O_APPEND: the line lands whole, after any other.
  ssize_t n = ::write(fd, text.data(), text.size());
  int err = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(text.size())) {
    return Status::internal(std::string("cannot write $TY_METRICS_FILE ") + path + ": " + std::strerror(err));
  }
  return Status::success();
}

}  // namespace trainyard::client

#include "host.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/run.h"

namespace trainyard::agent {
namespace {

// Writes `value` to a cgroup (or /proc) file. The Status's code keeps the one
// errno a caller decides by: EBUSY (a cgroup with processes refusing to hand
// controllers to children) is FailedPrecondition; any other failure Internal.
Status write_file(const std::string& path, const std::string& value) {
  auto failed = [](int e, std::string message) {
    return e == EBUSY ? Status::failed_precondition(std::move(message)) : Status::internal(std::move(message));
  };
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    return failed(e, path + ": " + std::strerror(e));
  }
  Status s = Status::success();
  if (::write(fd, value.data(), value.size()) != static_cast<ssize_t>(value.size())) {
    int e = errno;
    s = failed(e, "writing '" + value + "' to " + path + ": " + std::strerror(e));
  }
  ::close(fd);
  return s;
}

std::string read_small(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

std::string host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  std::string n(buf);
  auto dot = n.find('.');
  return dot == std::string::npos ? n : n.substr(0, dot);
}

uint32_t host_cpus() {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<uint32_t>(n) : 1;
}

uint64_t host_memory_mb() {
  std::ifstream f("/proc/meminfo");
  std::string key;
  uint64_t kb = 0;
  std::string unit;
  while (f >> key >> kb >> unit) {
    if (key == "MemTotal:") return kb / 1024;
  }
  long pages = sysconf(_SC_PHYS_PAGES);
  long size = sysconf(_SC_PAGE_SIZE);
  return pages > 0 && size > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(size) / (1024 * 1024) : 0;
}

Result<std::vector<HostGpu>> declared_gpus(const Config& config) {
  std::vector<HostGpu> out;
  auto node = config.table().at_path("agent.gpus");
  if (!node) return out;
  auto* arr = node.as_array();
  if (!arr) return Status::invalid("config agent.gpus must be a list of tables like {type = \"A100\", memory_gb = 80}");
  for (size_t i = 0; i < arr->size(); ++i) {
    auto* t = (*arr)[i].as_table();
    std::string where = "config agent.gpus[" + std::to_string(i) + "]";
    if (!t) return Status::invalid(where + " must be a table like {type = \"A100\", memory_gb = 80}");
    auto type = (*t)["type"].value<std::string>();
    if (!type || type->empty()) return Status::invalid(where + ".type is missing (e.g. type = \"A100\")");
    uint64_t memory_mb = 0;
    if (auto gb = (*t)["memory_gb"].value<double>()) {
      memory_mb = static_cast<uint64_t>(*gb * 1024);
    } else if (auto mb = (*t)["memory_mb"].value<int64_t>()) {
      memory_mb = static_cast<uint64_t>(*mb);
    }
    int64_t count = (*t)["count"].value_or<int64_t>(1);
    if (count < 1 || count > 1024) return Status::invalid(where + ".count must be between 1 and 1024");
    std::string uuid = (*t)["uuid"].value_or<std::string>("");
    for (int64_t c = 0; c < count; ++c) {
      HostGpu g;
      g.index = static_cast<uint32_t>(out.size());
      g.type = *type;
      g.memory_mb = memory_mb;
      g.uuid = count == 1 && !uuid.empty() ? uuid : "declared-" + std::to_string(g.index);
      out.push_back(std::move(g));
    }
  }
  return out;
}

RunResources sample_run(int pgid, const std::string& cgroup) {
  RunResources r;
  bool cgroup_cpu = false;  // the cgroup's CPU time: also of what left the process group
  if (!cgroup.empty()) {
    std::istringstream cpu(read_small(cgroup + "/cpu.stat"));
    std::string k;
    uint64_t v;
    while (cpu >> k >> v) {
      if (k == "usage_usec") {
        r.cpu_ns = v * 1000;
        cgroup_cpu = true;
      }
    }
    auto mem = read_small(cgroup + "/memory.current");
    if (!mem.empty()) {
      r.rss_bytes = std::strtoull(mem.c_str(), nullptr, 10);
      r.processes = 1;
      return r;
    }
  }
  if (pgid <= 0) return r;
  static const long ticks = sysconf(_SC_CLK_TCK);
  static const long page = sysconf(_SC_PAGE_SIZE);
  DIR* d = opendir("/proc");
  if (!d) return r;
  while (auto* e = readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    auto stat = read_small(std::string("/proc/") + e->d_name + "/stat");
    auto close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream is(stat.substr(close + 2));
    // Fields from 3 (state) on: state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
    // cutime cstime priority nice threads itrealvalue starttime vsize rss
    std::string state;
    long ppid, pgrp;
    is >> state >> ppid >> pgrp;
    if (pgrp != pgid || state == "Z") continue;
    std::string skip;
    for (int i = 0; i < 7; ++i) is >> skip;
    uint64_t utime = 0, stime = 0;
    is >> utime >> stime;
    for (int i = 0; i < 8; ++i) is >> skip;
    int64_t rss = 0;
    is >> skip >> rss;  // vsize, then rss in pages
    if (!cgroup_cpu) r.cpu_ns += (utime + stime) * 1'000'000'000ull / static_cast<uint64_t>(ticks);
    if (rss > 0) r.rss_bytes += static_cast<uint64_t>(rss) * static_cast<uint64_t>(page);
    ++r.processes;
  }
  closedir(d);
  return r;
}

namespace {

constexpr long kCgroup2Magic = 0x63677270;  // CGROUP2_SUPER_MAGIC

bool on_cgroup2(const std::string& dir) {
  struct statfs fs{};
  return ::statfs(dir.c_str(), &fs) == 0 && static_cast<long>(fs.f_type) == kCgroup2Magic;
}

// The cpu and memory controllers `dir` offers its children, of those asked.
std::vector<std::string> offered(const std::string& dir) {
  std::istringstream is(read_small(dir + "/cgroup.controllers"));
  std::vector<std::string> out;
  for (std::string c; is >> c;) {
    if (c == "cpu" || c == "memory") out.push_back(c);
  }
  return out;
}

// Hands `controllers` of `dir` to its children (cgroup.subtree_control).
Status enable_controllers(const std::string& dir, const std::vector<std::string>& controllers) {
  std::string enable;
  for (auto& name : controllers) enable += (enable.empty() ? "+" : " +") + name;
  auto refused = [&](const Status& s) {
    return Status(s.code(), "cannot enable the " + enable + " controllers of " + dir + ": " + s.message());
  };
  // A cgroup with processes cannot hand controllers to children ("no
  // internal processes", EBUSY): move the agent into a leaf of its own
  // first, as a systemd service with Delegate=yes is expected to.
  auto s = write_file(dir + "/cgroup.subtree_control", enable);
  if (s.ok()) return s;
  if (s.code() != ErrorCode::FailedPrecondition) return refused(s);
  ::mkdir((dir + "/agent").c_str(), 0755);
  s = write_file(dir + "/agent/cgroup.procs", std::to_string(getpid()));
  if (s.ok()) s = write_file(dir + "/cgroup.subtree_control", enable);
  return s.ok() ? s : refused(s);
}

}  // namespace

Result<std::unique_ptr<Cgroups>> Cgroups::open(const std::string& root) {
  if (root == "off") return Status::failed_precondition("agent.cgroup_root is \"off\"");
  std::string dir = root;
  if (root.empty() || root == "auto") {
    // Below the agent's own cgroup ("0::/system.slice/trainyard-agent.service")
    // of a host whose only hierarchy is cgroup v2.
    if (!on_cgroup2("/sys/fs/cgroup")) {
      return Status::failed_precondition(
          "the host has no cgroup v2 hierarchy at /sys/fs/cgroup (a hybrid host: name a delegated directory of "
          "its cgroup2 mount in agent.cgroup_root)");
    }
    std::string own;
    std::istringstream is(read_small("/proc/self/cgroup"));
    for (std::string line; std::getline(is, line);) {
      if (line.rfind("0::", 0) == 0) own = line.substr(3);
    }
    dir = "/sys/fs/cgroup" + (own == "/" ? std::string() : own);
  } else if (!on_cgroup2(dir)) {
    return Status::failed_precondition("agent.cgroup_root " + dir + " is not a directory of a cgroup v2 hierarchy");
  }
  std::unique_ptr<Cgroups> c(new Cgroups());
  c->root_ = dir;
  // The limits need the cpu and memory controllers; a hierarchy without them
  // (a hybrid host's cgroup2 mount) still contains and kills a run.
  auto controllers = offered(dir);
  if (controllers.empty()) return c;
  if (auto s = enable_controllers(dir, controllers); !s) return s;
  for (auto& name : controllers) {
    if (name == "cpu") c->cpu_ = true;
    if (name == "memory") c->memory_ = true;
  }
  return c;
}

std::string Cgroups::limits() const {
  if (cpu_ && memory_) return "cpu and memory limits";
  if (cpu_ || memory_) return std::string(cpu_ ? "cpu" : "memory") + " limits only (the hierarchy offers no other)";
  return "no limits (the hierarchy offers no cpu or memory controller): containment and kill only";
}

Result<std::string> Cgroups::create(const std::string& name, uint32_t cpus, uint64_t memory_mb) {
  std::string path = root_ + "/" + name;
  if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) {
    return Status::internal("mkdir " + path + ": " + std::strerror(errno));
  }
  if (cpu_ && cpus > 0) {
    if (auto s = write_file(path + "/cpu.max", std::to_string(cpus * 100000ull) + " 100000"); !s) return s;
  }
  if (memory_ && memory_mb > 0) {
    if (auto s = write_file(path + "/memory.max", cgroup_memory_max(memory_mb)); !s) return s;
  }
  // Only the agent may change the limits or move processes: where it runs as
  // root the files are root's, and none is writable by group or others.
  for (const char* f : {"cpu.max", "memory.max", "cgroup.procs", "cgroup.subtree_control", "cgroup.kill",
                        "cgroup.threads", "cgroup.freeze", "cgroup.max.depth", "cgroup.max.descendants"}) {
    ::chmod((path + "/" + f).c_str(), 0644);
  }
  ::chmod(path.c_str(), 0755);
  return path;
}

void Cgroups::remove(const std::string& path) {
  if (path.empty()) return;
  (void)write_file(path + "/cgroup.kill", "1");  // best effort: the rmdir below says whether it is gone
  for (int i = 0; i < 20; ++i) {
    if (::rmdir(path.c_str()) == 0 || errno == ENOENT) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

}  // namespace trainyard::agent

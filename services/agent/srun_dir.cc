#include "srun_dir.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <spdlog/spdlog.h>

namespace trainyard::agent {

std::string prepare_srun_dir(const std::string& data, const std::string& agent_exe) {
  auto slash = agent_exe.rfind('/');
  std::string ty = slash == std::string::npos ? std::string() : agent_exe.substr(0, slash + 1) + "ty";
  if (ty.empty() || ::access(ty.c_str(), X_OK) != 0) {
    spdlog::warn("no ty beside the agent ({}): jobs on this node cannot call srun", ty.empty() ? agent_exe : ty);
    return "";
  }
  std::string dir = data + "/bin";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  // srun, and scontrol (scripts read their nodes with `scontrol show hostnames`).
  for (const char* name : {"srun", "scontrol"}) {
    std::string link = dir + "/" + name;
    ::unlink(link.c_str());
    if (ec || ::symlink(ty.c_str(), link.c_str()) != 0) {
      spdlog::warn("cannot make {} (a link to {}): {}; jobs on this node cannot call {}", link, ty,
                   ec ? ec.message() : std::strerror(errno), name);
      return "";
    }
  }
  return dir;
}

void put_first_on_path(std::vector<std::pair<std::string, std::string>>& env, const std::string& dir) {
  if (dir.empty()) return;
  for (auto& [k, v] : env) {
    if (k == "PATH") {
      v = v.empty() ? dir : dir + ":" + v;
      return;
    }
  }
  env.emplace_back("PATH", dir + ":/usr/bin:/bin");
}

}  // namespace trainyard::agent

#include "job_user.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace trainyard::agent {

Result<JobUser> find_job_user(const std::string& name, const std::string& node, bool run_as_submitter) {
  JobUser u;
  if (!run_as_submitter || ::geteuid() != 0) return u;
  std::vector<char> buf(16384);
  struct passwd pw{}, *found = nullptr;
  int rc = ::getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &found);
  if (rc != 0 || !found) {
    return Status::failed_precondition("user " + name + " has no account on node " + node +
                                       " (jobs run as their submitter; add the user to this node, or set "
                                       "agent.run_as = \"agent\")");
  }
  if (pw.pw_uid == 0) {
    // root's jobs run as root only when root submitted them (its own key).
    u.as_user = false;
    return u;
  }
  u.as_user = true;
  u.name = name;
  u.uid = pw.pw_uid;
  u.gid = pw.pw_gid;
  u.home = pw.pw_dir ? pw.pw_dir : "/";
  u.shell = pw.pw_shell ? pw.pw_shell : "/bin/sh";
  int n = 64;
  std::vector<gid_t> groups(static_cast<size_t>(n));
  if (::getgrouplist(name.c_str(), pw.pw_gid, groups.data(), &n) < 0) {
    groups.resize(static_cast<size_t>(n));
    ::getgrouplist(name.c_str(), pw.pw_gid, groups.data(), &n);
  }
  groups.resize(static_cast<size_t>(std::max(n, 0)));
  u.groups.assign(groups.begin(), groups.end());
  return u;
}

Status give_run_dir(const std::string& dir, const JobUser& user) {
  if (!user.as_user) return Status::success();
  for (const std::string& p : {dir, dir + "/tmp", dir + "/metrics.jsonl", dir + "/" + kBatchScriptName}) {
    if (::lchown(p.c_str(), user.uid, user.gid) != 0 && errno != ENOENT) {
      return Status::internal("cannot give " + p + " to " + user.name + ": " + std::strerror(errno));
    }
  }
  ::chmod(dir.c_str(), 0700);
  // The runs directory must let users through (not list) to their own.
  auto parent = dir.substr(0, dir.rfind('/'));
  struct stat st{};
  if (::stat(parent.c_str(), &st) == 0 && (st.st_mode & 0111) != 0111) ::chmod(parent.c_str(), (st.st_mode & 07777) | 0111);
  return Status::success();
}

void apply_job_user(const JobUser& user, LaunchSpec& spec) {
  if (!user.as_user) return;
  spec.as_user = true;
  spec.uid = user.uid;
  spec.gid = user.gid;
  spec.groups = user.groups;
  auto set = [&](const std::string& k, const std::string& v) {
    for (auto& [key, value] : spec.env) {
      if (key == k) {
        value = v;
        return;
      }
    }
    spec.env.emplace_back(k, v);
  };
  set("HOME", user.home);
  set("USER", user.name);
  set("LOGNAME", user.name);
}

}  // namespace trainyard::agent

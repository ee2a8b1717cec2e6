// The three `ty local` commands, registered by add_local_commands (local.cc):
// up (local_up.cc), status (local.cc) and down (local_down.cc). Each returns
// ty's exit code.
#pragma once

#include <string>

namespace trainyard::ty {

struct UpFlags {
  std::string data;
  int gpus = 0, port_base = 0, http_port = 0;
  std::string gpu_type;
  int cloud_nodes = 0;
  bool gpus_set = false, gpu_type_set = false, port_base_set = false, http_port_set = false, cloud_nodes_set = false;
  int timeout_s = 90;
  bool json = false;
};

// Starts what does not run yet and waits until every service answers.
int local_up(const UpFlags& f, const std::string& user);
// Each service: running, answering; exit 0 only if all answer.
int local_status(const std::string& data, bool json);
// Stops every service and the jobs still running.
int local_down(const std::string& data, int grace_s);

}  // namespace trainyard::ty

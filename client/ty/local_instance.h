// One local Trainyard, as `ty local` sees it: its data directory, the
// settings its config remembers, which of its services run (pid files and
// /proc, or the children this command started) and which answer, asked the
// way a user's ty would (Ping, the broker's node list, HTTP, TCP).
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "local.h"
#include "trainyard/client.h"

namespace trainyard::ty {

struct ServiceState {
  const LocalService* service = nullptr;
  pid_t pid = 0;
  bool running = false;
  bool answering = false;
  std::string endpoint;  // where it answers (from its ready file)
  std::string detail;    // why it does not answer, or what it is
};

class LocalTrainyard {
 public:
  explicit LocalTrainyard(std::string dir) : layout_{std::move(dir)} {}

  const LocalLayout& layout() const { return layout_; }
  bool has_config() const;

  // The settings stored in the config's [local] table (defaults where absent).
  LocalSettings stored_settings() const;

  // What a service's command line holds: its binary and this config.
  std::vector<std::string> marks(const LocalService& s) const { return {s.binary, layout_.config()}; }

  // A service this command started: it is ours until it exits, even before
  // its exec shows in /proc.
  void adopt(const std::string& service, pid_t pid) { children_[service] = pid; }
  // The exit status of a child that ended (nullopt while it runs).
  std::optional<int> child_exit(const std::string& service) const;

  // The pid of a running service; 0 when it does not run.
  pid_t running_pid(const LocalService& s) const;
  bool any_running() const;

  // Where the service answers, from its ready file ("" before it is written).
  std::string endpoint_of(const LocalService& s) const;

  // Asks every service whether it answers: Ping for the four with a ROUTER,
  // the broker's node list for the agent, HTTP for the gateway, a TCP
  // connection for the bus.
  std::vector<ServiceState> probe(client::Client* c, const LocalSettings& settings) const;

  // A client of this Trainyard's config; nullptr when it cannot be read.
  std::unique_ptr<client::Client> client(int timeout_ms) const;

 private:
  LocalLayout layout_;
  std::map<std::string, pid_t> children_;
  mutable std::map<std::string, int> exits_;
};

// The services as a table, then the dashboard, config and logs.
void print_table(const LocalTrainyard& t, const LocalSettings& s, const std::vector<ServiceState>& states);
// The same as `ty local up|status --json` prints it.
nlohmann::json states_json(const LocalTrainyard& t, const LocalSettings& s, const std::vector<ServiceState>& states);

}  // namespace trainyard::ty

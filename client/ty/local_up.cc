// `ty local up`: checks the settings, the binaries, the directory and the
// ports, writes the config, starts every service that does not run yet as a
// detached process and waits until each answers; a service that exits
// first stops what this command started.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <set>
#include <thread>

#include "local.h"
#include "local_commands.h"
#include "local_instance.h"
#include "local_ports.h"
#include "local_processes.h"
#include "local_registry.h"
#include "util/service_main.h"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace trainyard::ty {

namespace {

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof(buf) - 1) != 0) return "local";
  return buf;
}

// The flags, else what the last `up` here was asked, else defaults. A
// running Trainyard keeps its settings.
LocalSettings settings_for(const LocalTrainyard& t, const UpFlags& f, const std::string& user, bool was_running) {
  const auto& l = t.layout();
  LocalSettings s = t.has_config() ? t.stored_settings() : LocalSettings{};
  if (!t.has_config()) {
    s.node = node_name_from_host(host_name());
    s.user = user;
  }
  if (was_running) {
    if (f.gpus_set || f.gpu_type_set || f.port_base_set || f.http_port_set || f.cloud_nodes_set) {
      std::cerr << "ty local up: a local Trainyard already runs in " << l.dir
                << "; its settings stay (stop it first with ty local down to change them)\n";
    }
    return s;
  }
  if (f.gpus_set) s.gpus = f.gpus;
  if (f.gpu_type_set) s.gpu_type = f.gpu_type;
  if (f.port_base_set) {
    s.port_base = f.port_base;
    s.http_port = 8080 + f.port_base - kLocalPortBase;
  }
  if (f.http_port_set) s.http_port = f.http_port;
  if (f.cloud_nodes_set) s.cloud_nodes = f.cloud_nodes;
  return s;
}

// kExitOk, or kExitUsage after saying which setting is wrong.
int check_settings(const LocalSettings& s) {
  if (s.gpus < 0 || s.gpus > 1024) {
    std::cerr << "ty local up: --gpus must be between 0 and 1024\n";
    return kExitUsage;
  }
  if (s.gpu_type.empty() || s.gpu_type.find_first_of(" .@\"\\") != std::string::npos) {
    std::cerr << "ty local up: --gpu-type '" << s.gpu_type << "' must be a plain name such as A100\n";
    return kExitUsage;
  }
  if (s.cloud_nodes < 0 || s.cloud_nodes > 64) {
    std::cerr << "ty local up: --cloud-nodes must be between 0 and 64\n";
    return kExitUsage;
  }
  if (s.port_base < 1024 || s.port_base + 13 > 65535 || s.http_port < 1 || s.http_port > 65535) {
    std::cerr << "ty local up: ports out of range: --port-base must be 1024..65522 and the HTTP port 1..65535\n";
    return kExitUsage;
  }
  return kExitOk;
}

// The binaries, all found before anything starts.
bool find_binaries(std::map<std::string, std::string>& binaries) {
  for (auto& svc : local_services()) {
    auto b = find_binary(svc.binary);
    if (!b) {
      std::cerr << "ty local up: cannot find " << svc.binary
                << " next to ty or on PATH (build everything with scripts/build, or install Trainyard)\n";
      return false;
    }
    binaries[svc.name] = *b;
  }
  return true;
}

bool make_dirs(const LocalLayout& l) {
  std::error_code ec;
  for (auto& d : {l.dir, l.logs(), l.dir + "/run", l.dir + "/db", l.runs()}) fs::create_directories(d, ec);
  // Private to its owner: the config, the logs and the stores (tokens too).
  if (!ec) fs::permissions(l.dir, fs::perms::owner_all, fs::perm_options::replace, ec);
  if (ec || ::access(l.dir.c_str(), W_OK) != 0) {
    std::cerr << "ty local up: cannot write to " << l.dir << (ec ? ": " + ec.message() : "")
              << " (choose another directory with --data)\n";
    return false;
  }
  return true;
}

// False (after saying which, and the flag that moves it) when a port one of
// `to_start` binds is taken.
bool ports_free(const std::vector<const LocalService*>& to_start, const LocalSettings& s) {
  for (auto* svc : to_start) {
    for (int port : local_ports(s, svc->name)) {
      if (!port_taken(port)) continue;
      std::cerr << "ty local up: port " << port << " (" << svc->name << ") on 127.0.0.1 is already in use by another "
                << "program";
      if (svc->name == "gateway") {
        std::cerr << ". Choose another HTTP port with --http-port (e.g. --http-port " << s.http_port + 1 << ")";
      } else {
        std::cerr << ". Move every port with --port-base (e.g. --port-base " << s.port_base + 1000
                  << ": bus " << s.port_base + 1000 << ", scheduler " << s.port_base + 1010 << "...)";
      }
      std::cerr << ", or stop what holds it (another local Trainyard: ty local status --data DIR)\n";
      return false;
    }
  }
  return true;
}

bool write_files(const LocalLayout& l, const LocalSettings& s, bool was_running) {
  if (!was_running) {
    if (!write_file_atomic(l.config(), local_config_text(l, s))) {
      std::cerr << "ty local up: cannot write " << l.config() << "\n";
      return false;
    }
  }
  if (!fs::exists(l.rates()) && !write_file_atomic(l.rates(), default_rate_card())) {
    std::cerr << "ty local up: cannot write " << l.rates() << "\n";
    return false;
  }
  return true;
}

// Every process at once (they find each other through the bus and retry),
// the bus first so that it binds before anyone connects.
bool start_services(LocalTrainyard& t, const std::vector<const LocalService*>& to_start,
                    std::map<std::string, std::string>& binaries, std::vector<std::pair<std::string, pid_t>>& started) {
  const auto& l = t.layout();
  for (auto* svc : to_start) {
    std::remove(l.ready(svc->name).c_str());
    std::vector<std::string> argv{binaries[svc->name], "--config", l.config(), "--ready-file", l.ready(svc->name)};
    auto pid = spawn_detached(argv, l.log(svc->name));
    if (!pid) {
      std::cerr << "ty local up: cannot start " << svc->binary << ": " << pid.status().message() << "\n";
      return false;
    }
    write_file_atomic(l.pid(svc->name), std::to_string(*pid) + "\n");
    t.adopt(svc->name, *pid);
    started.emplace_back(svc->name, *pid);
  }
  return true;
}

// What waiting for the services found: their last states, and why the
// start failed ("" when every service answers).
struct Waited {
  std::vector<ServiceState> states;
  std::string failure;
};

// A service that exited before it answered, with the end of its log.
std::string exit_failure(const LocalTrainyard& t, const ServiceState& st) {
  const auto& l = t.layout();
  auto code = t.child_exit(st.service->name);
  return st.service->binary + " exited" + (code ? " with status " + std::to_string(*code) : "") +
         " before it answered; the end of " + l.log(st.service->name) + ":\n" + tail_of(l.log(st.service->name), 12);
}

std::string timeout_failure(const LocalTrainyard& t, const std::vector<ServiceState>& states, int timeout_s) {
  const auto& l = t.layout();
  std::string failure;
  for (auto& st : states) {
    if (!st.answering) {
      failure += st.service->name + " did not answer within " + std::to_string(timeout_s) + " s (" + st.detail +
                 "); the end of " + l.log(st.service->name) + ":\n" + tail_of(l.log(st.service->name), 8);
    }
  }
  return failure;
}

// Until each answers; a service that exits meanwhile fails the start.
Waited wait_until_answering(const LocalTrainyard& t, client::Client* c, const LocalSettings& s, int timeout_s,
                            bool announce) {
  auto deadline = Clock::now() + std::chrono::seconds(timeout_s);
  Waited w;
  std::set<std::string> answered;
  while (true) {
    w.states = t.probe(c, s);
    bool all = true;
    for (auto& st : w.states) {
      all = all && st.answering;
      if (st.answering && answered.insert(st.service->name).second && announce) {
        std::cout << "  " << st.service->name << " answers" << (st.pid ? " (pid " + std::to_string(st.pid) + ")" : "")
                  << "\n"
                  << std::flush;
      }
      if (!st.running && w.failure.empty()) w.failure = exit_failure(t, st);
    }
    if (all || !w.failure.empty()) return w;
    if (Clock::now() >= deadline) {
      w.failure = timeout_failure(t, w.states, timeout_s);
      return w;
    }
    std::this_thread::sleep_for(150ms);
  }
}

// Our own children: signalled by pid, whatever /proc shows of them yet.
void stop_started(const LocalTrainyard& t, const std::vector<std::pair<std::string, pid_t>>& started) {
  for (auto& [name, pid] : started) {
    if (!t.child_exit(name)) ::kill(pid, SIGTERM);
  }
  auto until = Clock::now() + 5s;
  auto any_left = [&] {
    for (auto& [name, pid] : started) {
      if (!t.child_exit(name)) return true;
    }
    return false;
  };
  while (any_left() && Clock::now() < until) std::this_thread::sleep_for(50ms);
  for (auto& [name, pid] : started) {
    if (!t.child_exit(name)) ::kill(pid, SIGKILL);
  }
  while (any_left() && Clock::now() < until + 3s) std::this_thread::sleep_for(20ms);
  for (auto& [name, pid] : started) std::remove(t.layout().pid(name).c_str());
}

void print_started(const LocalTrainyard& t, const LocalSettings& s, const std::vector<ServiceState>& states,
                   bool started_any) {
  const auto& l = t.layout();
  if (started_any) std::cout << "\n";
  print_table(t, s, states);
  bool default_dir = l.dir == default_local_dir(home_dir(), env("XDG_DATA_HOME"));
  // A config file the user named comes first (endpoints.h).
  std::string first;
  if (auto c = env("TY_CONFIG")) first = "$TY_CONFIG (" + *c + ")";
  else if (fs::exists(home_dir() + "/.config/trainyard/config.toml")) first = "~/.config/trainyard/config.toml";
  if (first.empty()) {
    std::cout << "\nPlain ty commands use this Trainyard while it runs, e.g.\n";
  } else {
    std::cout << "\nPlain ty commands read " << first << " first; reach this Trainyard with\n"
              << "TY_CONFIG=" << l.config() << ", e.g.\n";
  }
  std::cout << "  ty submit --gpus 1 --time 10 --wrap 'echo hello from $CUDA_VISIBLE_DEVICES'\n"
            << "  ty queue --all\n"
            << "Stop it with: ty local down" << (default_dir ? "" : " --data " + l.dir) << "\n";
}

}  // namespace

int local_up(const UpFlags& f, const std::string& user) {
  LocalTrainyard t(choose_dir(f.data, false));
  const auto& l = t.layout();
  bool was_running = t.any_running();
  LocalSettings s = settings_for(t, f, user, was_running);
  if (int rc = check_settings(s); rc != kExitOk) return rc;
  std::map<std::string, std::string> binaries;
  if (!find_binaries(binaries) || !make_dirs(l)) return kExitFailed;
  if (s.cloud_nodes > 0) {
    auto driver = find_binary(kLocalCloudDriver);
    if (!driver) {
      std::cerr << "ty local up: --cloud-nodes needs the local cloud driver (" << kLocalCloudDriver
                << ") next to ty or on PATH (scripts/build puts it in build/bin)\n";
      return kExitFailed;
    }
    s.cloud_driver = *driver;
    s.agent_binary = binaries.at("agent");
  }
  if (!ensure_local_keys(l, s.node, local_user_name(s), s.cloud_nodes)) return kExitFailed;

  // What is already running stays; the rest starts, on ports that must be free.
  std::vector<const LocalService*> to_start;
  for (auto& svc : local_services()) {
    if (!t.running_pid(svc)) to_start.push_back(&svc);
  }
  if (!ports_free(to_start, s) || !write_files(l, s, was_running)) return kExitFailed;

  if (to_start.empty()) {
    std::cout << "A local Trainyard is already running in " << l.dir << ".\n\n";
  } else {
    std::cout << (was_running ? "Restarting the stopped services of" : "Starting") << " the local Trainyard in "
              << l.dir << " (" << (s.gpus > 0 ? std::to_string(s.gpus) + " x " + s.gpu_type : "no declared GPUs")
              << ")...\n"
              << std::flush;
  }

  std::vector<std::pair<std::string, pid_t>> started;
  if (!start_services(t, to_start, binaries, started)) return kExitFailed;
  auto c = t.client(700);
  if (!c) {
    std::cerr << "ty local up: cannot read " << l.config() << "\n";
    return kExitFailed;
  }
  auto w = wait_until_answering(t, c.get(), s, f.timeout_s, !to_start.empty());
  if (!w.failure.empty()) {
    std::cerr << "ty local up: " << w.failure;
    stop_started(t, started);
    std::cerr << "ty local up: stopped what this command had started\n";
    return kExitFailed;
  }
  register_dir(l.dir);
  if (f.json) {
    std::cout << states_json(t, s, w.states).dump(2) << "\n";
  } else {
    print_started(t, s, w.states, !to_start.empty());
  }
  return kExitOk;
}

}  // namespace trainyard::ty

// `ty local up|status|down`: starts, checks and stops a whole Trainyard on
// this machine. Each service is a detached process (its own session, output
// to DIR/logs/<service>.log, pid in DIR/run/<service>.pid) started from the
// binaries next to ty (or on PATH) with the one generated config; whether it
// answers is asked the way a user's ty would (Ping, ListNodes, HTTP).
//
//   local_layout.cc     services, ports, the generated config (pure)
//   local_registry.cc   data directories and the registry plain ty reads
//   local_processes.cc  /proc, starting and stopping processes
//   local_ports.cc      bind checks, loopback connections
//   local_instance.cc   one local Trainyard: its services and their states
//   local_up.cc, local_down.cc, and status and the flags here
#include "local.h"

#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "local_commands.h"
#include "local_instance.h"
#include "local_registry.h"

namespace trainyard::ty {

int local_status(const std::string& data, bool json) {
  LocalTrainyard t(choose_dir(data, true));
  if (!t.has_config()) {
    if (json) {
      std::cout << nlohmann::json{{"dir", t.layout().dir}, {"all_answering", false}, {"services", nlohmann::json::array()}}
                       .dump(2)
                << "\n";
    } else {
      std::cout << "No local Trainyard in " << t.layout().dir << " (start one with ty local up)\n";
    }
    return kExitFailed;
  }
  LocalSettings s = t.stored_settings();
  auto c = t.client(700);
  auto states = t.probe(c.get(), s);
  bool all = true;
  for (auto& st : states) all = all && st.answering;
  if (json) {
    std::cout << states_json(t, s, states).dump(2) << "\n";
  } else {
    std::cout << "Local Trainyard in " << t.layout().dir << ": "
              << (all ? "every service answers" : t.any_running() ? "NOT every service answers" : "stopped") << "\n\n";
    print_table(t, s, states);
  }
  return all ? kExitOk : kExitFailed;
}

void add_local_commands(CLI::App& app, Context& ctx, Action& action) {
  auto* local = app.add_subcommand("local", "Run a whole Trainyard on this machine: ty local up | status | down");
  local->require_subcommand(1);
  local->footer(
      "Data, logs and the generated config live in --data DIR (default ${XDG_DATA_HOME:-~/.local/share}/trainyard).\n"
      "While it runs, plain ty commands reach it (when no --config, $TY_CONFIG or ~/.config/trainyard/config.toml\n"
      "says otherwise).");

  {
    auto f = std::make_shared<UpFlags>();
    auto* up = local->add_subcommand(
        "up", "Start the bus, broker, scheduler, metrics-aggregator, billing, gateway and one agent with declared GPUs");
    auto* gpus = up->add_option("--gpus", f->gpus, "GPUs the agent declares (default 2; 0: the ones NVML finds)");
    auto* type = up->add_option("--gpu-type", f->gpu_type, "Their type (default A100)");
    up->add_option("--data", f->data, "Data directory (default ${XDG_DATA_HOME:-~/.local/share}/trainyard)");
    auto* http = up->add_option("--http-port", f->http_port, "Gateway HTTP port on 127.0.0.1 (default 8080)");
    auto* base = up->add_option("--port-base", f->port_base,
                                "Move every port: bus N and N+1, scheduler N+10, broker N+11, metrics N+12, "
                                "billing N+13, HTTP 8080+N-5550 (default 5550)");
    auto* cloud = up->add_option("--cloud-nodes", f->cloud_nodes,
                                 "A cloud pool of at most N rented nodes of 4 H100, started here by the local driver "
                                 "after a boot delay: jobs asking --gpu-type H100 rent one (docs/cloud.md; default 0)");
    up->add_option("--timeout", f->timeout_s, "Seconds to wait for every service to answer (default 90)");
    up->add_flag("--json", f->json, "Print the services as JSON");
    up->callback([=, &ctx, &action] {
      f->gpus_set = gpus->count() > 0;
      f->gpu_type_set = type->count() > 0;
      f->http_port_set = http->count() > 0;
      f->port_base_set = base->count() > 0;
      f->cloud_nodes_set = cloud->count() > 0;
      action = [=, &ctx] { return local_up(*f, ctx.user); };
    });
  }
  {
    auto data = std::make_shared<std::string>();
    auto json = std::make_shared<bool>(false);
    auto* status = local->add_subcommand("status", "Each service: running, answering, pid, endpoint (exit 0 only if all answer)");
    status->add_option("--data", *data, "Data directory (default: the running local Trainyard, else the default one)");
    status->add_flag("--json", *json, "Print JSON");
    status->callback([=, &action] { action = [=] { return local_status(*data, *json); }; });
  }
  {
    auto data = std::make_shared<std::string>();
    auto grace = std::make_shared<int>(10);
    auto* down = local->add_subcommand("down", "Stop every service and the jobs still running (SIGTERM, then SIGKILL)");
    down->add_option("--data", *data, "Data directory (default: the running local Trainyard, else the default one)");
    down->add_option("--grace", *grace, "Seconds between SIGTERM and SIGKILL (default 10)");
    down->callback([=, &action] { action = [=] { return local_down(*data, *grace); }; });
  }
}

}  // namespace trainyard::ty
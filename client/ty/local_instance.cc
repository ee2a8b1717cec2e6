// One local Trainyard: its settings, services and whether they answer.
#include "local_instance.h"

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <sstream>

#include "format.h"
#include "local_ports.h"
#include "local_processes.h"
#include "security/site.h"
#include "token.h"
#include "util/config.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace trainyard::ty {

namespace {

// Whether the bus takes connections on both its ports.
void probe_bus(const LocalSettings& settings, ServiceState& st) {
  bool ok = true;
  for (int port : local_ports(settings, "bus")) {
    int fd = connect_local(port, 1000ms);
    ok = ok && fd >= 0;
    if (fd >= 0) ::close(fd);
  }
  st.answering = ok;
  if (!ok) st.detail = "its ports refuse connections";
}

void probe_gateway(const LocalSettings& settings, ServiceState& st) {
  int code = http_status(settings.http_port, "/healthz");
  st.answering = code == 200;
  if (!st.answering) st.detail = code ? "GET /healthz: " + std::to_string(code) : "no HTTP answer";
}

// The agent answers when the broker has its node up.
void probe_agent(const LocalSettings& settings, const std::vector<fb::NodeStatusT>& nodes, ServiceState& st) {
  st.detail = "node " + settings.node + " not registered with the broker yet";
  for (auto& n : nodes) {
    if (n.node && n.node->name == settings.node) {
      st.answering = n.up;
      st.detail = n.up ? "" : "node " + settings.node + " down: " + n.reason;
    }
  }
}

std::string dashboard_url(const LocalSettings& s) { return "http://127.0.0.1:" + std::to_string(s.http_port) + "/"; }

// The dashboard's address with a one-time login link for the owner (as
// Jupyter prints one): only who can reach this Trainyard's gateway endpoint
// as the owner gets one. Without a link: the plain address.
std::string login_url(const LocalLayout& layout, const LocalSettings& s, const std::vector<ServiceState>& states) {
  bool up = false;
  for (auto& st : states) up = up || (st.service->name == "gateway" && st.answering);
  if (!up) return dashboard_url(s);
  security::SecurityOptions keys;
  keys.key_file = layout.keys() + "/user-" + local_user_name(s) + ".key";
  keys.authorized_keys = layout.keys() + "/authorized_keys";
  auto site = security::Site::load(keys);
  auto link = create_login_link(local_gateway_endpoint(layout), local_user_name(s), 1000,
                                site ? site->get() : nullptr);
  return link ? dashboard_url(s) + "?token=" + *link : dashboard_url(s);
}

}  // namespace

bool LocalTrainyard::has_config() const { return fs::exists(layout_.config()); }

LocalSettings LocalTrainyard::stored_settings() const {
  LocalSettings s;
  auto c = Config::load(layout_.config());
  if (!c) return s;
  try {
    s.gpus = static_cast<int>(c->get_int("local.gpus", s.gpus));
    s.gpu_type = c->get_string("local.gpu_type", s.gpu_type);
    s.port_base = static_cast<int>(c->get_int("local.port_base", s.port_base));
    s.http_port = static_cast<int>(c->get_int("local.http_port", s.http_port));
    s.node = c->get_string("agent.node", s.node);
    s.user = c->get_string("local.user", s.user);
    s.cloud_nodes = static_cast<int>(c->get_int("local.cloud_nodes", s.cloud_nodes));
    s.cloud_gpu_type = c->get_string("local.cloud_gpu_type", s.cloud_gpu_type);
  } catch (const std::exception&) {
    // A hand-edited config with a wrong type: start from the defaults.
  }
  return s;
}

std::optional<int> LocalTrainyard::child_exit(const std::string& service) const {
  auto it = children_.find(service);
  if (it == children_.end()) return std::nullopt;
  if (auto e = exits_.find(service); e != exits_.end()) return e->second;
  int status = 0;
  pid_t r = ::waitpid(it->second, &status, WNOHANG);
  if (r == 0) return std::nullopt;
  int code = r < 0 ? -1 : WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  exits_[service] = code;
  return code;
}

pid_t LocalTrainyard::running_pid(const LocalService& s) const {
  if (auto it = children_.find(s.name); it != children_.end()) return child_exit(s.name) ? 0 : it->second;
  pid_t pid = read_pid(layout_.pid(s.name));
  return alive(pid, marks(s)) ? pid : 0;
}

bool LocalTrainyard::any_running() const {
  for (auto& s : local_services()) {
    if (running_pid(s)) return true;
  }
  return false;
}

std::string LocalTrainyard::endpoint_of(const LocalService& s) const {
  std::string text = read_text(layout_.ready(s.name));
  if (text.empty()) return "";
  try {
    auto j = nlohmann::json::parse(text);
    if (s.name == "bus") return j.value("frontend", "") + " / " + j.value("backend", "");
    if (s.name == "gateway") return j.value("url", "");
    return j.value("endpoint", "");
  } catch (const std::exception&) {
    return "";
  }
}

std::vector<ServiceState> LocalTrainyard::probe(client::Client* c, const LocalSettings& settings) const {
  std::vector<ServiceState> out;
  std::optional<std::vector<fb::NodeStatusT>> nodes;
  for (auto& s : local_services()) {
    ServiceState st;
    st.service = &s;
    st.pid = running_pid(s);
    st.running = st.pid != 0;
    st.endpoint = endpoint_of(s);
    if (!st.running) {
      st.detail = "not running";
    } else if (st.endpoint.empty()) {
      st.detail = "starting (no ready file yet)";
    } else if (s.name == "bus") {
      probe_bus(settings, st);
    } else if (s.name == "gateway") {
      probe_gateway(settings, st);
    } else if (s.name == "agent") {
      if (!nodes && c) {
        auto n = c->nodes();
        nodes = n ? std::move(*n) : std::vector<fb::NodeStatusT>{};
      }
      probe_agent(settings, nodes ? *nodes : std::vector<fb::NodeStatusT>{}, st);
    } else if (c) {
      auto pong = c->ping(s.name);
      st.answering = pong.ok();
      if (!pong) st.detail = pong.status().message();
    }
    if (st.answering) st.detail.clear();
    out.push_back(std::move(st));
  }
  return out;
}

std::unique_ptr<client::Client> LocalTrainyard::client(int timeout_ms) const {
  client::EndpointFlags f;
  f.config = layout_.config();
  f.timeout_ms = timeout_ms;
  auto e = client::resolve_endpoints(f, std::nullopt, "");
  if (!e) return nullptr;
  return std::make_unique<client::Client>(std::move(*e), "user:local");
}

void print_table(const LocalTrainyard& t, const LocalSettings& s, const std::vector<ServiceState>& states) {
  Table table({"SERVICE", "PID", "STATE", "ENDPOINT"});
  for (auto& st : states) {
    std::string state = st.answering ? "answering" : st.running ? "NOT ANSWERING" : "stopped";
    std::string endpoint = st.endpoint;
    if (st.service->name == "agent") {
      endpoint = "node " + s.node + (s.gpus > 0 ? ", " + std::to_string(s.gpus) + " x " + s.gpu_type : "") +
                 (st.endpoint.empty() ? "" : " (" + st.endpoint + ")");
    }
    if (!st.answering && !st.detail.empty() && st.running) endpoint += (endpoint.empty() ? "" : "  ") + st.detail;
    table.add({st.service->name, st.running ? std::to_string(st.pid) : "-", state, endpoint.empty() ? "-" : endpoint});
  }
  std::cout << table.render();
  std::string url = login_url(t.layout(), s, states);
  bool link = url.find("?token=") != std::string::npos;
  std::cout << "\nDashboard:  " << url << (link ? "  (a one-time login link: open it once)" : "") << "\n"
            << "Config:     " << t.layout().config() << "\n"
            << "Logs:       " << t.layout().logs() << "/\n";
}

nlohmann::json states_json(const LocalTrainyard& t, const LocalSettings& s, const std::vector<ServiceState>& states) {
  nlohmann::json services = nlohmann::json::array();
  bool all = true;
  for (auto& st : states) {
    all = all && st.answering;
    services.push_back({{"name", st.service->name},
                        {"binary", st.service->binary},
                        {"pid", st.pid},
                        {"running", st.running},
                        {"answering", st.answering},
                        {"endpoint", st.endpoint},
                        {"detail", st.detail},
                        {"log", t.layout().log(st.service->name)}});
  }
  return {{"dir", t.layout().dir},       {"config", t.layout().config()}, {"dashboard", dashboard_url(s)}, {"login_url", login_url(t.layout(), s, states)},
          {"all_answering", all},        {"node", s.node},                {"gpus", s.gpus},
          {"gpu_type", s.gpu_type},      {"services", services}};
}

}  // namespace trainyard::ty

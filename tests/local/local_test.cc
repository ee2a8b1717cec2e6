// `ty local up|status|down` as a user runs it: real processes started by ty
// from the build tree, in a temporary data directory found through
// $XDG_DATA_HOME, on ports moved by --port-base so parallel tests never
// meet. A job submitted with plain `ty submit` (no flags, no $TY_CONFIG)
// reaches it; `down` leaves no process alive, not even a running job.
#define BOOST_TEST_MODULE local
#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "local_ports.h"
#include "process.h"

using namespace std::chrono_literals;
namespace tt = trainyard::testing;
using nlohmann::json;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// One home, data directory and port base for the whole module; the cases
// run in order against the same local Trainyard.
struct Local {
  tt::TempDir tmp;
  std::string home = tmp / "home";
  std::string data = tmp / "xdg-data/trainyard";  // where ty local up puts it by default
  int base = tt::free_port_base();

  Local() { std::filesystem::create_directories(home); }
  ~Local() {
    // Whatever a failed case left behind.
    tt::run({tt::bin("ty"), "local", "down", "--data", data, "--grace", "1"}, 30s, env());
    tt::kill_processes_mentioning(tmp.path());
  }

  std::map<std::string, std::string> env() const {
    return {{"HOME", home}, {"XDG_DATA_HOME", tmp / "xdg-data"}, {"XDG_STATE_HOME", ""}, {"TY_CONFIG", ""},
            {"USER", "ada"}};
  }
  std::pair<int, std::string> ty(std::vector<std::string> args, std::chrono::milliseconds timeout = 30s) const {
    args.insert(args.begin(), tt::bin("ty"));
    return tt::run(args, timeout, env());
  }
  std::string logs() const {
    std::string out;
    for (auto& e : std::filesystem::directory_iterator(data + "/logs")) {
      auto text = tt::read_file(e.path());
      if (text.size() > 2500) text = "..." + text.substr(text.size() - 2500);
      out += "---- " + e.path().filename().string() + " ----\n" + text + "\n";
    }
    return out;
  }
};

Local& local() {
  static Local l;
  return l;
}

bool process_alive(int pid) {
  if (pid <= 0 || ::kill(pid, 0) != 0) return false;
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] != 'Z';
}

json status_json() {
  auto [rc, out] = local().ty({"local", "status", "--json"});
  BOOST_TEST_INFO("ty local status --json: " << out);
  return json::parse(out.substr(out.find('{')));
}

}  // namespace

BOOST_AUTO_TEST_CASE(up_refuses_a_port_in_use_and_names_the_flag_that_moves_it) {
  auto& l = local();
  // Something else holds the scheduler's port.
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(l.base + 10));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  BOOST_REQUIRE(::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
  BOOST_REQUIRE(::listen(s, 1) == 0);
  auto [rc, out] = l.ty({"local", "up", "--port-base", std::to_string(l.base)});
  ::close(s);
  BOOST_TEST(rc == 1);
  BOOST_TEST_INFO(out);
  BOOST_TEST(contains(out, "port " + std::to_string(l.base + 10) + " (scheduler)"));
  BOOST_TEST(contains(out, "--port-base"));
  // Nothing was started.
  BOOST_TEST(tt::kill_processes_mentioning(l.tmp.path()) == 0);
}

namespace {

// The status of one GET on 127.0.0.1:port (0: no answer).
int http_status_of(int port, const std::string& path) {
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string got;
  if (::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0) {
    std::string req = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if (::send(s, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size())) {
      char buf[4096];
      for (ssize_t n; (n = ::recv(s, buf, sizeof(buf), 0)) > 0;) got.append(buf, static_cast<size_t>(n));
    }
  }
  ::close(s);
  return got.rfind("HTTP/1.", 0) == 0 && got.size() > 12 ? std::stoi(got.substr(9, 3)) : 0;
}

}  // namespace

BOOST_AUTO_TEST_CASE(up_starts_every_service_and_waits_until_each_answers) {
  auto& l = local();
  auto [rc, out] = l.ty({"local", "up", "--gpus", "2", "--gpu-type", "A100", "--port-base", std::to_string(l.base)},
                        120s);
  BOOST_REQUIRE_MESSAGE(rc == 0, out << (std::filesystem::exists(l.data + "/logs") ? l.logs() : ""));
  // Data, config, rate card and logs where $XDG_DATA_HOME says.
  for (auto f : {"trainyard.toml", "rates.toml", "logs/scheduler.log", "run/agent.pid", "db/broker"}) {
    BOOST_CHECK_MESSAGE(std::filesystem::exists(l.data + "/" + f), l.data << "/" << f << " is missing");
  }
  std::string http = "http://127.0.0.1:" + std::to_string(l.base + 2530) + "/";
  BOOST_TEST(contains(out, "Dashboard:  " + http));
  for (auto svc : {"bus", "broker", "scheduler", "metrics", "billing", "agent", "gateway"}) {
    BOOST_CHECK_MESSAGE(contains(out, svc), svc << " missing from: " << out);
  }
  BOOST_TEST(contains(out, "tcp://127.0.0.1:" + std::to_string(l.base + 10)));  // the scheduler's endpoint

  // Private to its owner: the data directory is 0700, and the gateway lets
  // in only who opens the printed one-time link (once).
  auto perms = std::filesystem::status(l.data).permissions() & std::filesystem::perms::all;
  BOOST_TEST((perms == std::filesystem::perms::owner_all), "data dir mode " << std::oct << static_cast<int>(perms));
  auto at = out.find("/?token=");
  BOOST_REQUIRE_MESSAGE(at != std::string::npos, "no one-time login link in: " << out);
  std::string link = out.substr(at, 8 + 64);
  int port = l.base + 2530;
  BOOST_TEST(http_status_of(port, "/api/v1/jobs") == 401);
  BOOST_TEST(http_status_of(port, "/healthz") == 200);
  BOOST_TEST(http_status_of(port, link) == 303);
  BOOST_TEST(http_status_of(port, link) == 401);  // spent

  auto st = status_json();
  BOOST_TEST(st["all_answering"] == true);
  BOOST_TEST(st["dir"] == l.data);
  BOOST_REQUIRE(st["services"].size() == 7u);
  for (auto& s : st["services"]) {
    BOOST_TEST_INFO(s.dump());
    BOOST_TEST(s["answering"] == true);
    BOOST_TEST(process_alive(s["pid"].get<int>()));
  }
  auto [src, sout] = l.ty({"local", "status"});
  BOOST_TEST(src == 0);
  BOOST_TEST(contains(sout, "every service answers"));
}

BOOST_AUTO_TEST_CASE(up_on_a_running_local_trainyard_says_so_and_changes_nothing) {
  auto& l = local();
  auto before = status_json();
  auto [rc, out] = l.ty({"local", "up"}, 60s);
  BOOST_TEST(rc == 0);
  BOOST_TEST_INFO(out);
  BOOST_TEST(contains(out, "already running"));
  auto after = status_json();
  for (size_t i = 0; i < before["services"].size(); ++i) {
    BOOST_TEST(before["services"][i]["pid"] == after["services"][i]["pid"]);
  }
}

BOOST_AUTO_TEST_CASE(a_killed_service_shows_in_status_and_up_starts_only_it_again) {
  auto& l = local();
  auto before = status_json()["services"];
  int billing = 0;
  for (auto& s : before) {
    if (s["name"] == "billing") billing = s["pid"].get<int>();
  }
  BOOST_REQUIRE(billing > 0);
  ::kill(billing, SIGKILL);
  BOOST_REQUIRE(tt::wait_until([&] { return !process_alive(billing); }, 5s));

  auto [src, sout] = l.ty({"local", "status"});
  BOOST_TEST(src == 1);
  BOOST_TEST_INFO(sout);
  BOOST_TEST(contains(sout, "NOT every service answers"));
  BOOST_TEST(std::regex_search(sout, std::regex(R"(\nbilling +- +stopped)")));

  auto [rc, out] = l.ty({"local", "up"}, 60s);
  BOOST_REQUIRE_MESSAGE(rc == 0, out << l.logs());
  BOOST_TEST_INFO(out);
  BOOST_TEST(contains(out, "Restarting the stopped services"));
  auto after = status_json();
  BOOST_TEST(after["all_answering"] == true);
  for (size_t i = 0; i < before.size(); ++i) {
    if (before[i]["name"] == "billing") {
      BOOST_TEST(after["services"][i]["pid"] != before[i]["pid"]);
    } else {
      BOOST_TEST(after["services"][i]["pid"] == before[i]["pid"]);
    }
  }
}

BOOST_AUTO_TEST_CASE(plain_ty_commands_reach_the_local_trainyard_and_a_job_runs_on_its_gpus) {
  auto& l = local();
  // No flag, no $TY_CONFIG, no ~/.config: the running local Trainyard's config.
  auto [rc, out] = l.ty({"submit", "--parsable", "--gpus-per-node", "1", "--time", "2", "--wrap",
                         "echo hello-local on GPU $CUDA_VISIBLE_DEVICES"});
  BOOST_REQUIRE_MESSAGE(rc == 0, out << l.logs());
  std::string id = out.substr(0, out.find('\n'));
  auto [wrc, wout] = l.ty({"wait", id, "--timeout", "45"}, 60s);
  BOOST_REQUIRE_MESSAGE(wrc == 0, wout << l.logs());
  auto [lrc, log] = l.ty({"logs", id});
  BOOST_TEST(lrc == 0);
  BOOST_TEST_INFO(log);
  BOOST_TEST(contains(log, "hello-local on GPU 0"));
  auto [nrc, nodes] = l.ty({"nodes", "--json"});
  BOOST_TEST(nrc == 0);
  BOOST_TEST_INFO(nodes);
  BOOST_TEST(contains(nodes, "A100"));
}

BOOST_AUTO_TEST_CASE(down_stops_every_service_and_the_jobs_still_running) {
  auto& l = local();
  std::string work = l.tmp / "work";
  std::filesystem::create_directories(work);
  auto [rc, out] = l.ty({"submit", "--parsable", "--gpus-per-node", "1", "--time", "10", "--chdir", work, "--wrap",
                         "sleep 600"});
  BOOST_REQUIRE_MESSAGE(rc == 0, out);
  std::string id = out.substr(0, out.find('\n'));
  bool running = tt::wait_until(
      [&] {
        auto [src, s] = l.ty({"status", id, "--json"});
        return src == 0 && contains(s, "\"running\"");
      },
      30s);
  BOOST_REQUIRE_MESSAGE(running, l.ty({"status", id}).second << l.logs());

  auto services = status_json()["services"];
  auto [drc, dout] = l.ty({"local", "down", "--grace", "3"}, 60s);
  BOOST_TEST(drc == 0);
  BOOST_TEST_INFO(dout);
  BOOST_TEST(contains(dout, "1 running job ended"));
  for (auto& s : services) {
    BOOST_TEST_INFO(s.dump());
    BOOST_TEST(!process_alive(s["pid"].get<int>()));
  }
  // No job, supervisor or service mentions the test's directories any more.
  BOOST_TEST(tt::kill_processes_mentioning(l.tmp.path()) == 0);

  auto [src, sout] = l.ty({"local", "status", "--data", l.data});
  BOOST_TEST(src == 1);
  BOOST_TEST(contains(sout, "stopped"));
  auto [again, aout] = l.ty({"local", "down", "--data", l.data});
  BOOST_TEST(again == 0);
  BOOST_TEST(contains(aout, "No local Trainyard is running"));
}

namespace {

// GET `path` over HTTP/1.0 and read the answer until the server closes: the
// server closes first, so the connection waits in TIME_WAIT on its port.
bool get_until_server_closes(int port, const std::string& path) {
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    ::close(s);
    return false;
  }
  std::string req = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  bool sent = ::send(s, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size());
  char buf[4096];
  while (sent && ::recv(s, buf, sizeof(buf), 0) > 0) {
  }
  ::close(s);
  return sent;
}

// Whether a TCP socket on 127.0.0.1:`port` is in TIME_WAIT (/proc/net/tcp).
bool time_wait_on(int port) {
  std::ifstream f("/proc/net/tcp");
  char want[16];
  std::snprintf(want, sizeof want, ":%04X", port);
  for (std::string line; std::getline(f, line);) {
    std::istringstream in(line);
    std::string slot, local, remote, state;
    in >> slot >> local >> remote >> state;
    if (local.size() > 5 && local.substr(local.size() - 5) == want && state == "06") return true;
  }
  return false;
}

}  // namespace

BOOST_AUTO_TEST_CASE(up_right_after_down_starts_again_on_the_same_ports) {
  auto& l = local();
  auto [rc, out] = l.ty({"local", "up", "--data", l.data}, 120s);
  BOOST_REQUIRE_MESSAGE(rc == 0, out << l.logs());
  // A browser's connections, closed by the gateway: its port keeps sockets
  // in TIME_WAIT for a minute after down.
  int http = l.base + 2530;
  for (int i = 0; i < 3; ++i) BOOST_REQUIRE(get_until_server_closes(http, "/api/v1/health"));
  auto [drc, dout] = l.ty({"local", "down", "--data", l.data, "--grace", "3"}, 60s);
  BOOST_REQUIRE_MESSAGE(drc == 0, dout);
  BOOST_TEST(time_wait_on(http));

  auto [again, aout] = l.ty({"local", "up", "--data", l.data}, 120s);
  BOOST_TEST_INFO(aout);
  BOOST_REQUIRE_MESSAGE(again == 0, aout << l.logs());
  BOOST_TEST(!contains(aout, "in use"));
  BOOST_TEST(status_json()["all_answering"] == true);
  auto [d2, d2out] = l.ty({"local", "down", "--data", l.data, "--grace", "3"}, 60s);
  BOOST_TEST(d2 == 0);
}

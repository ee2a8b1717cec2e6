// The pure side of the local Trainyard: its generated config means to every
// service what ty local up says (ports, data directories, declared GPUs),
// and plain ty commands find a running local Trainyard's config only after
// flags, $TY_CONFIG and ~/.config, and only while its scheduler runs.
#define BOOST_TEST_MODULE local_config
#include <boost/test/unit_test.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "local.h"
#include "process.h"
#include "trainyard/endpoints.h"
#include "util/config.h"
#include "util/config_schema.h"

using namespace trainyard;
namespace tt = trainyard::testing;
using namespace std::chrono_literals;

namespace {

void write(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path) << text;
}

// A process whose command line names trainyard-scheduler (a renamed
// sleep), standing in for a running scheduler.
struct FakeScheduler {
  pid_t pid;
  explicit FakeScheduler(const std::string& dir) {
    std::string exe = dir + "/trainyard-scheduler";
    std::filesystem::copy_file("/bin/sleep", exe);
    pid = fork();
    if (pid == 0) {
      execl(exe.c_str(), exe.c_str(), "60", static_cast<char*>(nullptr));
      _exit(127);
    }
  }
  ~FakeScheduler() {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }
};

}  // namespace

BOOST_AUTO_TEST_CASE(the_generated_config_gives_every_service_its_port_data_and_the_declared_gpus) {
  ty::LocalLayout l{"/data/ty"};
  ty::LocalSettings s;
  s.gpus = 3;
  s.gpu_type = "H100";
  s.port_base = 7550;
  s.http_port = 10080;
  s.node = "box";
  s.user = "ada";
  auto c = Config::parse(ty::local_config_text(l, s), "trainyard.toml");
  BOOST_REQUIRE_MESSAGE(c.ok(), c.status().message());
  BOOST_TEST(c->get_string("bus.frontend") == "tcp://127.0.0.1:7550");
  BOOST_TEST(c->get_string("bus.backend") == "tcp://127.0.0.1:7551");
  BOOST_TEST(c->get_string("scheduler.endpoint") == "tcp://127.0.0.1:7560");
  BOOST_TEST(c->get_string("broker.endpoint") == "tcp://127.0.0.1:7561");
  BOOST_TEST(c->get_string("metrics.endpoint") == "tcp://127.0.0.1:7562");
  BOOST_TEST(c->get_string("billing.endpoint") == "tcp://127.0.0.1:7563");
  BOOST_TEST(c->get_string("gateway.listen") == "127.0.0.1:10080");
  BOOST_TEST(c->get_string("scheduler.data") == "/data/ty/db/scheduler");
  BOOST_TEST(c->get_string("agent.data") == "/data/ty/db/agent");
  BOOST_TEST(c->get_string("agent.runs_dir") == "/data/ty/runs");
  BOOST_TEST(c->get_string("billing.rates") == "/data/ty/rates.toml");
  BOOST_TEST(c->get_string("agent.node") == "box");
  // The owner is the gateway's admin and whom its login links are for.
  BOOST_TEST(c->get_string("local.user") == "ada");
  BOOST_TEST(c->get_strings("gateway.admins") == (std::vector<std::string>{"ada"}));
  BOOST_TEST(c->get_string("gateway.endpoint") == "ipc:///data/ty/run/gateway.sock");
  BOOST_TEST(c->get_string("gateway.data") == "/data/ty/db/gateway");
  auto gpus = c->table().at_path("agent.gpus");
  BOOST_REQUIRE(gpus.is_array());
  BOOST_TEST(gpus[0]["count"].value_or(0) == 3);
  BOOST_TEST(gpus[0]["type"].value_or(std::string()) == "H100");
  // A job submitted right after `up` is accepted before the node registers.
  BOOST_TEST(c->get_strings("scheduler.gpu_types") == (std::vector<std::string>{"H100"}));
  // What the next `up` reads back.
  BOOST_TEST(c->get_int("local.port_base") == 7550);
  BOOST_TEST(c->get_int("local.gpus") == 3);
  // The ports ty local up checks are the ones in the config.
  BOOST_TEST(ty::local_ports(s, "bus") == (std::vector<int>{7550, 7551}));
  BOOST_TEST(ty::local_ports(s, "billing") == (std::vector<int>{7563}));
  BOOST_TEST(ty::local_ports(s, "gateway") == (std::vector<int>{10080}));
  BOOST_TEST(ty::local_ports(s, "agent").empty());
}

BOOST_AUTO_TEST_CASE(cloud_nodes_add_a_local_pool_whose_slots_the_schema_and_scheduler_know) {
  ty::LocalLayout l{"/data/ty"};
  ty::LocalSettings s;
  s.cloud_nodes = 2;
  s.cloud_driver = "/opt/ty/bin/trainyard-cloud-local";
  s.agent_binary = "/opt/ty/bin/trainyard-agent";
  auto c = Config::parse(ty::local_config_text(l, s), "trainyard.toml");
  BOOST_REQUIRE_MESSAGE(c.ok(), c.status().message());
  BOOST_TEST(ConfigSchema::trainyard().check(*c).ok(), ConfigSchema::trainyard().check(*c).message());
  auto driver = c->get_strings("pools.cloud.driver");
  BOOST_REQUIRE(driver.size() > 4u);
  BOOST_TEST(driver[0] == "/opt/ty/bin/trainyard-cloud-local");
  BOOST_TEST(driver[2] == "/data/ty/cloud");
  BOOST_TEST(driver[4] == "/opt/ty/bin/trainyard-agent");
  BOOST_TEST(c->get_int("pools.cloud.max_nodes") == 2);
  BOOST_TEST(c->get_string("pools.cloud.gpu_type") == "H100");
  // H100 jobs are accepted at submit (no owned node has one) and rent.
  BOOST_TEST(c->get_strings("scheduler.gpu_types") == (std::vector<std::string>{"A100", "H100"}));
  BOOST_TEST(c->get_int("local.cloud_nodes") == 2);
  // Without it: no pool at all.
  s.cloud_nodes = 0;
  auto plain = Config::parse(ty::local_config_text(l, s), "trainyard.toml");
  BOOST_REQUIRE(plain.ok());
  BOOST_TEST(!plain->table().at_path("pools"));
}

BOOST_AUTO_TEST_CASE(the_default_rate_card_prices_the_declared_types) {
  auto card = Config::parse(ty::default_rate_card(), "rates.toml");
  BOOST_REQUIRE(card.ok());
  BOOST_TEST(card->table().at_path("period[0].gpu_hour.A100").value_or(std::string()) == "2.50");
  BOOST_TEST(card->table().at_path("period[0].gpu_hour.default").value_or(std::string()) == "1.00");
}

BOOST_AUTO_TEST_CASE(data_directory_and_node_name_defaults) {
  BOOST_TEST(ty::default_local_dir("/home/ada", std::nullopt) == "/home/ada/.local/share/trainyard");
  BOOST_TEST(ty::default_local_dir("/home/ada", std::string("")) == "/home/ada/.local/share/trainyard");
  BOOST_TEST(ty::default_local_dir("/home/ada", std::string("/xdg")) == "/xdg/trainyard");
  BOOST_TEST(ty::node_name_from_host("gpu-07.lab.example.org") == "gpu-07");
  BOOST_TEST(ty::node_name_from_host("my box@home") == "my-box-home");
  BOOST_TEST(ty::node_name_from_host("") == "local");
}

BOOST_AUTO_TEST_CASE(plain_ty_finds_the_running_local_trainyard_after_every_other_config) {
  tt::TempDir tmp;
  std::string home = tmp / "home";
  std::string registry = client::local_registry_path(home, std::nullopt);
  BOOST_TEST(registry == home + "/.local/state/trainyard/local");
  BOOST_TEST(client::local_registry_path(home, std::string("/state")) == "/state/trainyard/local");

  // Two local Trainyards listed: the newer one's scheduler is gone.
  std::string stale = tmp / "stale", live = tmp / "live";
  write(stale + "/trainyard.toml", "[scheduler]\nendpoint = \"tcp://127.0.0.1:1\"\n");
  write(stale + "/run/scheduler.pid", "999999999\n");
  write(live + "/trainyard.toml", "[scheduler]\nendpoint = \"tcp://127.0.0.1:7560\"\n");
  BOOST_TEST(client::running_local_config(registry) == "");  // no registry yet
  write(registry, stale + "\n" + live + "\n");
  BOOST_TEST(client::running_local_config(registry) == "");  // neither runs

  // A pid that is alive but not a scheduler does not count either.
  write(live + "/run/scheduler.pid", std::to_string(getpid()) + "\n");
  BOOST_TEST(client::running_local_config(registry) == "");

  FakeScheduler scheduler(tmp.path());
  write(live + "/run/scheduler.pid", std::to_string(scheduler.pid) + "\n");
  BOOST_REQUIRE(tt::wait_until([&] { return client::running_local_config(registry) == live + "/trainyard.toml"; }, 5s));
  std::string local = client::running_local_config(registry);

  auto e = client::resolve_endpoints({}, std::nullopt, home, local);
  BOOST_REQUIRE(e.ok());
  BOOST_TEST(e->scheduler == "tcp://127.0.0.1:7560");
  BOOST_TEST(e->source == local);

  // ~/.config, $TY_CONFIG and flags all come first.
  write(home + "/.config/trainyard/config.toml", "[scheduler]\nendpoint = \"tcp://home:1\"\n");
  BOOST_TEST(client::resolve_endpoints({}, std::nullopt, home, local)->scheduler == "tcp://home:1");
  write(tmp / "env.toml", "[scheduler]\nendpoint = \"tcp://env:1\"\n");
  BOOST_TEST(client::resolve_endpoints({}, tmp / "env.toml", tmp / "nohome", local)->scheduler == "tcp://env:1");
  client::EndpointFlags flags;
  flags.scheduler = "tcp://flag:1";
  BOOST_TEST(client::resolve_endpoints(flags, std::nullopt, tmp / "nohome", local)->scheduler == "tcp://flag:1");
}

// Endpoint resolution order: flags > $TY_CONFIG (or --config) >
// ~/.config/trainyard/config.toml > defaults.
#define BOOST_TEST_MODULE client_endpoints
#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <fstream>

#include "process.h"
#include "trainyard/endpoints.h"

using namespace trainyard;
using namespace trainyard::client;

namespace {
void write(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path) << text;
}
}  // namespace

BOOST_AUTO_TEST_CASE(defaults_are_the_local_ports_of_the_flows) {
  testing::TempDir home;  // no config there
  auto e = resolve_endpoints({}, std::nullopt, home.path());
  BOOST_REQUIRE(e.ok());
  BOOST_TEST(e->scheduler == "tcp://127.0.0.1:5560");
  BOOST_TEST(e->broker == "tcp://127.0.0.1:5561");
  BOOST_TEST(e->metrics == "tcp://127.0.0.1:5562");
  BOOST_TEST(e->billing == "tcp://127.0.0.1:5563");
  BOOST_REQUIRE(e->bus.size() == 1u);
  BOOST_TEST(e->bus[0] == "tcp://127.0.0.1:5551");
  BOOST_TEST(e->source == "");
}

BOOST_AUTO_TEST_CASE(home_config_then_ty_config_then_flags) {
  testing::TempDir home, other;
  write(home / ".config/trainyard/config.toml",
        "[scheduler]\nendpoint = \"tcp://home:1\"\n[broker]\nendpoint = \"tcp://home:2\"\n"
        "[bus]\nbackend = [\"tcp://bus-a:5551\", \"tcp://bus-b:5551\"]\n[client]\ntimeout_ms = 700\n");
  write(other / "ty.toml", "[scheduler]\nendpoint = \"tcp://env:1\"\n");

  auto h = resolve_endpoints({}, std::nullopt, home.path());
  BOOST_REQUIRE_MESSAGE(h.ok(), h.status().message());
  BOOST_TEST(h->scheduler == "tcp://home:1");
  BOOST_TEST(h->broker == "tcp://home:2");
  BOOST_TEST(h->metrics == "tcp://127.0.0.1:5562");  // not in the file: default
  BOOST_TEST(h->bus.size() == 2u);
  BOOST_TEST(h->timeout_ms == 700);
  BOOST_TEST(h->source == home / ".config/trainyard/config.toml");

  // $TY_CONFIG replaces the home file entirely.
  auto env = resolve_endpoints({}, other / "ty.toml", home.path());
  BOOST_REQUIRE(env.ok());
  BOOST_TEST(env->scheduler == "tcp://env:1");
  BOOST_TEST(env->broker == "tcp://127.0.0.1:5561");

  // An empty $TY_CONFIG counts as unset.
  BOOST_TEST(resolve_endpoints({}, std::string(""), home.path())->scheduler == "tcp://home:1");

  // Flags win over both, key by key.
  EndpointFlags f;
  f.scheduler = "tcp://flag:1";
  f.bus = "tcp://x:1,tcp://y:2";
  f.timeout_ms = 50;
  auto fl = resolve_endpoints(f, other / "ty.toml", home.path());
  BOOST_REQUIRE(fl.ok());
  BOOST_TEST(fl->scheduler == "tcp://flag:1");
  BOOST_TEST(fl->bus.size() == 2u);
  BOOST_TEST(fl->bus[1] == "tcp://y:2");
  BOOST_TEST(fl->timeout_ms == 50);

  // --config beats $TY_CONFIG.
  EndpointFlags c;
  c.config = home / ".config/trainyard/config.toml";
  BOOST_TEST(resolve_endpoints(c, other / "ty.toml", "")->scheduler == "tcp://home:1");
}

BOOST_AUTO_TEST_CASE(a_named_config_must_exist_and_parse) {
  testing::TempDir dir;
  auto missing = resolve_endpoints({}, dir / "nope.toml", dir.path());
  BOOST_TEST(!missing.ok());
  BOOST_TEST(missing.status().message().find("nope.toml") != std::string::npos);
  BOOST_TEST(missing.status().message().find("TY_CONFIG") != std::string::npos);

  write(dir / "bad.toml", "[scheduler]\nendpoint = \n");
  auto bad = resolve_endpoints({}, dir / "bad.toml", dir.path());
  BOOST_TEST(!bad.ok());
  BOOST_TEST(bad.status().message().find("line 2") != std::string::npos);

  write(dir / "typed.toml", "[scheduler]\nendpoint = 5560\n");
  auto typed = resolve_endpoints({}, dir / "typed.toml", dir.path());
  BOOST_TEST(!typed.ok());
  BOOST_TEST(typed.status().message().find("scheduler.endpoint") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(bind_addresses_become_loopback) {
  testing::TempDir dir;
  write(dir / "svc.toml", "[scheduler]\nendpoint = \"tcp://*:5560\"\n[broker]\nendpoint = \"tcp://0.0.0.0:5561\"\n");
  auto e = resolve_endpoints({}, dir / "svc.toml", "");
  BOOST_REQUIRE(e.ok());
  BOOST_TEST(e->scheduler == "tcp://127.0.0.1:5560");
  BOOST_TEST(e->broker == "tcp://127.0.0.1:5561");
  BOOST_TEST(connectable("ipc:///tmp/x") == "ipc:///tmp/x");
}

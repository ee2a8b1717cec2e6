// Config: TOML files, command-line overrides, and errors that name the key,
// file and line.
#define BOOST_TEST_MODULE config
#include <boost/test/unit_test.hpp>

#include <fstream>

#include "process.h"
#include "util/config.h"

using trainyard::Config;
using trainyard::testing::TempDir;

BOOST_AUTO_TEST_CASE(values_come_from_the_file_and_overrides_win) {
  TempDir dir;
  std::ofstream(dir / "c.toml") << "[scheduler]\nendpoint = \"tcp://127.0.0.1:5560\"\ncycle_ms = 50\n"
                                   "[bus]\nfrontend = [\"tcp://a:1\", \"tcp://b:1\"]\n";
  auto c = Config::load(dir / "c.toml", {"scheduler.cycle_ms=75", "agent.node=gpu-7", "agent.simulate=true"});
  BOOST_REQUIRE_MESSAGE(c.ok(), c.status().to_string());
  BOOST_CHECK_EQUAL(c->get_string("scheduler.endpoint"), "tcp://127.0.0.1:5560");
  BOOST_CHECK_EQUAL(c->get_int("scheduler.cycle_ms"), 75);
  BOOST_CHECK_EQUAL(c->get_string("agent.node"), "gpu-7");
  BOOST_CHECK_EQUAL(c->get_bool("agent.simulate"), true);
  BOOST_CHECK_EQUAL(c->get_strings("bus.frontend").size(), 2u);
  BOOST_CHECK_EQUAL(c->get_int("missing.key", 9), 9);
}

BOOST_AUTO_TEST_CASE(a_broken_file_is_refused_with_its_line) {
  TempDir dir;
  std::ofstream(dir / "bad.toml") << "[scheduler]\nendpoint = \"tcp://x\"\ncycle_ms = = 5\n";
  auto c = Config::load(dir / "bad.toml");
  BOOST_REQUIRE(!c.ok());
  BOOST_CHECK_NE(c.status().message().find("bad.toml"), std::string::npos);
  BOOST_CHECK_NE(c.status().message().find("line 3"), std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_key_of_the_wrong_type_names_the_key_and_line) {
  auto c = Config::parse("[scheduler]\ncycle_ms = \"fast\"\n", "x.toml");
  BOOST_REQUIRE(c.ok());
  try {
    c->get_int("scheduler.cycle_ms");
    BOOST_FAIL("expected an error");
  } catch (const std::runtime_error& e) {
    std::string m = e.what();
    BOOST_CHECK_NE(m.find("scheduler.cycle_ms"), std::string::npos);
    BOOST_CHECK_NE(m.find(":2"), std::string::npos);
    BOOST_CHECK_NE(m.find("integer"), std::string::npos);
  }
}

BOOST_AUTO_TEST_CASE(a_malformed_override_is_refused) {
  auto c = Config::load("", {"no-equals-sign"});
  BOOST_REQUIRE(!c.ok());
  BOOST_CHECK_NE(c.status().message().find("no-equals-sign"), std::string::npos);
  auto missing = Config::load("/nonexistent/trainyard.toml");
  BOOST_CHECK(!missing.ok());
}

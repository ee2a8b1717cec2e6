// Config: TOML files, command-line overrides, and errors that name the key,
// file and line.
#define BOOST_TEST_MODULE config
#include <boost/test/unit_test.hpp>

#include <fstream>

#include "process.h"
#include "util/config.h"
#include "util/config_schema.h"

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

// The key schema: deploy/trainyard.example.toml, embedded in every binary.
BOOST_AUTO_TEST_CASE(a_misspelt_key_is_refused_with_the_closest_known_key) {
  auto c = Config::parse("[scheduler]\ncycle_msx = 50\nendpoint = \"tcp://a:1\"\n", "t.toml");
  BOOST_REQUIRE(c.ok());
  auto s = trainyard::ConfigSchema::trainyard().check(*c);
  BOOST_REQUIRE(!s.ok());
  BOOST_CHECK_MESSAGE(s.message().find("unknown config key 'scheduler.cycle_msx'") != std::string::npos, s.message());
  BOOST_CHECK_MESSAGE(s.message().find("t.toml line 2") != std::string::npos, s.message());
  BOOST_CHECK_MESSAGE(s.message().find("did you mean 'scheduler.cycle_ms'?") != std::string::npos, s.message());
  auto section = Config::parse("[schedular]\ncycle_ms = 5\n", "t.toml");
  auto s2 = trainyard::ConfigSchema::trainyard().check(*section);
  BOOST_CHECK_MESSAGE(s2.message().find("did you mean 'scheduler.cycle_ms'?") != std::string::npos, s2.message());
}

BOOST_AUTO_TEST_CASE(every_key_of_the_example_and_operator_named_tables_are_known) {
  auto example = Config::load(std::string(TY_SOURCE_DIR) + "/deploy/trainyard.example.toml");
  BOOST_REQUIRE_MESSAGE(example.ok(), example.status().to_string());
  auto s = trainyard::ConfigSchema::trainyard().check(*example);
  BOOST_CHECK_MESSAGE(s.ok(), s.message());
  auto named = Config::parse(
      "[scheduler.partitions.a100-long]\nmax_time_limit_s = 5\nlabels = { rack = \"r1\" }\n"
      "[scheduler.quotas.vision]\nmax_gpus = { A100 = 8 }\n[scheduler.fairshare.shares]\nnlp = 2.0\n"
      "[agent]\ncpus = 64\nlabels = { pool = \"x\" }\n",
      "t.toml");
  auto s2 = trainyard::ConfigSchema::trainyard().check(*named);
  BOOST_CHECK_MESSAGE(s2.ok(), s2.message());
  auto typo = Config::parse("[scheduler.partitions.gpu]\nmax_time_limit = 5\n", "t.toml");
  auto s3 = trainyard::ConfigSchema::trainyard().check(*typo);
  BOOST_CHECK_MESSAGE(s3.message().find("did you mean 'scheduler.partitions.*.max_time_limit_s'?") != std::string::npos,
                      s3.message());
}

BOOST_AUTO_TEST_CASE(a_numeric_key_out_of_its_range_is_refused_naming_it) {
  auto c = Config::parse("[agent]\nmetrics_read_kb = -5\n", "t.toml");
  BOOST_REQUIRE(c.ok());
  try {
    c->get_int("agent.metrics_read_kb", 256, 1, 65536);
    BOOST_FAIL("expected an error");
  } catch (const std::runtime_error& e) {
    std::string m = e.what();
    BOOST_CHECK_MESSAGE(m.find("agent.metrics_read_kb") != std::string::npos && m.find("t.toml:2") != std::string::npos &&
                            m.find("between 1 and 65536, not -5") != std::string::npos,
                        m);
  }
  BOOST_CHECK_EQUAL(c->get_int("agent.check_ms", 100, 1, 60000), 100);
}

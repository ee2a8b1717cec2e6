// scripts/demo --short --cloud as CI runs it (the build tree already built,
// so it skips installing and building): a local Trainyard of its own, a
// real training sweep, the runs ranked best first with their
// hyperparameters, a burst to a rented node of a local cloud pool, the cost
// per account (cloud apart), the dashboard URL, and nothing left running
// (rented nodes included).
#define BOOST_TEST_MODULE local_demo
#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <regex>
#include <sstream>

#include "local_ports.h"
#include "process.h"

using namespace std::chrono_literals;
namespace tt = trainyard::testing;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// The lines of `text` after the line starting with `header`, up to a blank line.
std::vector<std::string> table_after(const std::string& text, const std::string& header) {
  std::vector<std::string> rows;
  std::istringstream in(text);
  bool inside = false;
  for (std::string line; std::getline(in, line);) {
    if (!inside) {
      inside = line.rfind(header, 0) == 0;
      continue;
    }
    if (line.empty()) break;
    rows.push_back(line);
  }
  return rows;
}

}  // namespace

BOOST_AUTO_TEST_CASE(short_demo_prints_ranked_real_runs_a_cloud_burst_their_cost_and_the_dashboard_and_stops) {
  tt::TempDir tmp;
  std::filesystem::create_directories(tmp / "home");
  int base = tt::free_port_base();
  std::string data = tmp / "demo-data";
  auto [rc, out] = tt::run({"bash", std::string(TY_SOURCE_DIR) + "/scripts/demo", "--short", "--cloud", "--data", data,
                            "--port-base", std::to_string(base)},
                           200s,
                           {{"TY_DEMO_SKIP_BUILD", "1"},
                            {"TRAINYARD_BUILD_DIR", TY_BUILD_DIR},
                            {"HOME", tmp / "home"},
                            {"XDG_DATA_HOME", ""},
                            {"XDG_STATE_HOME", ""},
                            {"TY_CONFIG", ""},
                            {"USER", "ada"}});
  BOOST_TEST_MESSAGE(out);
  BOOST_REQUIRE_MESSAGE(rc == 0, "scripts/demo --short exited " << rc << ":\n" << out);

  // The ranked comparison: three real runs, each with its lr and hidden,
  // best val_acc first, accuracies a trained model reaches.
  auto rows = table_after(out, "RANK");
  BOOST_REQUIRE_MESSAGE(rows.size() == 3u, out);
  std::regex row(R"(^(\d+)\s+(\d+)\s+two-moons\[(\d)\]\s+(\S+)\s+(\d+)\s+([0-9.]+)\s+(\d+)\s+([0-9.]+)\s+([0-9.]+)$)");
  const char* grid[][2] = {{"0.5", "8"}, {"0.02", "2"}, {"2.0", "16"}};
  double last = 2;
  for (size_t i = 0; i < rows.size(); ++i) {
    std::smatch m;
    BOOST_REQUIRE_MESSAGE(std::regex_match(rows[i], m, row), "not a ranked run: '" << rows[i] << "'");
    BOOST_TEST(std::stoi(m[1]) == static_cast<int>(i + 1));
    int index = std::stoi(m[3]);
    BOOST_TEST(m[4].str() == grid[index][0]);
    BOOST_TEST(m[5].str() == grid[index][1]);
    double best = std::stod(m[6]);
    BOOST_TEST(best <= last);
    BOOST_TEST(best > 0.0);
    BOOST_TEST(best <= 1.0);
    last = best;
  }
  BOOST_TEST(std::stod(std::regex_replace(rows[0], std::regex(R"(^\S+\s+\S+\s+\S+\s+\S+\s+\S+\s+(\S+).*$)"), "$1")) > 0.8);
  BOOST_TEST(contains(out, "Best run: job"));

  // The burst: the H100 job rented cloud-0 (its key was the slot's), ran
  // there, and the node was given back once idle.
  BOOST_TEST(contains(out, "node cloud-0: Ready"), out);
  BOOST_TEST(contains(out, "node cloud-0: Released"));
  BOOST_TEST(std::regex_search(out, std::regex(R"(job \d+: succeeded)")));
  BOOST_TEST(contains(out, "running on node cloud-0 with GPUs"));
  BOOST_TEST(contains(out, "cloud:cloud"), "no cloud line in the usage:\n" << out);

  // The cost per account: the demo account was charged something.
  auto usage = table_after(out, "ACCOUNT");
  bool charged = false;
  for (auto& line : usage) {
    std::smatch m;
    if (std::regex_match(line, m, std::regex(R"(^demo\s+\S+\s+\S+\s+\S+\s+([0-9.]+)$)"))) charged = std::stod(m[1]) > 0;
  }
  BOOST_TEST(charged, "no cost for account demo in:\n" << out);
  BOOST_TEST(contains(out, "COST (USD)"));

  BOOST_TEST(contains(out, "Dashboard:   http://127.0.0.1:" + std::to_string(base + 2530) + "/"));
  BOOST_TEST(contains(out, "#/experiments/two-moons-"));
  BOOST_TEST(contains(out, "Stopped the local Trainyard; its jobs, metrics and bills stay in " + data));
  BOOST_TEST((!std::filesystem::exists(data + "/cloud/instances") ||
              std::filesystem::is_empty(data + "/cloud/instances")));
  // Stopped: nothing of it is left running, and its temporary data is kept
  // only because --data named it.
  BOOST_TEST(tt::kill_processes_mentioning(tmp.path()) == 0);
  BOOST_TEST(std::filesystem::exists(data + "/trainyard.toml"));
}

// What the Slurm compatibility tests share: one local Trainyard for the
// whole test program (`ty local up`, 4 declared A100s), a shell to run
// commands as its user would, and submitting a script as `ty submit` or as
// `sbatch`.
#pragma once

#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

#include "../local/local_ports.h"
#include "process.h"

using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace tt = trainyard::testing;
using nlohmann::json;

namespace compat {

inline bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

inline std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// One local Trainyard for the whole module, and a shell to run commands as
// its user would: build/bin (ty, sbatch, squeue...) first on the PATH.
struct Cluster {
  tt::TempDir tmp;
  std::string home = tmp / "home";
  std::string data = tmp / "xdg-data/trainyard";
  std::string work = tmp / "work";
  int base = tt::free_port_base();
  std::string node;

  Cluster() {
    fs::create_directories(home);
    fs::create_directories(work);
    auto [rc, out] = sh("ty local up --gpus 4 --gpu-type A100 --port-base " + std::to_string(base), 120s);
    auto [nrc, nodes] = sh("ty nodes --json");
    if (rc != 0 || nrc != 0) {
      std::string why = "ty local up failed: " + out + "\n" + nodes + "\n" + logs();
      stop();
      throw std::runtime_error(why);
    }
    node = json::parse(nodes.substr(nodes.find('[')))[0]["name"].get<std::string>();
  }
  ~Cluster() { stop(); }
  void stop() {
    sh("ty local down --data " + data + " --grace 1", 30s);
    tt::kill_processes_mentioning(tmp.path());
  }

  std::map<std::string, std::string> env() const {
    std::string bin_dir = fs::path(tt::bin("ty")).parent_path().string();
    const char* path = std::getenv("PATH");
    return {{"HOME", home},     {"XDG_DATA_HOME", tmp / "xdg-data"}, {"XDG_STATE_HOME", ""}, {"TY_CONFIG", ""},
            {"USER", "ada"},    {"PATH", bin_dir + ":" + (path ? path : "/usr/bin:/bin")}};
  }
  // Runs a bash command line in the work directory.
  std::pair<int, std::string> sh(const std::string& line, std::chrono::milliseconds timeout = 60s) const {
    return tt::run({"bash", "-c", "cd " + work + " && " + line}, timeout, env());
  }
  std::string logs() const {
    std::string out;
    if (!fs::exists(data + "/logs")) return out;
    for (auto& e : fs::directory_iterator(data + "/logs")) {
      auto text = tt::read_file(e.path());
      if (text.size() > 2000) text = "..." + text.substr(text.size() - 2000);
      out += "---- " + e.path().filename().string() + " ----\n" + text + "\n";
    }
    return out;
  }
  void write(const std::string& name, const std::string& text) const {
    fs::create_directories(fs::path(work + "/" + name).parent_path());
    std::ofstream(work + "/" + name) << text;
  }
  std::string read(const std::string& name) const { return tt::read_file(work + "/" + name); }
};

inline Cluster& cluster() {
  static Cluster c;
  return c;
}

// How a script is submitted: as `ty submit` or as `sbatch`. Returns the id
// a user goes on with (an array's own id for an array).
enum class Via { kTy, kSbatch };
inline const char* name_of(Via v) { return v == Via::kTy ? "ty submit" : "sbatch"; }

inline std::string submit(Via via, const std::string& args) {
  auto& c = cluster();
  if (via == Via::kSbatch) {
    // As scripts do it: jobid=$(sbatch --parsable x.sh)
    auto [rc, out] = c.sh("jobid=$(sbatch --parsable " + args + ") && echo \"id=$jobid\"");
    BOOST_REQUIRE_MESSAGE(rc == 0, "sbatch " << args << ": " << out);
    std::smatch m;
    BOOST_REQUIRE_MESSAGE(std::regex_search(out, m, std::regex(R"(id=(\d+)\n)")), out);
    return m[1];
  }
  auto [rc, out] = c.sh("ty submit --json " + args);
  BOOST_REQUIRE_MESSAGE(rc == 0, "ty submit " << args << ": " << out);
  auto j = json::parse(out.substr(out.find('{')));
  uint64_t array = j["array_job_id"];
  return std::to_string(array ? array : j["job_ids"][0].get<uint64_t>());
}

inline void wait_ok(const std::string& id) {
  auto& c = cluster();
  auto [rc, out] = c.sh("ty wait " + id + " --timeout 60", 90s);
  BOOST_REQUIRE_MESSAGE(rc == 0, "ty wait " << id << ": " << out << c.logs());
}

// Polls squeue until job `id` is in Slurm state `state` (30 s at most).
inline bool wait_until_state(const std::string& id, const std::string& state) {
  for (int i = 0; i < 300; ++i) {
    auto [rc, out] = cluster().sh("squeue -h -o %T -j " + id);
    if (rc == 0 && out.find(state) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

inline json status(const std::string& id) {
  auto [rc, out] = cluster().sh("ty status --json " + id);
  BOOST_REQUIRE_MESSAGE(rc == 0, out);
  return json::parse(out.substr(out.find_first_of("{[")));
}

}  // namespace compat

using namespace compat;

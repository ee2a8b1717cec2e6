// The registry of running local Trainyards, one data directory a line,
// newest first.
#include "local_registry.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <vector>

#include "local.h"
#include "trainyard/endpoints.h"
#include "util/service_main.h"

namespace fs = std::filesystem;

namespace trainyard::ty {

std::optional<std::string> env(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return std::nullopt;
  return std::string(v);
}

std::string home_dir() { return env("HOME").value_or(""); }

namespace {

std::string registry_path() { return client::local_registry_path(home_dir(), env("XDG_STATE_HOME")); }

std::vector<std::string> read_registry() {
  std::vector<std::string> dirs;
  std::ifstream f(registry_path());
  for (std::string d; std::getline(f, d);) {
    if (!d.empty()) dirs.push_back(d);
  }
  return dirs;
}

void write_registry(const std::vector<std::string>& dirs) {
  std::error_code ec;
  fs::create_directories(fs::path(registry_path()).parent_path(), ec);
  std::string text;
  for (auto& d : dirs) text += d + "\n";
  write_file_atomic(registry_path(), text);
}

std::string absolute(const std::string& dir) {
  std::error_code ec;
  auto p = fs::absolute(dir, ec);
  return (ec ? fs::path(dir) : p).lexically_normal().string();
}

}  // namespace

void register_dir(const std::string& dir) {
  auto dirs = read_registry();
  std::erase(dirs, dir);
  dirs.insert(dirs.begin(), dir);
  write_registry(dirs);
}

void unregister_dir(const std::string& dir) {
  auto dirs = read_registry();
  if (std::erase(dirs, dir) > 0) write_registry(dirs);
}

std::string choose_dir(const std::string& flag, bool prefer_running) {
  if (!flag.empty()) {
    std::string d = absolute(flag);
    while (d.size() > 1 && d.back() == '/') d.pop_back();
    return d;
  }
  if (prefer_running) {
    std::string config = client::running_local_config(registry_path());
    if (!config.empty()) return fs::path(config).parent_path().string();
  }
  return default_local_dir(home_dir(), env("XDG_DATA_HOME"));
}

}  // namespace trainyard::ty

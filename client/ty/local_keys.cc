// The keys of a local Trainyard: made by the same code as `ty admin keys
// init`, once, under DIR/keys; DIR itself is the owner's only (0700).
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <iostream>

#include "local.h"
#include "security/keys.h"
#include "security/site.h"

namespace trainyard::ty {

bool ensure_local_keys(const LocalLayout& l, const std::string& node, const std::string& user, int cloud_nodes) {
  namespace fs = std::filesystem;
  ::chmod(l.dir.c_str(), 0700);
  std::error_code ec;
  fs::create_directories(l.keys(), ec);
  ::chmod(l.keys().c_str(), 0700);
  std::vector<std::string> principals;
  for (const char* s : {"bus", "scheduler", "broker", "metrics", "billing", "gateway"}) {
    principals.push_back(std::string("service:") + s);
  }
  principals.push_back("agent:" + node);
  principals.push_back("user:" + user);
  for (int slot = 0; slot < cloud_nodes; ++slot) principals.push_back("agent:cloud-" + std::to_string(slot));
  auto ring_path = fs::path(l.keys()) / "authorized_keys";
  std::map<std::string, std::string, std::less<>> ring;
  for (auto& p : principals) {
    if (auto s = security::check_principal(p); !s) {
      std::cerr << "ty local up: " << s.message() << "\n";
      return false;
    }
    auto file = fs::path(l.keys()) / security::key_file_name(p);
    auto id = security::read_identity(file);
    if (!id) {
      security::Identity fresh{p, security::generate_keypair()};
      if (auto s = security::write_identity(file, fresh); !s) {
        std::cerr << "ty local up: " << s.message() << "\n";
        return false;
      }
      id = fresh;
    }
    ring[p] = id->keys.public_key;
  }
  std::ofstream(ring_path, std::ios::trunc) << security::format_keyring(ring);
  return true;
}

}  // namespace trainyard::ty

#include "security/authz.h"
#include "security/site.h"
#include "util/config.h"

namespace trainyard::security {

std::filesystem::path key_file_name(std::string_view principal) {
  return std::string(principal_kind(principal)) + "-" + std::string(principal_name(principal)) + ".key";
}

Result<SecurityOptions> options_from_config(const Config& config, std::string_view principal) {
  SecurityOptions o;
  auto mode = config.get_string("security.mode", "curve");
  if (mode == "none") {
    o.mode = Mode::kNone;
  } else if (mode != "curve") {
    return Status::invalid("security.mode: \"" + mode + "\" is neither \"curve\" nor \"none\"");
  }
  std::filesystem::path dir = config.get_string("security.keys_dir", "/etc/trainyard/keys");
  if (auto s = check_principal(principal); !s) return s;
  o.key_file = config.get_string("security.key", (dir / key_file_name(principal)).string());
  o.authorized_keys = config.get_string("security.authorized_keys", (dir / "authorized_keys").string());
  o.reload_check_ms = static_cast<int>(config.get_int("security.reload_check_ms", 1000, 50, 600000));
  return o;
}

Result<Directory> directory_from_config(const Config& config) {
  Directory d;
  auto names = [&](std::string_view key, std::set<std::string, std::less<>>& out) -> Status {
    for (auto& n : config.get_strings(key)) {
      if (auto s = check_principal("user:" + n); !s) return Status::invalid(std::string(key) + ": " + s.message());
      out.insert(n);
    }
    return Status::success();
  };
  try {
    if (auto s = names("security.roles.admins", d.admins); !s) return s;
    if (auto s = names("security.roles.operators", d.operators); !s) return s;
    if (const auto* accounts = config.table()["security"]["accounts"].as_table()) {
      for (auto& [name, _] : *accounts) {
        std::string base = "security.accounts." + std::string(name.str());
        auto& entry = d.accounts[std::string(name.str())];
        if (auto s = names(base + ".members", entry.members); !s) return s;
        if (auto s = names(base + ".coordinators", entry.coordinators); !s) return s;
      }
    }
  } catch (const std::exception& e) {
    return Status::invalid(e.what());
  }
  return d;
}

Result<TrustSettings> trust_from_config(const Config& config) {
  TrustSettings t;
  auto dir = directory_from_config(config);
  if (!dir) return dir.status();
  t.directory = std::move(dir).value();
  try {
    t.directory_owner = config.get_string("billing.instance", t.directory_owner);
    t.audit_refusals_per_s = config.get_double("security.audit_refusals_per_s", t.audit_refusals_per_s);
  } catch (const std::exception& e) {
    return Status::invalid(e.what());
  }
  if (t.directory_owner.empty()) return Status::invalid("billing.instance is empty: name billing's instance");
  if (!(t.audit_refusals_per_s > 0)) return Status::invalid("security.audit_refusals_per_s must be positive");
  return t;
}

}  // namespace trainyard::security

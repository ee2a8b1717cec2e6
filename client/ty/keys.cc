// ty admin keys init|add|revoke|list, and ty login: the site's CURVE keys.
//
// A keys directory holds one key file per principal (<kind>-<name>.key,
// mode 0600, with its .pub line beside it) and the site's authorized_keys
// (every principal's public line). Services re-read authorized_keys when it
// changes (within security.reload_check_ms) and on SIGHUP, so `add` and
// `revoke` take effect within seconds without a restart.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "commands.h"
#include "trainyard/job_spec.h"
#include "security/keys.h"
#include "security/site.h"

namespace trainyard::ty {
namespace {

namespace fs = std::filesystem;
using security::Identity;

struct KeysArgs {
  std::string dir;
  std::vector<std::string> services{"bus", "scheduler", "broker", "metrics", "billing", "gateway"};
  std::vector<std::string> agents, users;
  std::string principal, public_key;
};

Result<security::Keyring> read_ring(const fs::path& dir) {
  auto path = dir / "authorized_keys";
  if (!fs::exists(path)) return security::Keyring();
  return security::Keyring::read(path);
}

Status write_ring(const fs::path& dir, const std::map<std::string, std::string, std::less<>>& principals) {
  auto path = dir / "authorized_keys";
  auto tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << security::format_keyring(principals);
    if (!out) return Status::unavailable(tmp + ": cannot write");
  }
  ::chmod(tmp.c_str(), 0644);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) return Status::unavailable(path.string() + ": cannot replace");
  return Status::success();
}

// Creates PRINCIPAL's key file in `dir` (refusing to overwrite one).
Result<Identity> create_key(const fs::path& dir, const std::string& principal) {
  if (auto s = security::check_principal(principal); !s) return s;
  auto path = dir / security::key_file_name(principal);
  if (fs::exists(path)) return Status(ErrorCode::AlreadyExists, path.string() + " exists; revoke it first to replace it");
  Identity id{principal, security::generate_keypair()};
  if (auto s = security::write_identity(path, id); !s) return s;
  return id;
}

int keys_init(const KeysArgs& a) {
  fs::path dir = a.dir;
  std::error_code ec;
  fs::create_directories(dir, ec);
  ::chmod(dir.c_str(), 0755);  // the directory is listable; each key file is 0600
  auto ring = read_ring(dir);
  if (!ring) return fail(ring.status());
  auto principals = ring->principals();
  auto make = [&](const std::string& kind, const std::vector<std::string>& lists) -> Status {
    std::vector<std::string> names;
    for (auto& l : lists) {  // Slurm host lists: gpu[001-004], aws-a100-[0-15]
      auto some = client::expand_hostlist(l);
      if (!some) return Status::invalid("--" + kind + " " + l + ": " + some.status().message());
      names.insert(names.end(), some->begin(), some->end());
    }
    for (auto& n : names) {
      auto id = create_key(dir, kind + ":" + n);
      if (!id) return id.status();
      principals[id->principal] = id->keys.public_key;
      std::cout << "created " << (dir / security::key_file_name(id->principal)).string() << "\n";
    }
    return Status::success();
  };
  const std::vector<std::pair<std::string, const std::vector<std::string>*>> kinds{
      {"service", &a.services}, {"agent", &a.agents}, {"user", &a.users}};
  for (auto& k : kinds) {
    if (auto s = make(k.first, *k.second); !s) return fail(s);
  }
  if (auto s = write_ring(dir, principals); !s) return fail(s);
  std::cout << "wrote " << (dir / "authorized_keys").string() << " (" << principals.size() << " principals)\n"
            << "Copy each key file to the host that runs that principal (mode 0600, owned by its user);\n"
            << "every host gets authorized_keys. Set security.keys_dir in trainyard.toml.\n";
  return kExitOk;
}

int keys_add(const KeysArgs& a) {
  fs::path dir = a.dir;
  auto ring = read_ring(dir);
  if (!ring) return fail(ring.status());
  auto principals = ring->principals();
  if (principals.count(a.principal)) return fail(Status(ErrorCode::AlreadyExists, a.principal + " is already authorized"));
  std::string key = a.public_key;
  if (key.empty()) {
    auto id = create_key(dir, a.principal);
    if (!id) return fail(id.status());
    key = id->keys.public_key;
    std::cout << "created " << (dir / security::key_file_name(a.principal)).string() << "\n";
  } else if (auto s = security::check_principal(a.principal); !s) {
    return fail(s);
  } else if (auto k = security::check_z85_key(key, "--public"); !k) {
    return fail(k);
  }
  principals[a.principal] = key;
  auto checked = security::Keyring::parse(security::format_keyring(principals), "authorized_keys");
  if (!checked) return fail(checked.status());
  if (auto s = write_ring(dir, principals); !s) return fail(s);
  std::cout << "authorized " << a.principal << "\n";
  return kExitOk;
}

int keys_revoke(const KeysArgs& a) {
  fs::path dir = a.dir;
  auto ring = read_ring(dir);
  if (!ring) return fail(ring.status());
  auto principals = ring->principals();
  if (!principals.erase(a.principal)) return fail(Status::not_found(a.principal + " is not in authorized_keys"));
  if (auto s = write_ring(dir, principals); !s) return fail(s);
  std::error_code ec;
  fs::remove(dir / security::key_file_name(a.principal), ec);
  auto pub = dir / security::key_file_name(a.principal);
  pub.replace_extension(".pub");
  fs::remove(pub, ec);
  std::cout << "revoked " << a.principal << ": services refuse its key within seconds\n";
  return kExitOk;
}

int keys_list(const KeysArgs& a) {
  auto ring = read_ring(a.dir);
  if (!ring) return fail(ring.status());
  for (auto& [p, k] : ring->principals()) std::cout << p << "\t" << k << "\n";
  return kExitOk;
}

}  // namespace

std::string user_key_path() {
  const char* xdg = std::getenv("XDG_CONFIG_HOME");
  const char* home = std::getenv("HOME");
  fs::path base = xdg && *xdg ? fs::path(xdg) : fs::path(home ? home : ".") / ".config";
  return (base / "trainyard" / "key").string();
}

// ty login: makes this user's key (once) and has it registered.
int run_login(const std::string& user, const std::string& hook) {
  fs::path path = user_key_path();
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  ::chmod(path.parent_path().c_str(), 0700);
  Result<Identity> id = security::read_identity(path);
  if (!id && fs::exists(path)) return fail(id.status());
  if (!id) {
    Identity fresh{"user:" + user, security::generate_keypair()};
    if (auto s = security::write_identity(path, fresh); !s) return fail(s);
    id = fresh;
    std::cout << "created " << path.string() << " (mode 0600)\n";
  }
  std::string line = security::public_line(*id);
  if (hook.empty()) {
    std::cout << "Your public key:\n  " << line << "\nAsk an admin to run:\n  ty admin keys add KEYS_DIR " << id->principal
              << " --public " << id->keys.public_key << "\n";
    return kExitOk;
  }
  FILE* p = ::popen(hook.c_str(), "w");
  if (!p) return fail(Status::unavailable("security.login_hook: cannot run " + hook));
  std::fprintf(p, "%s\n", line.c_str());
  int rc = ::pclose(p);
  if (rc != 0) return fail(Status::permission_denied("security.login_hook refused the key (exit " + std::to_string(rc) + ")"));
  std::cout << "registered " << id->principal << " through the site's login hook\n";
  return kExitOk;
}

void add_key_commands(CLI::App& app, Context& ctx, Action& action) {
  auto a = std::make_shared<KeysArgs>();
  auto* admin = app.add_subcommand("admin", "Administer the site: keys")->require_subcommand(1);
  auto* keys = admin->add_subcommand("keys", "Create, authorize and revoke the site's CURVE keys")->require_subcommand(1);
  auto* init = keys->add_subcommand("init", "Create a keys directory: one key per service, agent and user, and authorized_keys");
  init->add_option("dir", a->dir, "The keys directory")->required();
  init->add_option("--service", a->services, "Service instances (default: bus scheduler broker metrics billing gateway)");
  init->add_option("--agent", a->agents,
                   "Node names, one key per node agent; host lists too: gpu[001-004], and a cloud pool's slots "
                   "aws-a100-[0-15] (docs/cloud.md)");
  init->add_option("--user", a->users, "User names, one key each");
  init->callback([&action, a] { action = [a] { return keys_init(*a); }; });
  auto* add = keys->add_subcommand("add", "Authorize a principal (service:X, agent:X, user:X): a new key, or --public");
  add->add_option("dir", a->dir, "The keys directory")->required();
  add->add_option("principal", a->principal, "service:NAME, agent:NODE or user:NAME")->required();
  add->add_option("--public", a->public_key, "Their public key (from `ty login`); without it a key file is created");
  add->callback([&action, a] { action = [a] { return keys_add(*a); }; });
  auto* revoke = keys->add_subcommand("revoke", "Remove a principal's key: it stops working within seconds");
  revoke->add_option("dir", a->dir, "The keys directory")->required();
  revoke->add_option("principal", a->principal, "The principal to revoke")->required();
  revoke->callback([&action, a] { action = [a] { return keys_revoke(*a); }; });
  auto* list = keys->add_subcommand("list", "List the authorized principals and their public keys");
  list->add_option("dir", a->dir, "The keys directory")->required();
  list->callback([&action, a] { action = [a] { return keys_list(*a); }; });

  auto hook = std::make_shared<std::string>();
  auto* login = app.add_subcommand("login", "Create your key (~/.config/trainyard/key) and have it registered");
  login->add_option("--hook", *hook, "A site program that registers the public line read on its stdin");
  login->callback([&action, &ctx, hook] { action = [&ctx, hook] { return run_login(ctx.user, *hook); }; });
}

}  // namespace trainyard::ty

// Directory files into EditDirectory ops: the draft both readers fill, the
// order its ops go out in, the format sniffing, and the merge filter.
#include "trainyard/directory_file.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <set>
#include <sstream>

#include "directory_draft.h"
#include "security/directory.h"

namespace trainyard::client {
namespace {

template <typename T>
void add_once(std::vector<T>& v, const T& x) {
  if (std::find(v.begin(), v.end(), x) == v.end()) v.push_back(x);
}

bool ends_with(const std::string& s, std::string_view tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// No telling extension: TOML when the first meaningful line is a [table] or
// KEY = VALUE; otherwise a CSV header.
bool looks_like_toml(std::string_view text) {
  std::istringstream in{std::string(text)};
  for (std::string line; std::getline(in, line);) {
    auto first = line.find_first_not_of(" \t\r\xEF\xBB\xBF");
    if (first == std::string::npos || line[first] == '#') continue;
    return line[first] == '[' || line.find('=') != std::string::npos;
  }
  return false;
}

}  // namespace

DirectoryDraft::User& DirectoryDraft::user(const std::string& name) {
  auto [it, fresh] = user_at_.try_emplace(name, users_.size());
  if (fresh) users_.push_back(User{name, "", {}, {}});
  return users_[it->second];
}

DirectoryDraft::Account& DirectoryDraft::account(const std::string& name) {
  auto [it, fresh] = account_at_.try_emplace(name, accounts_.size());
  if (fresh) accounts_.push_back(Account{name, {}});
  return accounts_[it->second];
}

void DirectoryDraft::add_user(const std::string& u) { user(u); }
void DirectoryDraft::add_account(const std::string& a) { account(a); }

void DirectoryDraft::add_member(const std::string& u, const std::string& a) {
  account(a);
  add_once(user(u).accounts, a);
}

void DirectoryDraft::add_role(const std::string& u, const std::string& role) { add_once(user(u).roles, role); }

void DirectoryDraft::add_coordinator(const std::string& a, const std::string& u) {
  add_member(u, a);
  add_once(account(a).coordinators, u);
}

Status DirectoryDraft::set_default(const std::string& u, const std::string& a) {
  auto& x = user(u);
  if (!x.default_account.empty() && x.default_account != a) {
    return Status::failed_precondition(u + "'s default account is already " + x.default_account);
  }
  add_member(u, a);
  user(u).default_account = a;
  return Status::success();
}

std::vector<fb::DirectoryOpT> DirectoryDraft::ops() const {
  using V = fb::DirectoryVerb;
  std::vector<fb::DirectoryOpT> out;
  for (auto& a : accounts_) out.push_back(security::directory_op(V::AddAccount, "", a.name));
  for (auto& u : users_) {
    if (u.accounts.empty()) out.push_back(security::directory_op(V::AddUser, u.name));
  }
  for (auto& u : users_) {
    for (auto& a : u.accounts) out.push_back(security::directory_op(V::AddMember, u.name, a));
  }
  for (auto& u : users_) {
    if (!u.default_account.empty()) out.push_back(security::directory_op(V::SetDefaultAccount, u.name, u.default_account));
  }
  for (auto& u : users_) {
    for (auto& r : u.roles) out.push_back(security::directory_op(V::Grant, u.name, "", r));
  }
  for (auto& a : accounts_) {
    for (auto& u : a.coordinators) out.push_back(security::directory_op(V::Grant, u, a.name, "coordinator"));
  }
  return out;
}

Result<std::vector<fb::DirectoryOpT>> directory_ops_from_text(std::string_view text, const std::string& name) {
  bool toml = ends_with(name, ".toml") || (!ends_with(name, ".csv") && looks_like_toml(text));
  auto draft = toml ? read_directory_toml(text, name) : read_directory_csv(text, name);
  if (!draft) return draft.status();
  auto ops = draft->ops();
  if (ops.empty()) return Status::invalid(name + ": names no user and no account");
  return ops;
}

Result<std::vector<fb::DirectoryOpT>> directory_ops_from_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::invalid(path + ": cannot read it (does it exist?)");
  std::ostringstream text;
  text << in.rdbuf();
  return directory_ops_from_text(text.str(), path);
}

std::string directory_ops_summary(const std::vector<fb::DirectoryOpT>& ops) {
  std::set<std::string> users, accounts;
  for (auto& o : ops) {
    if (!o.user.empty()) users.insert(o.user);
    if (!o.account.empty()) accounts.insert(o.account);
  }
  auto n = [](size_t k, const char* what) { return std::to_string(k) + " " + what + (k == 1 ? "" : "s"); };
  return n(users.size(), "user") + ", " + n(accounts.size(), "account");
}

std::string describe_op(const fb::DirectoryOpT& o) {
  std::string s = fb::EnumNameDirectoryVerb(o.verb);
  for (auto* part : {&o.role, &o.user, &o.account}) {
    if (!part->empty()) s += " " + *part;
  }
  return s;
}

Status check_directory_name(std::string_view what, std::string_view name) {
  auto bad = [&](const std::string& why) {
    return Status::invalid(std::string(what) + " '" + std::string(name) + "': " + why);
  };
  if (name.empty() || name.size() > 64) return bad("a name has 1 to 64 characters");
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) {
      return bad("a name may hold only letters, digits, '.', '_' and '-'");
    }
  }
  return Status::success();
}

Status check_role(std::string_view role) {
  if (role == "admin" || role == "operator" || role == "coordinator") return Status::success();
  return Status::invalid("unknown role '" + std::string(role) + "' (admin, operator or coordinator)");
}

}  // namespace trainyard::client

#include "security/directory.h"

#include <algorithm>

namespace trainyard::security {
namespace {

void add_all(NameSet& into, const NameSet& from) { into.insert(from.begin(), from.end()); }

// A user or account name: what a principal's name may be (check_principal).
Status check_name(std::string_view what, std::string_view name) {
  if (name.empty()) return Status::invalid(std::string(what) + " is empty");
  if (name.size() > 64) return Status::invalid(std::string(what) + " " + std::string(name) + " is longer than 64 characters");
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
              c == '.';
    if (!ok) {
      return Status::invalid(std::string(what) + " \"" + std::string(name) +
                             "\" may hold only letters, digits, '.', '_' and '-' (as a principal's name)");
    }
  }
  return Status::success();
}

class Editor {
 public:
  explicit Editor(Directory& d) : d_(d) {}

  Status apply(const fb::DirectoryOpT& op) {
    switch (op.verb) {
      case fb::DirectoryVerb::AddUser: return add_user(op);
      case fb::DirectoryVerb::RemoveUser: return remove_user(op.user);
      case fb::DirectoryVerb::AddAccount:
        if (auto s = check_name("account", op.account); !s) return s;
        d_.accounts[op.account];
        return Status::success();
      case fb::DirectoryVerb::RemoveAccount: return remove_account(op.account);
      case fb::DirectoryVerb::AddMember: return add_member(op.user, op.account);
      case fb::DirectoryVerb::RemoveMember: return remove_member(op.user, op.account);
      case fb::DirectoryVerb::SetDefaultAccount: return set_default(op.user, op.account);
      case fb::DirectoryVerb::Grant: return grant(op);
      case fb::DirectoryVerb::Revoke: return revoke(op);
    }
    return Status::invalid("unknown verb");
  }

 private:
  Status add_user(const fb::DirectoryOpT& op) {
    if (auto s = check_name("user", op.user); !s) return s;
    d_.users.try_emplace(op.user);
    if (op.account.empty()) return Status::success();
    if (auto s = add_member(op.user, op.account); !s) return s;
    return set_default(op.user, op.account);
  }

  Status remove_user(const std::string& user) {
    if (!d_.users.erase(user)) return Status::not_found(user + " is not in the directory");
    d_.admins.erase(user);
    d_.operators.erase(user);
    for (auto& [_, a] : d_.accounts) {
      a.members.erase(user);
      a.coordinators.erase(user);
    }
    return Status::success();
  }

  Result<AccountEntry*> account(const std::string& name) {
    auto it = d_.accounts.find(name);
    if (it == d_.accounts.end()) {
      if (auto s = check_name("account", name); !s) return s;
      return Status::not_found("account " + name + " does not exist (add it first)");
    }
    return &it->second;
  }

  Status remove_account(const std::string& name) {
    if (!d_.accounts.erase(name)) return Status::not_found("account " + name + " does not exist");
    for (auto& [_, def] : d_.users) {
      if (def == name) def.clear();
    }
    return Status::success();
  }

  Status add_member(const std::string& user, const std::string& name) {
    if (auto s = check_name("user", user); !s) return s;
    auto a = account(name);
    if (!a) return a.status();
    d_.users.try_emplace(user);
    (*a)->members.insert(user);
    return Status::success();
  }

  Status remove_member(const std::string& user, const std::string& name) {
    auto a = account(name);
    if (!a) return a.status();
    if (!(*a)->members.erase(user)) return Status::not_found(user + " is not a member of " + name);
    (*a)->coordinators.erase(user);
    auto u = d_.users.find(user);
    if (u != d_.users.end() && u->second == name) u->second.clear();
    return Status::success();
  }

  Status set_default(const std::string& user, const std::string& name) {
    auto u = d_.users.find(user);
    if (u == d_.users.end()) return Status::not_found(user + " is not in the directory");
    if (name.empty()) {
      u->second.clear();
      return Status::success();
    }
    auto a = account(name);
    if (!a) return a.status();
    if (!(*a)->members.count(user)) return Status::failed_precondition(user + " is not a member of " + name);
    u->second = name;
    return Status::success();
  }

  Status grant(const fb::DirectoryOpT& op) {
    if (auto s = check_name("user", op.user); !s) return s;
    if (op.role == kRoleCoordinator) {
      if (auto s = add_member(op.user, op.account); !s) return s;
      d_.accounts[op.account].coordinators.insert(op.user);
      return Status::success();
    }
    auto* set = role_set(op.role);
    if (!set) return unknown_role(op.role);
    d_.users.try_emplace(op.user);
    set->insert(op.user);
    return Status::success();
  }

  Status revoke(const fb::DirectoryOpT& op) {
    if (op.role == kRoleCoordinator) {
      auto a = account(op.account);
      if (!a) return a.status();
      if (!(*a)->coordinators.erase(op.user)) return Status::not_found(op.user + " does not coordinate " + op.account);
      return Status::success();
    }
    auto* set = role_set(op.role);
    if (!set) return unknown_role(op.role);
    if (!set->erase(op.user)) return Status::not_found(op.user + " is not " + op.role);
    return Status::success();
  }

  NameSet* role_set(std::string_view role) {
    if (role == kRoleAdmin) return &d_.admins;
    if (role == kRoleOperator) return &d_.operators;
    return nullptr;
  }

  static Status unknown_role(const std::string& role) {
    return Status::invalid("role \"" + role + "\" is not one of admin, operator, coordinator");
  }

  Directory& d_;
};

std::vector<std::string> sorted(const NameSet& s) { return {s.begin(), s.end()}; }

NameSet set_of(const flatbuffers::Vector<flatbuffers::Offset<flatbuffers::String>>* v) {
  NameSet out;
  if (v) {
    for (const auto* s : *v) {
      if (s) out.emplace(s->str());
    }
  }
  return out;
}

}  // namespace

std::string Directory::default_account(std::string_view user) const {
  auto it = users.find(user);
  return it == users.end() ? std::string() : it->second;
}

Directory merged(const Directory& config, const Directory& durable) {
  Directory out = config;
  out.version = durable.version;
  for (auto& [name, def] : durable.users) {
    auto& d = out.users[name];
    if (!def.empty()) d = def;
  }
  add_all(out.admins, durable.admins);
  add_all(out.operators, durable.operators);
  for (auto& [name, a] : durable.accounts) {
    auto& e = out.accounts[name];
    add_all(e.members, a.members);
    add_all(e.coordinators, a.coordinators);
  }
  return out;
}

fb::DirectoryOpT directory_op(fb::DirectoryVerb verb, std::string user, std::string account, std::string role) {
  fb::DirectoryOpT o;
  o.verb = verb;
  o.user = std::move(user);
  o.account = std::move(account);
  o.role = std::move(role);
  return o;
}

Result<Directory> apply_ops(const Directory& d, const std::vector<fb::DirectoryOpT>& ops, bool replace) {
  Directory out = replace ? Directory{} : d;
  out.version = d.version;
  Editor editor(out);
  for (size_t i = 0; i < ops.size(); ++i) {
    if (auto s = editor.apply(ops[i]); !s) {
      return Status(s.code(), "ops[" + std::to_string(i) + "] " + fb::EnumNameDirectoryVerb(ops[i].verb) + ": " +
                                  s.message());
    }
  }
  return out;
}

fb::DirectoryViewT to_view(const Directory& d) {
  fb::DirectoryViewT v;
  v.version = d.version;
  NameSet names;
  for (auto& [n, _] : d.users) names.insert(n);
  add_all(names, d.admins);
  add_all(names, d.operators);
  for (auto& n : names) {
    auto u = std::make_unique<fb::DirectoryUserT>();
    u->name = n;
    u->default_account = d.default_account(n);
    if (d.admins.count(n)) u->roles.emplace_back(kRoleAdmin);
    if (d.operators.count(n)) u->roles.emplace_back(kRoleOperator);
    v.users.push_back(std::move(u));
  }
  for (auto& [n, a] : d.accounts) {
    auto acc = std::make_unique<fb::DirectoryAccountT>();
    acc->name = n;
    acc->members = sorted(a.members);
    acc->coordinators = sorted(a.coordinators);
    v.accounts.push_back(std::move(acc));
  }
  return v;
}

Directory from_view(const fb::DirectoryView& v) {
  Directory d;
  d.version = v.version();
  if (v.users()) {
    for (const auto* u : *v.users()) {
      if (!u || !u->name()) continue;
      std::string name = u->name()->str();
      d.users[name] = u->default_account() ? u->default_account()->str() : std::string();
      for (auto& role : set_of(u->roles())) {
        if (role == kRoleAdmin) d.admins.insert(name);
        if (role == kRoleOperator) d.operators.insert(name);
      }
    }
  }
  if (v.accounts()) {
    for (const auto* a : *v.accounts()) {
      if (!a || !a->name()) continue;
      auto& e = d.accounts[a->name()->str()];
      e.members = set_of(a->members());
      e.coordinators = set_of(a->coordinators());
    }
  }
  return d;
}

}  // namespace trainyard::security

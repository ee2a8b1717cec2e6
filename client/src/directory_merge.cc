// ops_that_change: a merge import against the directory as it stands, so
// that running `ty admin import FILE` again (a nightly LDAP sync) sends only
// what changed and never fails on "already a member".
#include <map>
#include <set>
#include <utility>

#include "trainyard/directory_file.h"

namespace trainyard::client {
namespace {

using Pair = std::pair<std::string, std::string>;

// The directory reduced to what the ops can test.
struct Facts {
  std::set<std::string> users, accounts;
  std::set<Pair> members;       // (user, account)
  std::set<Pair> roles;         // (user, role) for admin and operator
  std::set<Pair> coordinators;  // (user, account)
  std::map<std::string, std::string> defaults;

  explicit Facts(const fb::DirectoryViewT& v) {
    for (auto& u : v.users) {
      if (!u) continue;
      users.insert(u->name);
      if (!u->default_account.empty()) defaults[u->name] = u->default_account;
      for (auto& r : u->roles) roles.insert({u->name, r});
    }
    for (auto& a : v.accounts) {
      if (!a) continue;
      accounts.insert(a->name);
      for (auto& m : a->members) members.insert({m, a->name});
      for (auto& c : a->coordinators) coordinators.insert({c, a->name});
    }
  }

  // Applies `o`; false when it would change nothing (an add of what is).
  bool apply(const fb::DirectoryOpT& o) {
    using V = fb::DirectoryVerb;
    switch (o.verb) {
      case V::AddAccount: return accounts.insert(o.account).second;
      case V::AddUser: {
        bool fresh = users.insert(o.user).second;
        if (o.account.empty()) return fresh;
        bool joined = members.insert({o.user, o.account}).second;
        return set_default(o.user, o.account) || joined || fresh;
      }
      case V::AddMember: {
        users.insert(o.user);
        return members.insert({o.user, o.account}).second;
      }
      case V::SetDefaultAccount: return set_default(o.user, o.account);
      case V::Grant:
        if (o.role == "coordinator") return coordinators.insert({o.user, o.account}).second;
        return roles.insert({o.user, o.role}).second;
      default: return true;  // removals and revokes always go (the server says when they cannot)
    }
  }

  bool set_default(const std::string& user, const std::string& account) {
    auto& d = defaults[user];
    if (d == account) return false;
    d = account;
    return true;
  }
};

}  // namespace

std::vector<fb::DirectoryOpT> ops_that_change(const fb::DirectoryViewT& current,
                                              const std::vector<fb::DirectoryOpT>& ops) {
  Facts facts(current);
  std::vector<fb::DirectoryOpT> out;
  for (auto& o : ops) {
    if (facts.apply(o)) out.push_back(o);
  }
  return out;
}

}  // namespace trainyard::client

#include "security/authz.h"

#include "security/keys.h"
#include "security/site.h"

namespace trainyard::security {

Caller::Caller(std::string_view principal, const Directory& dir, bool enforced)
    : principal_(principal), kind_(principal_kind(principal)), dir_(dir), enforced_(enforced) {}

Caller Caller::of(std::string_view principal, const Directory& dir) {
  // Under CURVE always; without it, whenever a caller names themselves (a
  // claim nobody checked, but the same rules keep honest callers honest).
  // A caller naming nobody without CURVE is the trusted local operator.
  return Caller(principal, dir, Site::current() != nullptr || !principal.empty());
}

std::string_view Caller::name() const { return principal_name(principal_); }

bool Caller::agent_of(std::string_view node) const { return kind_ == "agent" && instance_owns_node(name(), node); }

bool instance_owns_node(std::string_view n, std::string_view node) {
  if (node == n) return true;
  if (node.size() <= n.size() + 1 || node.substr(0, n.size()) != n || node[n.size()] != '-') return false;
  for (char c : node.substr(n.size() + 1)) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

bool Caller::admin() const {
  if (!enforced_ || service()) return true;
  return user() && dir_.admins.count(name()) > 0;
}

bool Caller::operator_() const { return admin() || (user() && dir_.operators.count(name()) > 0); }

bool Caller::coordinates(std::string_view account) const {
  if (admin()) return true;
  auto it = dir_.accounts.find(account);
  return user() && it != dir_.accounts.end() && it->second.coordinators.count(name()) > 0;
}

bool Caller::member_of(std::string_view account) const {
  if (admin()) return true;
  if (!user()) return false;
  auto it = dir_.accounts.find(account);
  if (it == dir_.accounts.end()) return true;  // an account the directory does not list is open
  return it->second.members.count(name()) > 0 || it->second.coordinators.count(name()) > 0;
}

bool Caller::may_manage_job(std::string_view owner, std::string_view account) const {
  if (admin()) return true;
  if (user() && name() == owner) return true;
  return coordinates(account);
}

Status Caller::refuse(std::string_view rule, std::string_view what) const {
  return Status::permission_denied(std::string(rule) + ": " + (principal_.empty() ? "an anonymous caller" : principal_) +
                                   " may not " + std::string(what));
}

}  // namespace trainyard::security

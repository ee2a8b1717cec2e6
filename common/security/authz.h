// Who may do what: the site's directory of roles and account membership,
// and the rules every service applies to an authenticated principal.
//
// The directory is the shared config's ([security.roles],
// [security.accounts.<name>]) joined with the durable one billing keeps and
// publishes (directory.changed, edited by `ty admin user|account|role`), so
// every service enforces the same view (security/directory.h).
// Rules are enforced while CURVE is on (a Site is installed). Without it
// any peer can claim any principal: the rules then apply to the principal
// a request claims (they keep honest callers honest, they stop nobody),
// and a request that claims none is the local operator's.
#pragma once

#include <map>
#include <set>
#include <string>
#include <string_view>

#include "security/directory.h"
#include "util/status.h"

namespace trainyard::security {

// Node `node` belongs to the agent instance `instance`: the same name, or
// one of the nodes ... a simulated agent X stands for.
bool instance_owns_node(std::string_view instance, std::string_view node);

// What a principal is to the rules.
class Caller {
 public:
  Caller(std::string_view principal, const Directory& dir, bool enforced);
  // Enforced under CURVE, or without it when the request names a principal.
  static Caller of(std::string_view principal, const Directory& dir);

  const std::string& principal() const { return principal_; }
  std::string_view name() const;  // "alice" of "user:alice"
  bool enforced() const { return enforced_; }
  bool service() const { return kind_ == "service"; }
  // The agent of `node`: agent:X speaks for node X, and for the nodes
  // ... a simulated agent (agent.simulate) stands for.
  bool agent_of(std::string_view node) const;
  bool user() const { return kind_ == "user"; }
  bool admin() const;     // a service, or a user the directory makes admin
  bool operator_() const;  // admin or operator
  bool coordinates(std::string_view account) const;
  bool member_of(std::string_view account) const;
  // The owner, a coordinator of its account, or an admin (or a service).
  bool may_manage_job(std::string_view owner, std::string_view account) const;

  // PermissionDenied "<rule>: <principal> may not <what>".
  Status refuse(std::string_view rule, std::string_view what) const;

 private:
  std::string principal_;
  std::string kind_;
  const Directory& dir_;
  bool enforced_;
};

}  // namespace trainyard::security

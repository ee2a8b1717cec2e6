// The site's directory: users, accounts (projects), membership, each user's
// default account, and the roles admin, operator and coordinator (of an
// account). Two sources make the view every service enforces:
//   - the shared config's [security.roles] and [security.accounts.<name>]:
//     the bootstrap (the first admin), always in force;
//   - the durable directory billing owns, edited by `ty admin user|account|
//     role|import` (EditDirectory) and published whole as directory.changed.
// The view is their union (merged()). Everything here is pure: no I/O.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "trainyard/fb/directory_generated.h"
#include "util/status.h"

namespace trainyard::security {

using NameSet = std::set<std::string, std::less<>>;

struct AccountEntry {
  NameSet members;       // user names
  NameSet coordinators;  // user names (members too)
  bool operator==(const AccountEntry&) const = default;
};

struct Directory {
  uint64_t version = 0;                                     // of the durable directory (0: none yet)
  std::map<std::string, std::string, std::less<>> users;    // name -> default account ("" none)
  NameSet admins;     // user names: rates, budgets, the directory, every job
  NameSet operators;  // user names: nodes
  std::map<std::string, AccountEntry, std::less<>> accounts;
  // An account the directory does not list is open to every user (a site
  // that lists none has no membership rule).
  bool lists(std::string_view account) const { return accounts.count(account) > 0; }
  // The account a user's job goes to when it names none ("" when none).
  std::string default_account(std::string_view user) const;
  bool operator==(const Directory&) const = default;
};

inline constexpr std::string_view kRoleAdmin = "admin";
inline constexpr std::string_view kRoleOperator = "operator";
inline constexpr std::string_view kRoleCoordinator = "coordinator";

// What every service reads from the shared config to apply the rules
// (security::trust_from_config in security/site.h).
struct TrustSettings {
  Directory directory;                   // [security.roles], [security.accounts.*]: the bootstrap
  std::string directory_owner = "billing";  // billing.instance: whose directory.changed events count
  double audit_refusals_per_s = 20;      // security.audit_refusals_per_s
};

// The union of the config's directory and the durable one (whose version
// the result carries).
Directory merged(const Directory& config, const Directory& durable);

// Applies `ops` in order to `d` (to an empty directory when `replace`), all
// or none. Adding what is there already is a no-op, so importing the same
// export twice changes nothing; removing what is not there is an error.
// Errors name the op: "ops[1] RemoveMember: alice is not a member of physics".
Result<Directory> apply_ops(const Directory& d, const std::vector<fb::DirectoryOpT>& ops, bool replace);

// One edit, as `ty admin`, an import and the tests build them.
fb::DirectoryOpT directory_op(fb::DirectoryVerb verb, std::string user = "", std::string account = "",
                              std::string role = "");

// The wire form, and back (a view read from the bus or the store).
fb::DirectoryViewT to_view(const Directory& d);
Directory from_view(const fb::DirectoryView& v);

}  // namespace trainyard::security

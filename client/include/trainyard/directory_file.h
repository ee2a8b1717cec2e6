// The files `ty admin import` reads: a site's users, accounts, membership
// and roles as TOML or CSV (an LDAP group export, `sacctmgr list assoc`),
// turned into the EditDirectory ops that build that directory. Pure: it
// reads only the file it is given. docs/directory.md describes the formats.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "trainyard/fb/directory_generated.h"
#include "util/status.h"

namespace trainyard::client {

// The ops that build the directory the file describes, in an order the
// billing service accepts: AddAccount, AddUser (users of no account),
// AddMember, SetDefaultAccount, Grant. The format follows the extension
// (.toml, .csv), else the content (a TOML table or KEY = VALUE line).
// InvalidArgument names the file, the line and the field, e.g.
// "people.csv line 4: column 'default': 'maybe' is not yes, no, true, false, 1, 0 or empty".
Result<std::vector<fb::DirectoryOpT>> directory_ops_from_file(const std::string& path);
// The same for text already read; `name` stands for the file in messages,
// and its extension picks the format.
Result<std::vector<fb::DirectoryOpT>> directory_ops_from_text(std::string_view text, const std::string& name);

// How many distinct users and accounts the ops name: "12 users, 3 accounts".
std::string directory_ops_summary(const std::vector<fb::DirectoryOpT>& ops);

// An op as one line: "AddMember alice physics", "Grant coordinator bob physics".
std::string describe_op(const fb::DirectoryOpT& op);

// The ops that would change `current`, applied in order: adds of what
// exists, defaults already set and roles already held are dropped, so that
// a merge import (`ty admin import` without --replace) can be run again.
std::vector<fb::DirectoryOpT> ops_that_change(const fb::DirectoryViewT& current,
                                              const std::vector<fb::DirectoryOpT>& ops);

// A user or account name: 1 to 64 letters, digits, '.', '_', '-' (the
// rule for principal names). InvalidArgument "<what> 'x y': ...".
Status check_directory_name(std::string_view what, std::string_view name);

// "admin", "operator" or "coordinator"; InvalidArgument naming the others.
Status check_role(std::string_view role);

}  // namespace trainyard::client

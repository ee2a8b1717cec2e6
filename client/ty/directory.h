// `ty admin user|account|role|import|audit`: the site's directory of users,
// accounts and roles, and the audit trail, both kept by billing
// (docs/directory.md). They join `ty admin` (keys.cc creates it).
#pragma once

#include "commands.h"

namespace trainyard::ty {

// `ty admin user|account|role|import` (directory.cc), and `ty admin audit`
// (directory_audit.cc).
void add_directory_commands(CLI::App& app, Context& ctx, Action& action);
void add_audit_command(CLI::App& admin, Context& ctx, Action& action);

// `ty admin`, made here when keys.cc has not made it yet.
CLI::App* admin_command(CLI::App& app);

}  // namespace trainyard::ty

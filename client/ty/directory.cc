// `ty admin user|account|role|import`: edits of the site's directory (users,
// accounts, membership, default accounts, roles), sent to billing as
// EditDirectory ops; the lists read it with GetDirectory.
#include "directory.h"

#include <algorithm>
#include <iostream>
#include <map>

#include <nlohmann/json.hpp>

#include "format.h"
#include "trainyard/directory_file.h"

namespace trainyard::ty {
namespace {

using Ops = std::vector<fb::DirectoryOpT>;
using fb::DirectoryVerb;

struct DirFlags {
  std::string name, account, role, user, file, default_account;
  std::vector<std::string> accounts, coordinators;
  bool json = false, replace = false, dry_run = false;
};

fb::DirectoryOpT make_op(DirectoryVerb verb, const std::string& user, const std::string& account = "",
                         const std::string& role = "") {
  fb::DirectoryOpT o;
  o.verb = verb;
  o.user = user;
  o.account = account;
  o.role = role;
  return o;
}

// Every name a command was given, checked before anything is sent.
Status check_names(const std::string& what, const std::vector<std::string>& names) {
  for (auto& n : names) {
    if (auto s = client::check_directory_name(what, n); !s) return s;
  }
  return Status::success();
}

// Sends `ops` and prints each op that went; with `merge`, only the ops
// that change the directory as it stands (adding what exists is no error).
int send(Context& ctx, Ops ops, bool merge) {
  auto* c = ctx.client();
  if (!c) return kExitUsage;
  if (merge) {
    auto current = c->directory();
    if (!current) return fail(current.status());
    ops = client::ops_that_change(*current, ops);
    if (ops.empty()) {
      std::cout << "nothing to change: the directory already says so\n";
      return kExitOk;
    }
  }
  auto r = c->edit_directory(ops, false);
  if (!r) return fail(r.status());
  for (auto& o : ops) std::cout << client::describe_op(o) << "\n";
  std::cout << "directory version " << r->version << "\n";
  return kExitOk;
}

int user_add(Context& ctx, const DirFlags& f) {
  auto accounts = f.accounts;
  if (!f.default_account.empty() && std::find(accounts.begin(), accounts.end(), f.default_account) == accounts.end()) {
    accounts.push_back(f.default_account);  // a default account is one the user belongs to
  }
  if (auto s = client::check_directory_name("user", f.name); !s) return fail(s);
  if (auto s = check_names("account", accounts); !s) return fail(s);
  Ops ops{make_op(DirectoryVerb::AddUser, f.name)};
  for (auto& a : accounts) ops.push_back(make_op(DirectoryVerb::AddMember, f.name, a));
  if (!f.default_account.empty()) ops.push_back(make_op(DirectoryVerb::SetDefaultAccount, f.name, f.default_account));
  return send(ctx, std::move(ops), true);
}

int user_remove(Context& ctx, const DirFlags& f) {
  if (auto s = client::check_directory_name("user", f.name); !s) return fail(s);
  if (auto s = check_names("account", f.accounts); !s) return fail(s);
  Ops ops;
  if (f.accounts.empty()) ops.push_back(make_op(DirectoryVerb::RemoveUser, f.name));
  for (auto& a : f.accounts) ops.push_back(make_op(DirectoryVerb::RemoveMember, f.name, a));
  return send(ctx, std::move(ops), false);
}

int account_add(Context& ctx, const DirFlags& f) {
  if (auto s = client::check_directory_name("account", f.name); !s) return fail(s);
  if (auto s = check_names("user", f.coordinators); !s) return fail(s);
  Ops ops{make_op(DirectoryVerb::AddAccount, "", f.name)};
  for (auto& u : f.coordinators) ops.push_back(make_op(DirectoryVerb::AddMember, u, f.name));
  for (auto& u : f.coordinators) ops.push_back(make_op(DirectoryVerb::Grant, u, f.name, "coordinator"));
  return send(ctx, std::move(ops), true);
}

// ty admin role grant|revoke ROLE USER [--account A].
int role_change(Context& ctx, const DirFlags& f, DirectoryVerb verb) {
  if (auto s = client::check_role(f.role); !s) return fail(s);
  if (f.role == "coordinator" && f.account.empty()) {
    return fail(Status::invalid("the coordinator role is of an account: add --account ACCOUNT"));
  }
  if (f.role != "coordinator" && !f.account.empty()) {
    return fail(Status::invalid("--account applies only to the coordinator role; " + f.role + " is site-wide"));
  }
  if (auto s = client::check_directory_name("user", f.user); !s) return fail(s);
  if (!f.account.empty()) {
    if (auto s = client::check_directory_name("account", f.account); !s) return fail(s);
  }
  return send(ctx, {make_op(verb, f.user, f.account, f.role)}, false);
}

int import_file(Context& ctx, const DirFlags& f) {
  auto ops = client::directory_ops_from_file(f.file);
  if (!ops) return fail(ops.status());
  std::string summary = client::directory_ops_summary(*ops);
  if (f.dry_run) {
    for (auto& o : *ops) std::cout << client::describe_op(o) << "\n";
    std::cout << summary << ", " << ops->size() << " ops (dry run: nothing sent"
              << (f.replace ? "; --replace would drop everything else" : "") << ")\n";
    return kExitOk;
  }
  auto* c = ctx.client();
  if (!c) return kExitUsage;
  if (!f.replace) {
    auto current = c->directory();
    if (!current) return fail(current.status());
    *ops = client::ops_that_change(*current, *ops);
    if (ops->empty()) {
      std::cout << "nothing to change: the directory already holds " << f.file << " (" << summary << ")\n";
      return kExitOk;
    }
  }
  auto r = c->edit_directory(*ops, f.replace);
  if (!r) return fail(r.status());
  std::cout << (f.replace ? "replaced the directory with " : "imported ") << f.file << ": " << summary << " ("
            << ops->size() << " ops; directory version " << r->version << ")\n";
  return kExitOk;
}

std::string joined(const std::vector<std::string>& v) {
  std::string out;
  for (auto& x : v) out += (out.empty() ? "" : ",") + x;
  return out.empty() ? "-" : out;
}

// Each user with the accounts they belong to and coordinate (the view keeps
// those on the accounts).
nlohmann::json users_json(const fb::DirectoryViewT& view) {
  std::map<std::string, std::pair<std::vector<std::string>, std::vector<std::string>>> of;  // member, coordinator
  for (auto& a : view.accounts) {
    for (auto& m : a->members) of[m].first.push_back(a->name);
    for (auto& c : a->coordinators) of[c].second.push_back(a->name);
  }
  nlohmann::json out = nlohmann::json::array();
  for (auto& u : view.users) {
    auto& [accounts, coordinates] = of[u->name];
    out.push_back({{"name", u->name}, {"default_account", u->default_account}, {"accounts", accounts},
                   {"roles", u->roles}, {"coordinator_of", coordinates}});
  }
  return out;
}

int user_list(Context& ctx, const DirFlags& f) {
  auto* c = ctx.client();
  if (!c) return kExitUsage;
  auto view = c->directory();
  if (!view) return fail(view.status());
  auto users = users_json(*view);
  if (f.json) {
    std::cout << users.dump(2) << "\n";
    return kExitOk;
  }
  Table t({"USER", "DEFAULT", "ACCOUNTS", "ROLES"});
  for (auto& u : users) {
    auto roles = u["roles"].get<std::vector<std::string>>();
    for (auto& a : u["coordinator_of"]) roles.push_back("coordinator:" + a.get<std::string>());
    std::string def = u["default_account"];
    t.add({u["name"].get<std::string>(), def.empty() ? "-" : def,
           joined(u["accounts"].get<std::vector<std::string>>()), joined(roles)});
  }
  std::cout << t.render();
  return kExitOk;
}

int account_list(Context& ctx, const DirFlags& f) {
  auto* c = ctx.client();
  if (!c) return kExitUsage;
  auto view = c->directory();
  if (!view) return fail(view.status());
  nlohmann::json out = nlohmann::json::array();
  Table t({"ACCOUNT", "MEMBERS", "COORDINATORS"});
  for (auto& a : view->accounts) {
    out.push_back({{"name", a->name}, {"members", a->members}, {"coordinators", a->coordinators}});
    t.add({a->name, joined(a->members), joined(a->coordinators)});
  }
  std::cout << (f.json ? out.dump(2) + "\n" : t.render());
  return kExitOk;
}

// Sets the action to `run(ctx, flags)` when `cmd` is chosen.
void on(CLI::App* cmd, Context& ctx, Action& action, std::shared_ptr<DirFlags> f, int (*run)(Context&, const DirFlags&)) {
  cmd->callback([&ctx, &action, f, run] { action = [&ctx, f, run] { return run(ctx, *f); }; });
}

void add_user_commands(CLI::App& admin, Context& ctx, Action& action) {
  auto f = std::make_shared<DirFlags>();
  auto* user = admin.add_subcommand("user", "Add and remove users, their accounts and default account")
                   ->require_subcommand(1);
  auto* add = user->add_subcommand("add", "Add a user (or more accounts to one): AddUser, AddMember, SetDefaultAccount");
  add->add_option("NAME", f->name, "The user's login name")->required();
  add->add_option("-A,--account", f->accounts, "An account the user belongs to (repeat for more)");
  add->add_option("--default", f->default_account, "The account used when a job names none");
  on(add, ctx, action, f, user_add);
  auto* rm = user->add_subcommand("remove", "Remove a user from the site, or with --account from that account");
  rm->add_option("NAME", f->name, "The user")->required();
  rm->add_option("-A,--account", f->accounts, "Only from this account (repeat for more)");
  on(rm, ctx, action, f, user_remove);
  auto* def = user->add_subcommand("default", "Set the account a user's jobs go to when they name none");
  def->add_option("NAME", f->name, "The user")->required();
  def->add_option("ACCOUNT", f->account, "An account the user belongs to")->required();
  on(def, ctx, action, f, [](Context& c, const DirFlags& x) {
    if (auto s = check_names("user", {x.name}); !s) return fail(s);
    if (auto s = check_names("account", {x.account}); !s) return fail(s);
    return send(c, {make_op(DirectoryVerb::SetDefaultAccount, x.name, x.account)}, false);
  });
  auto* list = user->add_subcommand("list", "Every user: default account, accounts, roles");
  list->add_flag("--json", f->json, "Print JSON: [{name, default_account, accounts, roles, coordinator_of}]");
  on(list, ctx, action, f, user_list);
}

void add_account_commands(CLI::App& admin, Context& ctx, Action& action) {
  auto f = std::make_shared<DirFlags>();
  auto* account = admin.add_subcommand("account", "Add and remove accounts (projects) and their coordinators")
                      ->require_subcommand(1);
  auto* add = account->add_subcommand("add", "Add an account, with its coordinators");
  add->add_option("NAME", f->name, "The account (project) name")->required();
  add->add_option("--coordinator", f->coordinators, "A user who manages the account's jobs (repeat for more)");
  on(add, ctx, action, f, account_add);
  auto* rm = account->add_subcommand("remove", "Remove an account (its members stay users)");
  rm->add_option("NAME", f->name, "The account")->required();
  on(rm, ctx, action, f, [](Context& c, const DirFlags& x) {
    if (auto s = check_names("account", {x.name}); !s) return fail(s);
    return send(c, {make_op(DirectoryVerb::RemoveAccount, "", x.name)}, false);
  });
  auto* list = account->add_subcommand("list", "Every account with its members and coordinators");
  list->add_flag("--json", f->json, "Print JSON: [{name, members, coordinators}]");
  on(list, ctx, action, f, account_list);
}

void add_role_commands(CLI::App& admin, Context& ctx, Action& action) {
  auto f = std::make_shared<DirFlags>();
  auto* role = admin.add_subcommand("role", "Grant and revoke roles: admin, operator, coordinator (of an account)")
                   ->require_subcommand(1);
  for (auto [name, help, verb] : {std::tuple{"grant", "Give a user a role", DirectoryVerb::Grant},
                                  std::tuple{"revoke", "Take a role from a user", DirectoryVerb::Revoke}}) {
    auto* cmd = role->add_subcommand(name, help);
    cmd->add_option("ROLE", f->role, "admin (rates, budgets, users), operator (nodes) or coordinator (an account's jobs)")
        ->required();
    cmd->add_option("USER", f->user, "The user")->required();
    cmd->add_option("-A,--account", f->account, "The account (the coordinator role only)");
    cmd->callback([&ctx, &action, f, verb = verb] { action = [&ctx, f, verb] { return role_change(ctx, *f, verb); }; });
  }
}

}  // namespace

CLI::App* admin_command(CLI::App& app) {
  auto named = app.get_subcommands([](CLI::App* a) { return a->get_name() == "admin"; });
  if (!named.empty()) return named.front();
  return app.add_subcommand("admin", "Administer the site")->require_subcommand(1);
}

void add_directory_commands(CLI::App& app, Context& ctx, Action& action) {
  auto* admin = admin_command(app);
  admin->description("Administer the site: keys, users, accounts, roles, the audit trail");
  add_user_commands(*admin, ctx, action);
  add_account_commands(*admin, ctx, action);
  add_role_commands(*admin, ctx, action);
  auto f = std::make_shared<DirFlags>();
  auto* import = admin->add_subcommand("import", "Load users, accounts and roles from a TOML or CSV export "
                                                 "(docs/directory.md)");
  import->add_option("FILE", f->file, "A .toml or .csv file (an LDAP or sacctmgr export)")->required();
  import->add_flag("--replace", f->replace, "The directory becomes exactly the file (everything else is dropped)");
  import->add_flag("--dry-run", f->dry_run, "Print the ops and send nothing");
  on(import, ctx, action, f, import_file);
  add_audit_command(*admin, ctx, action);
}

}  // namespace trainyard::ty

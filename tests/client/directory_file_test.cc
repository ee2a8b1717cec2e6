// ty admin import's files: TOML and CSV directory exports into the
// EditDirectory ops billing applies, in an order it accepts, and every
// broken file refused with its line and field named; the merge filter that
// lets an import run again.
#define BOOST_TEST_MODULE client_directory_file
#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

#include "trainyard/directory_file.h"

using namespace trainyard;
using namespace trainyard::client;

namespace {

std::vector<std::string> lines(const std::vector<fb::DirectoryOpT>& ops) {
  std::vector<std::string> out;
  for (auto& o : ops) out.push_back(describe_op(o));
  return out;
}

std::vector<std::string> parse(const std::string& text, const std::string& name) {
  auto r = directory_ops_from_text(text, name);
  BOOST_TEST_REQUIRE(r.ok(), r.status().message());
  return lines(*r);
}

std::string error_of(const std::string& text, const std::string& name) {
  auto r = directory_ops_from_text(text, name);
  BOOST_TEST_REQUIRE(!r.ok(), "accepted: " << text);
  BOOST_TEST((r.status().code() == ErrorCode::InvalidArgument));
  return r.status().message();
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

BOOST_AUTO_TEST_CASE(toml_builds_accounts_first_then_members_defaults_and_grants) {
  auto ops = parse(R"(
[users.alice]
default_account = "physics"
accounts = ["physics", "chem"]
roles = ["operator"]
[users.carol]
roles = ["admin"]
[accounts.physics]
coordinators = ["bob"]
[accounts.empty]
)",
                   "site.toml");
  std::vector<std::string> want = {
      "AddAccount empty", "AddAccount physics", "AddAccount chem",  // chem: named only in a user's accounts
      "AddUser carol",                                              // of no account
      "AddMember bob physics", "AddMember alice physics", "AddMember alice chem",
      "SetDefaultAccount alice physics",
      "Grant operator alice", "Grant admin carol",
      "Grant coordinator bob physics"};
  BOOST_TEST(ops == want, boost::test_tools::per_element());
  auto r = directory_ops_from_text("[users.alice]\naccounts = [\"physics\", \"chem\"]\n[users.bob]\n", "x.toml");
  BOOST_TEST(directory_ops_summary(*r) == "2 users, 2 accounts");
}

BOOST_AUTO_TEST_CASE(toml_members_mirror_the_config_accounts_section) {
  auto ops = parse("[accounts.vision]\nmembers = [\"alice\", \"bob\"]\ncoordinators = [\"alice\"]\n", "d.toml");
  std::vector<std::string> want = {"AddAccount vision", "AddMember alice vision", "AddMember bob vision",
                                   "Grant coordinator alice vision"};
  BOOST_TEST(ops == want, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(broken_toml_names_the_file_line_and_field) {
  struct Case {
    std::string text, says;
  };
  for (auto& c : std::vector<Case>{
           {"[users.alice]\naccounts = \"physics\"\n", "d.toml line 2: field 'users.alice.accounts' must be an array"},
           {"[users.alice]\naccounts = [\"physics\", 3]\n", "d.toml line 2: field 'users.alice.accounts' must hold only"},
           {"[users.alice]\ndefault_account = 7\n", "d.toml line 2: field 'users.alice.default_account' must be an account"},
           {"[users.alice]\n\nroles = [\"boss\"]\n", "d.toml line 3: field 'users.alice.roles' holds unknown role 'boss'"},
           {"[users.alice]\nroles = [\"coordinator\"]\n", "[accounts.NAME] coordinators"},
           {"[users.alice]\ngroup = \"x\"\n", "d.toml line 2: field 'users.alice.group' is not a user field"},
           {"[accounts.physics]\nleader = [\"bob\"]\n", "d.toml line 2: field 'accounts.physics.leader' is not an account"},
           {"[accounts.physics]\ncoordinators = [\"bob smith\"]\n", "user 'bob smith'"},
           {"users = 3\n", "d.toml line 1: field 'users' must be a table"},
           {"[users]\nalice = 1\n", "d.toml line 2: field 'users.alice' must be a table"},
           {"[people.alice]\n", "field 'people' is not a directory field"},
           {"[users.alice\n", "d.toml line 1: not valid TOML"},
           {"# nothing\n", "names no user and no account"}}) {
    auto m = error_of(c.text, "d.toml");
    BOOST_TEST(contains(m, c.says), c.text << " -> " << m);
  }
}

BOOST_AUTO_TEST_CASE(csv_rows_are_memberships_in_any_column_order) {
  auto ops = parse("# from LDAP\nAccount,User,Default,Coordinator,Roles\n"
                   "physics,alice,yes,no,operator\n"
                   "chem,alice,,,\n"
                   "physics,bob,no,yes,\n"
                   "\"chem\",\"carol\",1,0,admin;coordinator\n",
                   "people.csv");
  std::vector<std::string> want = {
      "AddAccount physics", "AddAccount chem",
      "AddMember alice physics", "AddMember alice chem", "AddMember bob physics", "AddMember carol chem",
      "SetDefaultAccount alice physics", "SetDefaultAccount carol chem",
      "Grant operator alice", "Grant admin carol",
      "Grant coordinator bob physics", "Grant coordinator carol chem"};
  BOOST_TEST(ops == want, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(sacctmgr_parsable_output_is_read_as_it_is) {
  // sacctmgr -p list assoc format=user,account: '|' separated, a trailing
  // '|', and one row per account with no user.
  auto ops = parse("User|Account|\n|physics|\nalice|physics|\nbob|physics|\n", "assoc.txt");
  std::vector<std::string> want = {"AddAccount physics", "AddMember alice physics", "AddMember bob physics"};
  BOOST_TEST(ops == want, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(broken_csv_names_the_file_line_and_column) {
  struct Case {
    std::string text, says;
  };
  for (auto& c : std::vector<Case>{
           {"user,account,group\nalice,physics,x\n", "p.csv line 1: unknown column 'group'"},
           {"account,default\nphysics,yes\n", "p.csv line 1: no 'user' column"},
           {"user,roles\nalice,admin\n", "p.csv line 1: no 'account' column"},
           {"user,account,user\n", "p.csv line 1: column 'user' appears twice"},
           {"user,account,default\nalice,physics,yes\nbob,physics,maybe\n",
            "p.csv line 3: column 'default': 'maybe' is not yes, no, true, false, 1, 0 or empty"},
           {"user,account,coordinator\nalice,physics,2\n", "p.csv line 2: column 'coordinator': '2'"},
           {"user,account,roles\nalice,physics,admin;boss\n", "p.csv line 2: column 'roles': unknown role 'boss'"},
           {"user,account\nalice,\n", "p.csv line 2: column 'account' is empty"},
           {"user,account,default\n,physics,yes\n", "p.csv line 2: column 'user' is empty, yet"},
           {"user,account\nalice,physics,extra\n", "p.csv line 2: 3 fields where the header has 2"},
           {"user,account\n\"alice,physics\n", "p.csv line 2: a quote (\") is never closed"},
           {"user,account\nal ice,physics\n", "p.csv line 2: column 'user': user 'al ice'"},
           {"user,account,default\nalice,physics,yes\nalice,chem,yes\n",
            "p.csv line 3: column 'default': alice's default account is already physics"},
           {"", "p.csv: is empty"}}) {
    auto m = error_of(c.text, "p.csv");
    BOOST_TEST(contains(m, c.says), c.text << " -> " << m);
  }
}

BOOST_AUTO_TEST_CASE(the_format_follows_the_extension_else_the_content) {
  BOOST_TEST(parse("[users.alice]\n", "export") == std::vector<std::string>{"AddUser alice"});
  BOOST_TEST(parse("user,account\nalice,physics\n", "export").size() == 2u);
  // A .csv is never read as TOML, whatever it looks like.
  BOOST_TEST(contains(error_of("[users.alice]\n", "x.csv"), "x.csv line 1: unknown column '[users.alice]'"));
  auto missing = directory_ops_from_file("/nonexistent/people.csv");
  BOOST_TEST(!missing.ok());
  BOOST_TEST(contains(missing.status().message(), "/nonexistent/people.csv: cannot read it"));
}

BOOST_AUTO_TEST_CASE(a_merge_sends_only_what_changes_the_directory) {
  fb::DirectoryViewT now;
  auto alice = std::make_unique<fb::DirectoryUserT>();
  alice->name = "alice";
  alice->default_account = "physics";
  alice->roles = {"operator"};
  now.users.push_back(std::move(alice));
  auto physics = std::make_unique<fb::DirectoryAccountT>();
  physics->name = "physics";
  physics->members = {"alice"};
  now.accounts.push_back(std::move(physics));

  auto ops = directory_ops_from_text(
      "[users.alice]\ndefault_account = \"physics\"\naccounts = [\"physics\", \"chem\"]\nroles = [\"operator\", "
      "\"admin\"]\n[accounts.physics]\ncoordinators = [\"alice\"]\n",
      "d.toml");
  BOOST_TEST_REQUIRE(ops.ok());
  std::vector<std::string> want = {"AddAccount chem", "AddMember alice chem", "Grant admin alice",
                                   "Grant coordinator alice physics"};
  BOOST_TEST(lines(ops_that_change(now, *ops)) == want, boost::test_tools::per_element());
  // Applied, the same file changes nothing more.
  for (auto& o : ops_that_change(now, *ops)) {
    if (o.verb == fb::DirectoryVerb::AddAccount) {
      now.accounts.push_back(std::make_unique<fb::DirectoryAccountT>());
      now.accounts.back()->name = o.account;
    }
  }
  now.accounts[0]->coordinators = {"alice"};
  now.accounts[1]->members = {"alice"};
  now.users[0]->roles.push_back("admin");
  BOOST_TEST(ops_that_change(now, *ops).empty());
}

BOOST_AUTO_TEST_CASE(names_and_roles_are_checked) {
  BOOST_TEST(check_directory_name("user", "alice.b-c_9").ok());
  BOOST_TEST(check_directory_name("user", "").message() == "user '': a name has 1 to 64 characters");
  BOOST_TEST(contains(check_directory_name("account", "a/b").message(), "account 'a/b': a name may hold only"));
  BOOST_TEST((check_directory_name("user", std::string(65, 'a')).code() == ErrorCode::InvalidArgument));
  BOOST_TEST(check_role("coordinator").ok());
  BOOST_TEST(check_role("root").message() == "unknown role 'root' (admin, operator or coordinator)");
}

// The directory's model (security/directory.h): edits all or none, adds
// idempotent (an import run twice changes nothing), removes naming what is
// missing, the config's bootstrap joined with the durable directory, and
// the wire form round-tripping.
#define BOOST_TEST_MODULE directory_model
#include <boost/test/unit_test.hpp>

#include "security/authz.h"
#include "security/directory.h"

using namespace trainyard;
using namespace trainyard::security;

namespace {

using V = fb::DirectoryVerb;

std::vector<fb::DirectoryOpT> physics() {
  return {security::directory_op(V::AddAccount, "", "physics"), security::directory_op(V::AddMember, "alice", "physics"),
          security::directory_op(V::SetDefaultAccount, "alice", "physics"), security::directory_op(V::Grant, "carol", "physics", "coordinator"),
          security::directory_op(V::Grant, "olga", "", "operator")};
}

}  // namespace

BOOST_AUTO_TEST_CASE(ops_build_accounts_members_defaults_and_roles) {
  auto d = apply_ops({}, physics(), false);
  BOOST_REQUIRE_MESSAGE(d.ok(), d.status().to_string());
  BOOST_TEST(d->accounts.at("physics").members.count("alice") == 1u);
  BOOST_TEST(d->accounts.at("physics").coordinators.count("carol") == 1u);
  BOOST_TEST(d->accounts.at("physics").members.count("carol") == 1u);  // a coordinator is a member
  BOOST_TEST(d->default_account("alice") == "physics");
  BOOST_TEST(d->operators.count("olga") == 1u);
  BOOST_TEST(d->users.count("olga") == 1u);

  Caller carol("user:carol", *d, true), bob("user:bob", *d, true), olga("user:olga", *d, true);
  BOOST_TEST(carol.may_manage_job("alice", "physics"));
  BOOST_TEST(!bob.member_of("physics"));
  BOOST_TEST(olga.operator_());
  BOOST_TEST(!olga.admin());
}

BOOST_AUTO_TEST_CASE(adding_twice_changes_nothing_and_a_bad_op_changes_nothing) {
  auto once = apply_ops({}, physics(), false);
  BOOST_REQUIRE(once.ok());
  auto twice = apply_ops(*once, physics(), false);
  BOOST_REQUIRE(twice.ok());
  BOOST_TEST((*twice == *once));

  // All or none: the first op would apply, the second fails.
  auto bad = apply_ops(*once, {security::directory_op(V::AddAccount, "", "chem"), security::directory_op(V::RemoveMember, "bob", "physics")}, false);
  BOOST_REQUIRE(!bad.ok());
  BOOST_TEST(bad.status().message() == "ops[1] RemoveMember: bob is not a member of physics");
  BOOST_TEST(once->accounts.count("chem") == 0u);

  auto missing = apply_ops(*once, {security::directory_op(V::AddMember, "bob", "chem")}, false);
  BOOST_TEST(missing.status().message() == "ops[0] AddMember: account chem does not exist (add it first)");
  auto role = apply_ops(*once, {security::directory_op(V::Grant, "bob", "", "root")}, false);
  BOOST_TEST(role.status().message() == "ops[0] Grant: role \"root\" is not one of admin, operator, coordinator");
  auto name = apply_ops(*once, {security::directory_op(V::AddUser, "bob smith")}, false);
  BOOST_TEST(name.status().message().find("may hold only letters") != std::string::npos);
  auto not_member = apply_ops(*once, {security::directory_op(V::AddUser, "bob"), security::directory_op(V::SetDefaultAccount, "bob", "physics")}, false);
  BOOST_TEST(not_member.status().message() == "ops[1] SetDefaultAccount: bob is not a member of physics");
}

BOOST_AUTO_TEST_CASE(removing_an_account_or_a_user_leaves_no_trace) {
  auto d = apply_ops({}, physics(), false);
  BOOST_REQUIRE(d.ok());
  auto no_account = apply_ops(*d, {security::directory_op(V::RemoveAccount, "", "physics")}, false);
  BOOST_REQUIRE(no_account.ok());
  BOOST_TEST(no_account->default_account("alice") == "");
  BOOST_TEST(no_account->users.count("alice") == 1u);  // the user stays
  auto no_user = apply_ops(*d, {security::directory_op(V::RemoveUser, "carol")}, false);
  BOOST_REQUIRE(no_user.ok());
  BOOST_TEST(no_user->accounts.at("physics").coordinators.empty());
  BOOST_TEST(no_user->accounts.at("physics").members.count("carol") == 0u);
  auto left = apply_ops(*d, {security::directory_op(V::RemoveMember, "alice", "physics")}, false);
  BOOST_REQUIRE(left.ok());
  BOOST_TEST(left->default_account("alice") == "");  // a default must be one of the user's accounts
}

BOOST_AUTO_TEST_CASE(replace_builds_from_empty_and_config_always_joins) {
  auto d = apply_ops({}, physics(), false);
  BOOST_REQUIRE(d.ok());
  auto r = apply_ops(*d, {security::directory_op(V::AddAccount, "", "chem"), security::directory_op(V::AddMember, "bob", "chem")}, true);
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(r->accounts.count("physics") == 0u);
  BOOST_TEST(r->users.count("alice") == 0u);

  Directory config;
  config.admins.insert("dana");
  config.accounts["physics"].members.insert("erin");
  auto view = merged(config, *d);
  BOOST_TEST(view.admins.count("dana") == 1u);
  BOOST_TEST(view.accounts.at("physics").members.count("erin") == 1u);
  BOOST_TEST(view.accounts.at("physics").members.count("alice") == 1u);
  BOOST_TEST(view.default_account("alice") == "physics");
}

BOOST_AUTO_TEST_CASE(the_wire_form_round_trips) {
  auto d = apply_ops({}, physics(), false);
  BOOST_REQUIRE(d.ok());
  d->version = 7;
  d->admins.insert("dana");
  d->users["dana"];
  auto view = to_view(*d);
  flatbuffers::FlatBufferBuilder b;
  b.Finish(fb::DirectoryView::Pack(b, &view));
  auto back = from_view(*flatbuffers::GetRoot<fb::DirectoryView>(b.GetBufferPointer()));
  BOOST_TEST((back == *d));
}

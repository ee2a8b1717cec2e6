// The rules' building blocks: roles, membership and coordinators as the
// directory says, and nothing enforced without CURVE.
#define BOOST_TEST_MODULE authz
#include <boost/test/unit_test.hpp>

#include "security/authz.h"

using namespace trainyard::security;

namespace {

Directory site() {
  Directory d;
  d.admins = {"dana"};
  d.operators = {"olga"};
  d.accounts["vision"].members = {"alice", "bob"};
  d.accounts["vision"].coordinators = {"carol"};
  return d;
}

}  // namespace

BOOST_AUTO_TEST_CASE(owners_coordinators_and_admins_manage_jobs_and_nobody_else) {
  auto d = site();
  BOOST_TEST(Caller("user:alice", d, true).may_manage_job("alice", "vision"));
  BOOST_TEST(!Caller("user:bob", d, true).may_manage_job("alice", "vision"));
  BOOST_TEST(Caller("user:carol", d, true).may_manage_job("alice", "vision"));
  BOOST_TEST(!Caller("user:carol", d, true).may_manage_job("alice", "nlp"));
  BOOST_TEST(Caller("user:dana", d, true).may_manage_job("alice", "nlp"));
  BOOST_TEST(Caller("service:gateway", d, true).may_manage_job("alice", "nlp"));
  BOOST_TEST(!Caller("agent:node-a", d, true).may_manage_job("alice", "nlp"));
  BOOST_TEST(Caller("user:bob", d, false).may_manage_job("alice", "vision"));  // not enforced without CURVE
}

BOOST_AUTO_TEST_CASE(membership_roles_and_nodes) {
  auto d = site();
  BOOST_TEST(Caller("user:bob", d, true).member_of("vision"));
  BOOST_TEST(Caller("user:carol", d, true).member_of("vision"));  // coordinators are members
  BOOST_TEST(!Caller("user:olga", d, true).member_of("vision"));
  BOOST_TEST(Caller("user:olga", d, true).member_of("unlisted"));
  BOOST_TEST(Caller("user:olga", d, true).operator_());
  BOOST_TEST(!Caller("user:olga", d, true).admin());
  BOOST_TEST(!Caller("user:bob", d, true).operator_());
  BOOST_TEST(Caller("agent:gpu", d, true).agent_of("gpu"));
  BOOST_TEST(Caller("agent:gpu", d, true).agent_of("gpu-17"));
  BOOST_TEST(!Caller("agent:gpu", d, true).agent_of("gpu-x"));
  BOOST_TEST(!Caller("agent:gpu", d, true).agent_of("gpu2"));
  BOOST_TEST(!Caller("user:gpu", d, true).agent_of("gpu"));
  auto s = Caller("user:bob", d, true).refuse("admins", "set budgets");
  BOOST_TEST(s.message() == "admins: user:bob may not set budgets");
}

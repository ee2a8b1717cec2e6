// ty admin user|account|role|import|audit as an admin runs them, against a
// stand-in billing (a real ROUTER in this process answering GetDirectory,
// EditDirectory and QueryAudit as the service does): the ops each command
// sends, what it prints, and the usage errors it stops at before sending.
#define BOOST_TEST_MODULE client_ty_directory
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "process.h"
#include "rpc/server.h"
#include "trainyard/directory_file.h"
#include "util/clock.h"

using namespace trainyard;
namespace tt = trainyard::testing;
using namespace std::chrono_literals;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// The directory: alice (physics, default physics, operator), bob
// (physics, its coordinator); the audit trail: three records on two pages.
class FakeBilling {
 public:
  FakeBilling() {
    server_ = std::make_unique<rpc::Server>(ctx_, "tcp://127.0.0.1:*", "billing");
    server_->on(fb::RequestBody::GetDirectory, [this](const fb::Request&, rpc::Responder& r) {
      std::lock_guard lock(mu_);
      ++gets_;
      reply_view(r);
    });
    server_->on(fb::RequestBody::EditDirectory, [this](const fb::Request& q, rpc::Responder& r) {
      std::lock_guard lock(mu_);
      if (!deny_.empty()) return r.error(Status::permission_denied(deny_));
      fb::EditDirectoryT e;
      q.body_as_EditDirectory()->UnPackTo(&e);
      edits_.emplace_back();
      for (auto& o : e.ops) edits_.back().push_back(client::describe_op(*o));
      replace_ = e.replace;
      reply_view(r);
    });
    server_->on(fb::RequestBody::QueryAudit, [this](const fb::Request& q, rpc::Responder& r) {
      std::lock_guard lock(mu_);
      audits_.emplace_back();
      q.body_as_QueryAudit()->UnPackTo(&audits_.back());
      reply_audit(r, audits_.back().before);
    });
    thread_ = std::thread([this] {
      while (!stop_) {
        zmq::pollitem_t items[] = {{static_cast<void*>(server_->socket()), 0, ZMQ_POLLIN, 0}};
        zmq::poll(items, 1, 50ms);
        server_->poll_in();
        server_->flush();
      }
    });
  }
  ~FakeBilling() {
    stop_ = true;
    thread_.join();
  }

  std::string endpoint() const { return server_->endpoint(); }
  void deny(const std::string& why) {
    std::lock_guard lock(mu_);
    deny_ = why;
  }
  std::vector<std::vector<std::string>> edits() {
    std::lock_guard lock(mu_);
    return edits_;
  }
  bool replaced() {
    std::lock_guard lock(mu_);
    return replace_;
  }
  int gets() {
    std::lock_guard lock(mu_);
    return gets_;
  }
  std::vector<fb::QueryAuditT> audits() {
    std::lock_guard lock(mu_);
    return audits_;
  }

 private:
  void reply_view(rpc::Responder& r) {
    fb::DirectoryViewT v;
    v.version = 7;
    for (auto [name, def, roles] : {std::tuple{"alice", "physics", std::vector<std::string>{"operator"}},
                                    std::tuple{"bob", "physics", std::vector<std::string>{}}}) {
      auto u = std::make_unique<fb::DirectoryUserT>();
      u->name = name;
      u->default_account = def;
      u->roles = roles;
      v.users.push_back(std::move(u));
    }
    auto a = std::make_unique<fb::DirectoryAccountT>();
    a->name = "physics";
    a->members = {"alice", "bob"};
    a->coordinators = {"bob"};
    v.accounts.push_back(std::move(a));
    r.ok(fb::ReplyBody::DirectoryView, fb::CreateDirectoryView(r.builder(), &v).Union());
  }

  void reply_audit(rpc::Responder& r, const std::string& before) {
    fb::AuditListT list;
    auto add = [&](int64_t ago_s, const char* who, const char* action, bool allowed, const char* message) {
      auto e = std::make_unique<fb::AuditEntryT>();
      e->time_ns = SystemClock().now_ns() - ago_s * 1'000'000'000;
      e->record = std::make_unique<fb::AuditRecordT>();
      e->record->principal = who;
      e->record->service = "billing";
      e->record->action = action;
      e->record->target = "account physics";
      e->record->allowed = allowed;
      e->record->code = allowed ? fb::ErrorCode::Ok : fb::ErrorCode::PermissionDenied;
      e->record->message = message;
      list.entries.push_back(std::move(e));
    };
    if (before.empty()) {
      add(10, "user:root", "SetBudget", true, "");
      add(20, "user:bob", "SetBudget", false, "billing.budget: user:bob may not set budgets");
      list.next_before = "page-2";
    } else {
      add(30, "user:root", "EditDirectory", true, "");
    }
    r.ok(fb::ReplyBody::AuditList, fb::CreateAuditList(r.builder(), &list).Union());
  }

  zmq::context_t ctx_{1};
  std::unique_ptr<rpc::Server> server_;
  std::mutex mu_;
  std::string deny_;
  std::vector<std::vector<std::string>> edits_;
  bool replace_ = false;
  int gets_ = 0;
  std::vector<fb::QueryAuditT> audits_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// ty against `billing` (plaintext, as the stand-in is), as user ada.
std::pair<int, std::string> ty(const tt::TempDir& home, const std::string& billing, std::vector<std::string> args) {
  std::filesystem::create_directories(home / ".config/trainyard");
  std::ofstream(home / ".config/trainyard/config.toml") << "[security]\nmode = \"none\"\n";
  args.insert(args.begin(), {tt::bin("ty"), "--billing", billing});
  return tt::run(args, 20s, {{"HOME", home.path()}, {"TY_CONFIG", ""}, {"USER", "ada"}});
}

}  // namespace

BOOST_AUTO_TEST_CASE(admin_help_lists_the_directory_commands_beside_keys) {
  tt::TempDir home;
  auto [rc, out] = ty(home, "tcp://127.0.0.1:1", {"admin", "--help"});
  BOOST_TEST(rc == 0);
  for (auto word : {"keys", "user", "account", "role", "import", "audit"}) {
    BOOST_TEST(contains(out, word), "ty admin --help lacks " << word << ": " << out);
  }
  for (std::vector<std::string> cmd : std::vector<std::vector<std::string>>{
           {"admin", "user", "add"}, {"admin", "user", "list"}, {"admin", "account", "add"},
           {"admin", "role", "grant"}, {"admin", "import"}, {"admin", "audit"}}) {
    cmd.push_back("--help");
    auto [hrc, help] = ty(home, "tcp://127.0.0.1:1", cmd);
    BOOST_TEST(hrc == 0, cmd[1]);
    BOOST_TEST(contains(help, "Usage"), cmd[1] << ": " << help);
  }
}

BOOST_AUTO_TEST_CASE(usage_errors_exit_2_naming_what_is_wrong_and_send_nothing) {
  tt::TempDir home;
  FakeBilling billing;
  std::ofstream(home / "bad.csv") << "user,account,default\nalice,physics,yes\nbob,physics,maybe\n";
  struct Case {
    std::vector<std::string> args;
    std::string says;
  };
  for (auto& c : std::vector<Case>{
           {{"admin", "role", "grant", "coordinator", "bob"}, "the coordinator role is of an account: add --account"},
           {{"admin", "role", "grant", "boss", "bob"}, "unknown role 'boss' (admin, operator or coordinator)"},
           {{"admin", "role", "revoke", "admin", "bob", "--account", "physics"}, "--account applies only to the "
                                                                                 "coordinator role"},
           {{"admin", "user", "add", "bob smith"}, "user 'bob smith': a name may hold only"},
           {{"admin", "user", "add", "bob", "--account", "a/b"}, "account 'a/b'"},
           {{"admin", "account", "add", "physics", "--coordinator", "b@d"}, "user 'b@d': a name may hold only"},
           {{"admin", "import", (home / "missing.csv")}, "missing.csv: cannot read it"},
           {{"admin", "import", (home / "bad.csv"), "--dry-run"}, "bad.csv line 3: column 'default': 'maybe'"},
           {{"admin", "audit", "--since", "yesterday"}, "--since 'yesterday': use an age (30m, 12h, 7d, 2w)"},
           {{"admin", "audit", "--since", "1h", "--until", "2h"}, "--until is before --since"},
           {{"admin", "audit", "--limit", "0"}, "--limit"}}) {
    auto [rc, out] = ty(home, billing.endpoint(), c.args);
    BOOST_TEST(rc == 2, c.args[2] << " exited " << rc << ": " << out);
    BOOST_TEST(contains(out, c.says), c.args[2] << ": " << out);
  }
  BOOST_TEST(billing.edits().empty());
  BOOST_TEST(billing.audits().empty());
  BOOST_TEST(billing.gets() == 0);
}

BOOST_AUTO_TEST_CASE(user_add_sends_only_what_the_directory_lacks_in_an_order_billing_accepts) {
  tt::TempDir home;
  FakeBilling billing;
  auto [rc, out] = ty(home, billing.endpoint(),
                      {"admin", "user", "add", "alice", "--account", "physics", "--account", "chem", "--default", "chem"});
  BOOST_TEST_REQUIRE(rc == 0, out);
  auto edits = billing.edits();
  BOOST_TEST_REQUIRE(edits.size() == 1u);
  std::vector<std::string> want = {"AddMember alice chem", "SetDefaultAccount alice chem"};
  BOOST_TEST(edits[0] == want, boost::test_tools::per_element());
  BOOST_TEST(contains(out, "AddMember alice chem"), out);
  BOOST_TEST(contains(out, "directory version 7"), out);
  BOOST_TEST(!billing.replaced());

  auto [rc2, out2] = ty(home, billing.endpoint(), {"admin", "user", "add", "dave", "--default", "physics"});
  BOOST_TEST_REQUIRE(rc2 == 0, out2);
  want = {"AddUser dave", "AddMember dave physics", "SetDefaultAccount dave physics"};
  BOOST_TEST(billing.edits().back() == want, boost::test_tools::per_element());

  auto [rc3, out3] = ty(home, billing.endpoint(), {"admin", "user", "add", "alice", "--account", "physics"});
  BOOST_TEST(rc3 == 0, out3);
  BOOST_TEST(contains(out3, "nothing to change"), out3);
  BOOST_TEST(billing.edits().size() == 2u);
}

BOOST_AUTO_TEST_CASE(each_edit_command_sends_its_op) {
  tt::TempDir home;
  FakeBilling billing;
  struct Case {
    std::vector<std::string> args;
    std::vector<std::string> ops;
  };
  for (auto& c : std::vector<Case>{
           {{"admin", "user", "remove", "bob"}, {"RemoveUser bob"}},
           {{"admin", "user", "remove", "bob", "-A", "physics"}, {"RemoveMember bob physics"}},
           {{"admin", "user", "default", "bob", "chem"}, {"SetDefaultAccount bob chem"}},
           {{"admin", "account", "add", "chem", "--coordinator", "carol"},
            {"AddAccount chem", "AddMember carol chem", "Grant coordinator carol chem"}},
           {{"admin", "account", "remove", "chem"}, {"RemoveAccount chem"}},
           {{"admin", "role", "grant", "coordinator", "alice", "--account", "physics"},
            {"Grant coordinator alice physics"}},
           {{"admin", "role", "revoke", "operator", "alice"}, {"Revoke operator alice"}}}) {
    auto [rc, out] = ty(home, billing.endpoint(), c.args);
    BOOST_TEST_REQUIRE(rc == 0, c.args[2] << ": " << out);
    BOOST_TEST(billing.edits().back() == c.ops, boost::test_tools::per_element());
  }
}

BOOST_AUTO_TEST_CASE(a_refusal_from_billing_is_shown_and_exits_1) {
  tt::TempDir home;
  FakeBilling billing;
  billing.deny("directory: user:ada may not edit the directory");
  auto [rc, out] = ty(home, billing.endpoint(), {"admin", "role", "grant", "admin", "ada"});
  BOOST_TEST(rc == 1);
  BOOST_TEST(contains(out, "directory: user:ada may not edit the directory"), out);
}

BOOST_AUTO_TEST_CASE(import_merges_replaces_or_only_shows_its_ops) {
  tt::TempDir home;
  FakeBilling billing;
  std::ofstream(home / "ldap.csv") << "user,account,default,roles\nalice,physics,yes,operator\ncarol,chem,yes,admin\n";
  auto file = (home / "ldap.csv");
  {
    auto [rc, out] = ty(home, billing.endpoint(), {"admin", "import", file, "--dry-run"});
    BOOST_TEST_REQUIRE(rc == 0, out);
    BOOST_TEST(contains(out, "AddAccount chem\n"), out);
    BOOST_TEST(contains(out, "Grant admin carol\n"), out);
    BOOST_TEST(contains(out, "2 users, 2 accounts, 8 ops (dry run: nothing sent)"), out);
    BOOST_TEST(billing.edits().empty());
  }
  {
    auto [rc, out] = ty(home, billing.endpoint(), {"admin", "import", file});
    BOOST_TEST_REQUIRE(rc == 0, out);
    std::vector<std::string> want = {"AddAccount chem", "AddMember carol chem", "SetDefaultAccount carol chem",
                                     "Grant admin carol"};
    BOOST_TEST(billing.edits().back() == want, boost::test_tools::per_element());
    BOOST_TEST(!billing.replaced());
    BOOST_TEST(contains(out, "imported " + file + ": 2 users, 2 accounts (4 ops; directory version 7)"), out);
  }
  {
    auto [rc, out] = ty(home, billing.endpoint(), {"admin", "import", file, "--replace"});
    BOOST_TEST_REQUIRE(rc == 0, out);
    BOOST_TEST(billing.edits().back().size() == 8u);
    BOOST_TEST(billing.replaced());
    BOOST_TEST(contains(out, "replaced the directory with " + file), out);
  }
}

BOOST_AUTO_TEST_CASE(user_and_account_lists_show_tables_and_json) {
  tt::TempDir home;
  FakeBilling billing;
  auto [rc, out] = ty(home, billing.endpoint(), {"admin", "user", "list"});
  BOOST_TEST_REQUIRE(rc == 0, out);
  BOOST_TEST(contains(out, "USER"), out);
  BOOST_TEST(contains(out, "coordinator:physics"), out);
  BOOST_TEST(contains(out, "operator"), out);
  auto [jrc, json] = ty(home, billing.endpoint(), {"admin", "user", "list", "--json"});
  BOOST_TEST_REQUIRE(jrc == 0, json);
  auto users = nlohmann::json::parse(json);
  BOOST_TEST(users.size() == 2u);
  BOOST_TEST(users[1]["name"] == "bob");
  BOOST_TEST(users[1]["coordinator_of"] == nlohmann::json::array({"physics"}));
  BOOST_TEST(users[0]["accounts"] == nlohmann::json::array({"physics"}));
  auto [arc, accounts] = ty(home, billing.endpoint(), {"admin", "account", "list", "--json"});
  BOOST_TEST_REQUIRE(arc == 0, accounts);
  auto a = nlohmann::json::parse(accounts);
  BOOST_TEST(a[0]["members"] == nlohmann::json::array({"alice", "bob"}));
  BOOST_TEST(a[0]["coordinators"] == nlohmann::json::array({"bob"}));
}

BOOST_AUTO_TEST_CASE(audit_shows_refusals_with_their_reason_and_follows_pages) {
  tt::TempDir home;
  FakeBilling billing;
  auto [rc, out] = ty(home, billing.endpoint(), {"admin", "audit", "--user", "bob", "--refused", "--since", "1h"});
  BOOST_TEST_REQUIRE(rc == 0, out);
  for (auto word : {"TIME", "PRINCIPAL", "SERVICE", "ACTION", "TARGET", "RESULT", "allowed",
                    "refused: billing.budget: user:bob may not set budgets", "account physics",
                    "--before page-2"}) {
    BOOST_TEST(contains(out, word), word << ": " << out);
  }
  auto q = billing.audits().back();
  BOOST_TEST(q.principal == "user:bob");
  BOOST_TEST(q.refused_only);
  int64_t hour_ago = SystemClock().now_ns() - 3'600'000'000'000;
  BOOST_TEST(std::abs(q.since_ns - hour_ago) < 60'000'000'000);
  BOOST_TEST(q.limit == 100u);

  auto [arc, all] = ty(home, billing.endpoint(), {"admin", "audit", "--all", "--limit", "2", "--json"});
  BOOST_TEST_REQUIRE(arc == 0, all);
  auto j = nlohmann::json::parse(all);
  BOOST_TEST(j["entries"].size() == 3u);
  BOOST_TEST(j["entries"][2]["action"] == "EditDirectory");
  BOOST_TEST(j["entries"][1]["allowed"] == false);
  BOOST_TEST(j["entries"][1]["code"] == "PermissionDenied");
  BOOST_TEST(j["next_before"] == "");
  auto audits = billing.audits();
  BOOST_TEST(audits.back().before == "page-2");
  BOOST_TEST(audits.back().limit == 2u);
  BOOST_TEST(audits.back().principal == "");
}

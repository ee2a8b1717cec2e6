// The durable directory and the audit trail, with real processes and real
// keys: billing owns the directory (EditDirectory, admins only), publishes
// it whole, and the scheduler, the broker and the agents enforce what it
// says within moments and after a restart; every admin action and every
// refusal is an audit.* record that billing keeps for QueryAudit.
#define BOOST_TEST_MODULE directory
#include <boost/test/unit_test.hpp>

#include <fstream>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "cluster.h"
#include "cluster_client.h"
#include "rpc/client.h"
#include "security/directory.h"
#include "security/site.h"
#include "trainyard/client.h"

using namespace std::chrono_literals;
using namespace trainyard;
using trainyard::testing::Cluster;
using trainyard::testing::ClusterOptions;
using trainyard::testing::connect;
using trainyard::testing::wait_until;

namespace {

const testing::TempDir& scratch() {
  static testing::TempDir dir;
  return dir;
}

ClusterOptions site_options() {
  ClusterOptions o;
  o.agents = {{"node-a"}};
  o.with_test_billing(scratch().path());
  o.metrics = true;
  o.users = {"alice", "bob", "carol", "dana", "olga"};
  // Only the first admin comes from the config: the rest from the directory.
  o.site_sets = {"security.roles.admins=[\"dana\"]"};
  return o;
}

// A raw client of billing acting as `user` (the wire, not the CLI).
struct Billing {
  zmq::context_t ctx;  // first: the others use it
  std::unique_ptr<security::Site> site;
  rpc::Client client;
  Billing(const Cluster& c, const std::string& user)
      : site(testing::user_identity(c, user)), client(ctx, "billing", c.billing, {3000, 1, "", "service:billing", site.get()}) {}
  Result<rpc::Reply> edit(const std::vector<fb::DirectoryOpT>& ops, bool replace = false) {
    return client.call(fb::RequestBody::EditDirectory, [&](flatbuffers::FlatBufferBuilder& b) {
      fb::EditDirectoryT e;
      for (auto& o : ops) e.ops.push_back(std::make_unique<fb::DirectoryOpT>(o));
      e.replace = replace;
      return fb::EditDirectory::Pack(b, &e).Union();
    });
  }
  Result<fb::AuditListT> audit(bool refused_only = false, uint32_t limit = 1000, const std::string& before = "") {
    auto r = client.call(fb::RequestBody::QueryAudit, [&](flatbuffers::FlatBufferBuilder& b) {
      fb::QueryAuditT q;
      q.refused_only = refused_only;
      q.limit = limit;
      q.before = before;
      return fb::QueryAudit::Pack(b, &q).Union();
    });
    if (!r) return r.status();
    auto* list = r->body<fb::AuditList>();
    if (!list) return Status::internal("no AuditList in the reply");
    fb::AuditListT out;
    list->UnPackTo(&out);
    return out;
  }
};

using V = fb::DirectoryVerb;

fb::JobSpecT sleeper(const std::string& account) {
  fb::JobSpecT s;
  s.name = "sleeper";
  s.account = account;
  s.command = {"sleep", "60"};
  s.gpus_per_node = 1;
  s.time_limit_s = 600;
  s.grace_s = 1;
  return s;
}

void expect_denied(const Status& s, const std::string& rule, const std::string& who) {
  BOOST_TEST_CONTEXT(s.to_string()) {
    BOOST_TEST((s.code() == ErrorCode::PermissionDenied));
    BOOST_TEST(s.message().find(rule) != std::string::npos);
    BOOST_TEST(s.message().find(who) != std::string::npos);
  }
}

std::vector<fb::DirectoryOpT> physics() {
  return {security::directory_op(V::AddAccount, "", "physics"), security::directory_op(V::AddMember, "alice", "physics"),
          security::directory_op(V::SetDefaultAccount, "alice", "physics"), security::directory_op(V::Grant, "carol", "physics", "coordinator"),
          security::directory_op(V::Grant, "olga", "", "operator")};
}

}  // namespace

BOOST_AUTO_TEST_CASE(admins_edit_the_directory_and_every_service_enforces_it_also_after_a_restart) {
  Cluster c(site_options());
  Billing dana(c, "dana"), bob_billing(c, "bob");
  expect_denied(bob_billing.edit(physics()).status(), "admins", "user:bob");

  auto edited = dana.edit(physics());
  BOOST_REQUIRE_MESSAGE(edited.ok(), edited.status().to_string());
  auto* view = edited->body<fb::DirectoryView>();
  BOOST_REQUIRE(view);
  BOOST_TEST(view->version() == 1u);
  // The same edit again changes nothing: no new version.
  auto again = dana.edit(physics());
  BOOST_REQUIRE(again.ok());
  BOOST_TEST(again->body<fb::DirectoryView>()->version() == 1u);
  // A bad op changes nothing and names itself.
  auto bad = dana.edit({security::directory_op(V::AddAccount, "", "chem"), security::directory_op(V::RemoveMember, "bob", "physics")});
  BOOST_TEST(bad.status().message() == "ops[1] RemoveMember: bob is not a member of physics");

  auto alice = connect(c, "user:alice"), bob = connect(c, "user:bob"), carol = connect(c, "user:carol"),
       olga = connect(c, "user:olga");
  // The scheduler learns it from the bus: bob is not in physics any more
  // than the account is open.
  Status bob_submit;
  BOOST_TEST(wait_until(
      [&] {
        bob_submit = bob.submit(sleeper("physics")).status();
        return bob_submit.code() == ErrorCode::PermissionDenied;
      },
      10s));
  expect_denied(bob_submit, "account membership", "user:bob");
  // alice's job names no account: it goes to her default one.
  auto sub = alice.submit(sleeper(""));
  BOOST_REQUIRE_MESSAGE(sub.ok(), sub.status().to_string());
  uint64_t id = sub->job_ids.at(0);
  BOOST_TEST(alice.status(id)->spec->account == "physics");
  // A second job waits behind it (both GPUs of the node): holds apply to it.
  auto both = sleeper("");
  both.gpus_per_node = 2;
  auto waiting = alice.submit(both);
  BOOST_REQUIRE(waiting.ok());
  uint64_t queued = waiting->job_ids.at(0);
  expect_denied(bob.hold(queued), "job owner", "user:bob");
  auto held = carol.hold(queued);  // carol coordinates physics
  BOOST_TEST(held.ok(), held.to_string());
  BOOST_TEST(carol.release(queued).ok());

  // The broker: olga became an operator.
  Status drained;
  BOOST_TEST(wait_until(
      [&] {
        drained = olga.drain("node-a", "maintenance");
        return drained.ok();
      },
      10s));
  BOOST_TEST(olga.undrain("node-a").ok());
  expect_denied(bob.drain("node-a", "x"), "operators", "user:bob");

  // A restarted scheduler enforces the stored directory before the bus
  // says anything.
  c.kill9("scheduler");
  c.start("scheduler");
  auto bob2 = connect(c, "user:bob");
  expect_denied(bob2.submit(sleeper("physics")).status(), "account membership", "user:bob");
  auto alice2 = connect(c, "user:alice");
  auto sub2 = alice2.submit(sleeper(""));
  BOOST_REQUIRE_MESSAGE(sub2.ok(), sub2.status().to_string());
  BOOST_TEST(alice2.status(sub2->job_ids.at(0))->spec->account == "physics");

  // Removing alice from physics takes her job rights there away too.
  BOOST_REQUIRE(dana.edit({security::directory_op(V::RemoveMember, "alice", "physics")}).ok());
  Status alice_submit;
  BOOST_TEST(wait_until(
      [&] {
        alice_submit = alice2.submit(sleeper("physics")).status();
        return alice_submit.code() == ErrorCode::PermissionDenied;
      },
      10s));
}

BOOST_AUTO_TEST_CASE(admin_actions_and_refusals_are_audited_and_only_admins_read_them) {
  Cluster c(site_options());
  Billing dana(c, "dana"), bob_billing(c, "bob");
  BOOST_REQUIRE(dana.edit(physics()).ok());
  auto alice = connect(c, "user:alice"), bob = connect(c, "user:bob"), dana_client = connect(c, "user:dana");
  BOOST_TEST(wait_until([&] { return alice.submit(sleeper("")).ok(); }, 10s));
  auto jobs = alice.submit(sleeper(""));
  BOOST_REQUIRE(jobs.ok());
  uint64_t id = jobs->job_ids.at(0);
  expect_denied(bob.cancel(id), "job owner", "user:bob");       // refused at the scheduler
  BOOST_TEST(dana_client.cancel(id).ok());                    // an admin acts on alice's job
  client::Budget budget;
  budget.account = "physics";
  budget.monthly_micros = 1'000'000;
  BOOST_TEST(dana_client.set_budget(budget).ok());
  expect_denied(bob_billing.audit().status(), "admins", "user:bob");

  auto find = [](const fb::AuditListT& l, const std::string& action, const std::string& principal, bool allowed) {
    for (auto& e : l.entries) {
      auto& r = *e->record;
      if (r.action == action && r.principal == principal && r.allowed == allowed) return &r;
    }
    return static_cast<fb::AuditRecordT*>(nullptr);
  };
  fb::AuditListT list;
  BOOST_TEST(wait_until(
      [&] {
        auto l = dana.audit();
        if (!l) return false;
        list = std::move(l).value();
        return find(list, "CancelJob", "user:dana", true) && find(list, "SetBudget", "user:dana", true) &&
               find(list, "CancelJob", "user:bob", false) && find(list, "QueryAudit", "user:bob", false);
      },
      10s));
  auto* cancel = find(list, "CancelJob", "user:dana", true);
  BOOST_REQUIRE(cancel);
  BOOST_TEST(cancel->service == "scheduler");
  BOOST_TEST(cancel->target == "cancel job " + std::to_string(id) + " of user:alice");
  auto* refused = find(list, "CancelJob", "user:bob", false);
  BOOST_REQUIRE(refused);
  BOOST_TEST(refused->message.find("job owner: user:bob may not cancel") != std::string::npos);
  BOOST_TEST(find(list, "EditDirectory", "user:dana", true));
  BOOST_TEST(find(list, "EditDirectory", "user:dana", true)->target.find("directory version 1") == 0u);
  // Newest first.
  for (size_t i = 1; i < list.entries.size(); ++i) {
    BOOST_TEST(list.entries[i - 1]->time_ns >= list.entries[i]->time_ns);
  }
  // Pages: one record at a time reaches the same records.
  size_t paged = 0;
  std::string before;
  do {
    auto page = dana.audit(false, 1, before);
    BOOST_REQUIRE(page.ok());
    paged += page->entries.size();
    before = page->next_before;
  } while (!before.empty() && paged < 1000);
  BOOST_TEST(paged >= list.entries.size());
}

BOOST_AUTO_TEST_CASE(ty_admin_keys_add_and_revoke_are_in_the_audit_trail_of_every_service_that_reloads_them) {
  Cluster c(site_options());
  Billing dana(c, "dana");
  // Each service, the node's agent and the bus forwarder (through billing)
  // reloaded the file and said so.
  const std::set<std::string> all{"billing", "broker", "bus", "metrics", "scheduler", "node-a"};
  auto recorded_by = [&](const std::string& target, const std::string& change) {
    std::set<std::string> services;
    auto l = dana.audit();
    if (!l) return services;
    for (auto& e : l->entries) {
      auto& r = *e->record;
      if (r.action == "Keyring" && r.allowed && r.target == target && r.message.rfind(change, 0) == 0) {
        services.insert(r.service);
      }
    }
    return services;
  };
  auto names = [](const std::set<std::string>& s) {
    std::string out;
    for (auto& x : s) out += (out.empty() ? "" : ", ") + x;
    return out;
  };
  auto added = c.ty({"admin", "keys", "add", c.keys_dir(), "user:erin"});
  BOOST_REQUIRE_MESSAGE(added.first == 0, added.second);
  std::set<std::string> authorized;
  BOOST_TEST(wait_until([&] { return (authorized = recorded_by("user:erin", "authorized (key ")) == all; }, 30s),
             "recorded by: " << names(authorized));
  auto revoked = c.ty({"admin", "keys", "revoke", c.keys_dir(), "user:bob"});
  BOOST_REQUIRE_MESSAGE(revoked.first == 0, revoked.second);
  std::set<std::string> revokes;
  BOOST_TEST(wait_until([&] { return (revokes = recorded_by("user:bob", "revoked in ")) == all; }, 30s),
             "recorded by: " << names(revokes));
}

BOOST_AUTO_TEST_CASE(a_flood_of_refusals_costs_a_bounded_trail_that_still_counts_every_one) {
  auto o = site_options();
  o.scheduler_sets = {"security.audit_refusals_per_s=5"};
  Cluster c(o);
  auto bob = connect(c, "user:bob");
  auto alice = connect(c, "user:alice");
  auto jobs = alice.submit(sleeper("anything"));
  BOOST_REQUIRE(jobs.ok());
  uint64_t id = jobs->job_ids.at(0);
  constexpr int kFlood = 300;
  for (int i = 0; i < kFlood; ++i) expect_denied(bob.hold(id), "job owner", "user:bob");
  // One more after the bucket refilled carries the count of what it dropped.
  std::this_thread::sleep_for(1500ms);
  expect_denied(bob.hold(id), "job owner", "user:bob");
  Billing dana(c, "dana");
  uint64_t records = 0, counted = 0;
  BOOST_TEST(wait_until(
      [&] {
        auto l = dana.audit(true);
        if (!l) return false;
        records = counted = 0;
        for (auto& e : l->entries) {
          if (e->record->action != "HoldJob") continue;
          ++records;
          counted += 1 + e->record->suppressed;
        }
        return counted == kFlood + 1;
      },
      10s));
  BOOST_TEST(counted == kFlood + 1u);
  BOOST_TEST(records < 80u);  // burst of 50, then 5 a second
}

BOOST_AUTO_TEST_CASE(a_runs_metrics_are_read_by_its_owner_its_coordinators_and_admins) {
  Cluster c(site_options());
  Billing dana_billing(c, "dana");
  BOOST_REQUIRE(dana_billing.edit(physics()).ok());
  auto alice = connect(c, "user:alice"), bob = connect(c, "user:bob"), carol = connect(c, "user:carol"),
       dana = connect(c, "user:dana");
  auto job = sleeper("physics");
  job.experiment = "sweep";
  job.command = {"sh", "-c", "echo '{\"step\": 1, \"loss\": 0.5}' >> \"$TY_METRICS_FILE\"; sleep 1"};
  Result<client::SubmitResult> sub = Status::internal("not yet");
  BOOST_TEST(wait_until([&] { return (sub = alice.submit(job)).ok(); }, 10s));
  BOOST_REQUIRE_MESSAGE(sub.ok(), sub.status().to_string());
  uint64_t id = sub->job_ids.at(0);
  BOOST_REQUIRE_MESSAGE(wait_until(
                            [&] {
                              auto m = alice.metrics(id);
                              return m.ok() && !m->metrics.empty();
                            },
                            30s),
                        c.logs());
  expect_denied(bob.metrics(id).status(), "job owner", "user:bob");
  expect_denied(bob.series(id, "loss").status(), "job owner", "user:bob");
  expect_denied(bob.compare("", {id}, "loss").status(), "job owner", "user:bob");
  BOOST_TEST(carol.series(id, "loss").ok());  // carol coordinates physics
  BOOST_TEST(dana.metrics(id).ok());          // an admin
  // olga's run joins the experiment (another account): each reads only their own.
  auto olga = connect(c, "user:olga");
  auto hers = job;
  hers.account = "other";
  auto olga_sub = olga.submit(hers);
  BOOST_REQUIRE_MESSAGE(olga_sub.ok(), olga_sub.status().to_string());
  BOOST_REQUIRE(wait_until(
      [&] {
        auto all = dana.compare("sweep", {}, "loss");
        return all.ok() && all->rows.size() == 2u;  // an admin reads both
      },
      30s));
  // An experiment's comparison shows the runs the caller may read.
  auto mine = alice.compare("sweep", {}, "loss");
  BOOST_REQUIRE(mine.ok());
  BOOST_REQUIRE(mine->rows.size() == 1u);
  BOOST_TEST(mine->rows[0]->job_id == id);
  auto olgas = olga.compare("sweep", {}, "loss");
  BOOST_REQUIRE(olgas.ok());
  BOOST_REQUIRE(olgas->rows.size() == 1u);
  BOOST_TEST(olgas->rows[0]->job_id == olga_sub->job_ids.at(0));
  BOOST_TEST((bob.compare("sweep", {}, "loss").status().code() == ErrorCode::NotFound));
}

BOOST_AUTO_TEST_CASE(ty_admin_imports_an_export_twice_without_change_and_lists_the_audit_trail) {
  auto o = site_options();
  o.site_sets.clear();  // the login user (who runs ty) is the cluster's admin
  Cluster c(o);
  std::string file = c.dir() + "/people.csv";
  std::ofstream(file) << "user,account,default,coordinator,roles\n"
                         "alice,physics,yes,no,\n"
                         "carol,physics,no,yes,operator\n";
  auto first = c.ty({"admin", "import", file});
  BOOST_REQUIRE_MESSAGE(first.first == 0, first.second);
  BOOST_TEST(first.second.find("directory version 1") != std::string::npos, first.second);
  auto again = c.ty({"admin", "import", file});
  BOOST_REQUIRE_MESSAGE(again.first == 0, again.second);
  BOOST_TEST(again.second.find("version 2") == std::string::npos, again.second);  // nothing changed

  auto users = c.ty({"admin", "user", "list", "--json"});
  BOOST_REQUIRE_MESSAGE(users.first == 0, users.second);
  auto j = nlohmann::json::parse(users.second);
  bool alice_default = false, carol_operator = false;
  for (auto& u : j) {
    if (u["name"] == "alice") alice_default = u["default_account"] == "physics";
    if (u["name"] == "carol") {
      for (auto& r : u["roles"]) carol_operator |= r == "operator";
    }
  }
  BOOST_TEST(alice_default, users.second);
  BOOST_TEST(carol_operator, users.second);

  // The services follow: bob is outside physics, carol drains nodes.
  auto bob = connect(c, "user:bob"), carol = connect(c, "user:carol");
  Status refused;
  BOOST_TEST(wait_until(
      [&] {
        refused = bob.submit(sleeper("physics")).status();
        return refused.code() == ErrorCode::PermissionDenied;
      },
      10s));
  BOOST_TEST(wait_until([&] { return carol.drain("node-a", "disk").ok(); }, 10s));

  // ty cloud speaks CURVE with the user's key too; pausing is audited.
  auto cloud = c.ty({"cloud", "status", "--json"});
  BOOST_REQUIRE_MESSAGE(cloud.first == 0, cloud.second);
  BOOST_TEST(nlohmann::json::parse(cloud.second).contains("pools"));
  auto paused = c.ty({"cloud", "pause", "--reason", "budget review"});
  BOOST_REQUIRE_MESSAGE(paused.first == 0, paused.second);

  // The trail as ty shows it.
  auto trail = c.ty({"admin", "audit", "--json"});
  BOOST_REQUIRE_MESSAGE(trail.first == 0, trail.second);
  auto t = nlohmann::json::parse(trail.second);
  bool import_seen = false, drain_seen = false, refusal_seen = false, pause_seen = false;
  for (auto& e : t["entries"]) {
    import_seen |= e["action"] == "EditDirectory" && e["allowed"] == true;
    drain_seen |= e["action"] == "DrainNode" && e["principal"] == "user:carol";
    refusal_seen |= e["action"] == "SubmitJob" && e["principal"] == "user:bob" && e["allowed"] == false;
    pause_seen |= e["action"] == "CloudPause" && e["target"] == "pause every pool";
  }
  BOOST_TEST(import_seen, trail.second);
  BOOST_TEST(drain_seen, trail.second);
  BOOST_TEST(refusal_seen, trail.second);
  BOOST_TEST(pause_seen, trail.second);
}

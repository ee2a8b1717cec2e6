// Trust, with real processes and real keys (made by `ty admin keys init`):
// CURVE on every endpoint, revocation, the forwarder's stream check and
// the authorization rules, each allowed and refused.
#define BOOST_TEST_MODULE security
#include <boost/test/unit_test.hpp>

#include <sys/stat.h>

#include <set>
#include <thread>

#include "bus/event.h"
#include "cluster.h"
#include "cluster_client.h"
#include "rpc/client.h"
#include "security/site.h"
#include "trainyard/client.h"
#include "trainyard/fb/bus_generated.h"

using namespace std::chrono_literals;
using namespace trainyard;
using trainyard::testing::Cluster;
using trainyard::testing::ClusterOptions;
using trainyard::testing::connect;
using trainyard::testing::wait_until;

namespace {

// The test rate card's directory, for every cluster of this test.
const testing::TempDir& scratch() {
  static testing::TempDir dir;
  return dir;
}

ClusterOptions site_options() {
  ClusterOptions o;
  o.agents = {{"node-a"}};
  o.with_test_billing(scratch().path());
  o.metrics = true;
  o.users = {"alice", "bob", "carol", "dana", "olga", "mallory"};
  o.site_sets = {"security.roles.admins=[\"dana\"]", "security.roles.operators=[\"olga\"]",
                 "security.accounts.vision.members=[\"alice\", \"bob\"]",
                 "security.accounts.vision.coordinators=[\"carol\"]"};
  return o;
}

// A principal's identity, loaded from the cluster's keys (not installed).
std::unique_ptr<security::Site> identity(const Cluster& c, const std::string& key_file) {
  security::SecurityOptions o;
  o.key_file = key_file;
  o.authorized_keys = c.keys_dir() + "/authorized_keys";
  auto s = security::Site::load(o);
  BOOST_REQUIRE_MESSAGE(s.ok(), s.status().to_string());
  return std::move(s).value();
}

Result<rpc::Reply> ping(zmq::context_t& ctx, const std::string& endpoint, const std::string& server,
                        const security::Site* site) {
  rpc::ClientOptions o{800, 1, "", server, site};
  rpc::Client cl(ctx, "probe", endpoint, o);
  return cl.call(fb::RequestBody::Ping);
}

fb::JobSpecT sleeper(const std::string& account = "vision") {
  fb::JobSpecT s;
  s.name = "sleeper";
  s.user = "whoever";  // the key, not this field, says who submits
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

std::string heartbeat(const std::string& stream, const std::string& endpoint) {
  flatbuffers::FlatBufferBuilder b;
  auto hb = fb::CreateStreamHeartbeatDirect(b, stream.c_str(), 1, 1, endpoint.c_str());
  auto env = fb::CreateEnvelopeDirect(b, stream.c_str(), 0, 1, fb::Payload::StreamHeartbeat, hb.Union());
  fb::FinishEnvelopeBuffer(b, env);
  return std::string(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize());
}

}  // namespace

BOOST_AUTO_TEST_CASE(every_endpoint_refuses_plaintext_and_unknown_keys_and_serves_known_ones) {
  Cluster c(site_options());
  zmq::context_t ctx;
  // mallory's key exists but the site never authorized it.
  std::string mallory_key = c.dir() + "/mallory.key";
  BOOST_REQUIRE(security::write_identity(mallory_key, {"user:mallory", security::generate_keypair()}).ok());
  auto mallory = identity(c, mallory_key);
  auto alice = identity(c, c.user_key("alice"));
  for (auto& service : std::vector<std::pair<std::string, std::string>>{
           {"scheduler", c.scheduler}, {"broker", c.broker}, {"metrics", c.metrics}, {"billing", c.billing}}) {
    const std::string& name = service.first;
    const std::string& ep = service.second;
    BOOST_TEST_CONTEXT(name) {
      BOOST_TEST(ping(ctx, ep, "service:" + name, alice.get()).ok());
      BOOST_TEST((ping(ctx, ep, "service:" + name, nullptr).status().code() == ErrorCode::Unavailable));
      BOOST_TEST((ping(ctx, ep, "service:" + name, mallory.get()).status().code() == ErrorCode::Unavailable));
    }
  }
  // A client that dials the wrong server key never talks to an impostor.
  BOOST_TEST((ping(ctx, c.scheduler, "service:broker", alice.get()).status().code() == ErrorCode::Unavailable));
}

BOOST_AUTO_TEST_CASE(a_revoked_key_stops_working_within_seconds_on_an_open_connection) {
  Cluster c(site_options());
  auto bob = connect(c, "user:bob");
  BOOST_REQUIRE(bob.submit(sleeper()).ok());
  auto revoked = c.ty({"admin", "keys", "revoke", c.keys_dir(), "user:bob"});
  BOOST_REQUIRE_MESSAGE(revoked.first == 0, revoked.second);
  Status last;
  BOOST_TEST(wait_until(
      [&] {
        last = bob.ping("scheduler").status();
        return last.code() == ErrorCode::PermissionDenied;
      },
      5s));
  BOOST_TEST(last.message().find("no longer authorized") != std::string::npos);
  auto alice = connect(c, "user:alice");
  BOOST_TEST(alice.ping("scheduler").ok());  // the others are untouched
}

BOOST_AUTO_TEST_CASE(a_forged_heartbeat_on_another_principals_stream_never_reaches_a_subscriber) {
  Cluster c(site_options());
  // A stream heartbeats once it has events: give the scheduler's one.
  BOOST_REQUIRE(connect(c, "user:alice").submit(sleeper()).ok());
  zmq::context_t ctx;
  auto alice = identity(c, c.user_key("alice"));
  auto agent = identity(c, c.keys_dir() + "/agent-node-a.key");
  zmq::socket_t sub(ctx, zmq::socket_type::sub);
  BOOST_REQUIRE(security::secure_client(sub, bus::kBusPrincipal, alice.get()).ok());
  sub.set(zmq::sockopt::subscribe, "ops.stream.job.");
  sub.connect(c.bus_backend);
  std::vector<zmq::socket_t> forgers;
  for (auto* who : {alice.get(), agent.get()}) {
    zmq::socket_t pub(ctx, zmq::socket_type::pub);
    BOOST_REQUIRE(security::secure_client(pub, bus::kBusPrincipal, who).ok());
    pub.connect(c.bus_frontend);
    forgers.push_back(std::move(pub));
  }
  std::string forged = heartbeat("job.@scheduler", "tcp://127.0.0.1:1");
  int genuine = 0, poisoned = 0;
  auto until = std::chrono::steady_clock::now() + 3500ms;
  while (std::chrono::steady_clock::now() < until) {
    for (auto& f : forgers) {
      f.send(zmq::buffer(std::string("ops.stream.job.@scheduler")), zmq::send_flags::sndmore);
      f.send(zmq::buffer(forged), zmq::send_flags::none);
    }
    zmq::message_t topic, body;
    sub.set(zmq::sockopt::rcvtimeo, 100);
    while (sub.recv(topic)) {
      if (!topic.more()) continue;
      (void)sub.recv(body);
      auto* env = flatbuffers::GetRoot<fb::Envelope>(body.data());
      auto* hb = env->payload_as_StreamHeartbeat();
      if (hb && hb->replay_endpoint() && hb->replay_endpoint()->str() == "tcp://127.0.0.1:1") {
        ++poisoned;
      } else if (hb) {
        ++genuine;
      }
    }
  }
  BOOST_TEST(genuine >= 1);  // the scheduler's own heartbeats get through
  BOOST_TEST(poisoned == 0);

  // The forwarder keeps nothing, so it hands its refusals to billing: each
  // forger is in the audit trail (one record a second, the rest counted).
  auto dana = identity(c, c.user_key("dana"));
  rpc::Client billing(ctx, "billing", c.billing, rpc::ClientOptions{2000, 1, "", "service:billing", dana.get()});
  std::set<std::string> forgers_seen;
  uint64_t counted = 0;
  BOOST_TEST(wait_until(
      [&] {
        auto r = billing.call(fb::RequestBody::QueryAudit, [](flatbuffers::FlatBufferBuilder& b) {
          fb::QueryAuditT q;
          q.refused_only = true;
          q.limit = 1000;
          return fb::QueryAudit::Pack(b, &q).Union();
        });
        if (!r) return false;
        auto* list = r->body<fb::AuditList>();
        forgers_seen.clear();
        counted = 0;
        if (!list || !list->entries()) return false;
        auto text = [](const flatbuffers::String* x) { return x ? x->str() : std::string(); };
        for (auto* e : *list->entries()) {
          auto* rec = e ? e->record() : nullptr;
          if (!rec || text(rec->service()) != "bus" || text(rec->action()) != "Publish" ||
              text(rec->target()) != "job.@scheduler") {
            continue;
          }
          forgers_seen.insert(text(rec->principal()));
          counted += 1 + rec->suppressed();
        }
        return forgers_seen.size() == 2;
      },
      10s));
  BOOST_TEST(forgers_seen == (std::set<std::string>{"user:alice", "agent:node-a"}), c.logs());
  BOOST_TEST(counted >= 2u);
  // Nobody but a forwarder may record for it.
  auto forged_record = billing.call(fb::RequestBody::RecordAudit, [](flatbuffers::FlatBufferBuilder& b) {
    fb::RecordAuditT q;
    return fb::RecordAudit::Pack(b, &q).Union();
  });
  expect_denied(forged_record.status(), "bus forwarders", "user:dana");
}

BOOST_AUTO_TEST_CASE(job_rules_owner_coordinator_admin_and_the_queue_line) {
  Cluster c(site_options());
  auto alice = connect(c, "user:alice"), bob = connect(c, "user:bob"), carol = connect(c, "user:carol"),
       dana = connect(c, "user:dana"), olga = connect(c, "user:olga");
  auto sub = alice.submit(sleeper());
  BOOST_REQUIRE_MESSAGE(sub.ok(), sub.status().to_string());
  uint64_t id = sub->job_ids.at(0);
  auto mine = alice.status(id);
  BOOST_REQUIRE(mine.ok());
  BOOST_TEST(mine->spec->user == "alice");  // from the key, not from the spec
  BOOST_TEST(!mine->spec->command.empty());
  // Everyone sees the queue line; only the owner's side sees what it runs.
  auto theirs = bob.status(id);
  BOOST_REQUIRE(theirs.ok());
  BOOST_TEST(theirs->spec->user == "alice");
  BOOST_TEST(theirs->spec->command.empty());
  BOOST_TEST(theirs->spec->env.empty());

  // A second job that waits (both GPUs of the node): holds apply to it.
  auto both = sleeper();
  both.gpus_per_node = 2;
  auto waiting = alice.submit(both);
  BOOST_REQUIRE(waiting.ok());
  uint64_t queued = waiting->job_ids.at(0);
  expect_denied(bob.hold(queued), "job owner", "user:bob");
  expect_denied(bob.cancel(id), "job owner", "user:bob");
  auto held = carol.hold(queued);  // coordinator of vision
  BOOST_TEST(held.ok(), held.to_string());
  auto released = carol.release(queued);
  BOOST_TEST(released.ok(), released.to_string());
  BOOST_TEST(!carol.status(id)->spec->command.empty());
  expect_denied(olga.submit(sleeper()).status(), "account membership", "user:olga");
  BOOST_TEST(olga.submit(sleeper("open-account")).ok());  // an account the directory does not list
  BOOST_TEST(dana.cancel(id).ok());     // admin
}

BOOST_AUTO_TEST_CASE(node_lease_and_billing_rules) {
  Cluster c(site_options());
  auto alice = connect(c, "user:alice"), bob = connect(c, "user:bob"), dana = connect(c, "user:dana"),
       olga = connect(c, "user:olga");
  expect_denied(bob.drain("node-a", "mine now"), "operators", "user:bob");
  // (node-a may not have registered yet on a loaded machine: NotFound until it has.)
  Status drained;
  wait_until(
      [&] {
        drained = olga.drain("node-a", "maintenance");
        return drained.code() != ErrorCode::NotFound;
      },
      10s);
  BOOST_TEST(drained.ok(), drained.to_string());
  BOOST_TEST(olga.undrain("node-a").ok());

  zmq::context_t ctx;
  auto key = identity(c, c.user_key("alice"));
  rpc::Client broker(ctx, "broker", c.broker, rpc::ClientOptions{2000, 1, "", "service:broker", key.get()});
  auto alloc = broker.call(fb::RequestBody::Allocate, [](flatbuffers::FlatBufferBuilder& b) {
    return fb::CreateAllocateDirect(b, 1, 1, "node-a").Union();
  });
  expect_denied(alloc.status(), "schedulers", "user:alice");

  client::Budget budget{"vision", 1'000'000, 80, false, false};
  expect_denied(bob.set_budget(budget), "admins", "user:bob");
  BOOST_TEST(dana.set_budget(budget).ok());
  client::UsageQuery q;
  q.account = "vision";
  q.user = "alice";
  expect_denied(bob.usage(q).status(), "own usage", "user:bob");
  BOOST_TEST(alice.usage(q).ok());
  q.user.clear();
  BOOST_TEST(bob.usage(q).ok());  // a member reads their own lines
}

BOOST_AUTO_TEST_CASE(a_service_refuses_to_start_with_a_key_others_can_read) {
  Cluster c(site_options());
  std::string key = c.keys_dir() + "/service-metrics.key";
  ::chmod(key.c_str(), 0644);
  c.kill9("metrics");
  auto result = trainyard::testing::run({trainyard::testing::bin("trainyard-metrics-aggregator"), "--set",
                                            "security.keys_dir=" + c.keys_dir(), "--set",
                                            "metrics.data=" + c.dir() + "/m2.db", "--set",
                                            "metrics.endpoint=tcp://127.0.0.1:*"},
                                           10s);
  BOOST_TEST(result.first == 2);
  BOOST_TEST(result.second.find("bad permissions 0644") != std::string::npos, result.second);
}

BOOST_AUTO_TEST_CASE(a_users_key_subscribes_to_the_queue_line_only_never_to_whole_specs) {
  Cluster c(site_options());
  zmq::context_t ctx;
  auto alice = identity(c, c.user_key("alice"));
  auto gateway = identity(c, c.keys_dir() + "/service-gateway.key");
  auto subscriber = [&](const security::Site* who, const std::string& prefix) {
    zmq::socket_t sub(ctx, zmq::socket_type::sub);
    BOOST_REQUIRE(security::secure_client(sub, bus::kBusPrincipal, who).ok());
    sub.set(zmq::sockopt::subscribe, prefix);
    sub.set(zmq::sockopt::rcvtimeo, 100);
    sub.connect(c.bus_backend);
    return sub;
  };
  auto everything = subscriber(alice.get(), "job.");  // refused by the forwarder
  auto queue_line = subscriber(alice.get(), "job.state");
  auto service = subscriber(gateway.get(), "job.");
  std::this_thread::sleep_for(500ms);  // subscriptions reach the forwarder
  auto job = sleeper();
  job.env.push_back(std::make_unique<fb::KeyValueT>());
  job.env.back()->key = "WANDB_API_KEY";
  job.env.back()->value = "secret";
  BOOST_REQUIRE(connect(c, "user:alice").submit(job).ok());
  auto topics = [](zmq::socket_t& s) {
    std::set<std::string> seen;
    auto until = std::chrono::steady_clock::now() + 2s;
    while (std::chrono::steady_clock::now() < until) {
      zmq::message_t topic, body;
      if (!s.recv(topic)) continue;
      if (topic.more()) (void)s.recv(body);
      seen.insert(topic.to_string());
    }
    return seen;
  };
  auto svc = topics(service);
  BOOST_TEST(svc.count("job.submitted") == 1u);
  BOOST_TEST(svc.count("job.state") == 1u);
  BOOST_TEST(topics(everything).empty());
  auto line = topics(queue_line);
  BOOST_TEST(line.count("job.state") == 1u);
  BOOST_TEST(line.count("job.submitted") == 0u);
}

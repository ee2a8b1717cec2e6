// Hostile messages thrown at a running Trainyard: a body-less request of
// every type to every service, forged and malformed bus events, 100 MB
// frames. Afterwards every service still answers, restarts cleanly from what
// it stored, and a normal job runs and is charged exactly.
#define BOOST_TEST_MODULE wire_hostile
#include <boost/test/unit_test.hpp>

#include <fstream>
#include <thread>

#include <zmq.hpp>

#include "cluster.h"
#include "cluster_client.h"
#include "security/site.h"
#include "trainyard/client.h"
#include "trainyard/fb/bus_generated.h"
#include "trainyard/fb/reply_generated.h"
#include "trainyard/fb/request_generated.h"

using namespace std::chrono_literals;
using namespace trainyard;
using trainyard::testing::Cluster;
using trainyard::testing::ClusterOptions;
using trainyard::testing::connect;
using trainyard::testing::wait_until;

namespace {

const std::vector<std::string> kServices = {"scheduler", "broker", "metrics", "billing"};

ClusterOptions full_cluster(const std::string& dir) {
  ClusterOptions o;
  o.agents = {{"node-a"}};
  o.metrics = true;
  o.with_test_billing(dir);
  return o;
}

// One request/reply exchange on a raw DEALER; nullopt when nothing answers.
// A peer of the cluster: a user with a real key (alice's), hostile all
// the same. An endpoint comes with the principal whose key it must hold.
struct Peer {
  std::string endpoint, server;
};
std::unique_ptr<security::Site> g_alice;

void load_alice(const Cluster& c) {
  security::SecurityOptions o;
  o.key_file = c.user_key("alice");
  o.authorized_keys = c.keys_dir() + "/authorized_keys";
  auto s = security::Site::load(o);
  BOOST_REQUIRE_MESSAGE(s.ok(), s.status().to_string());
  g_alice = std::move(s).value();
}

std::optional<std::string> exchange(zmq::context_t& ctx, const Peer& peer, const void* data, size_t size,
                                    std::chrono::milliseconds wait = 3s) {
  zmq::socket_t s(ctx, zmq::socket_type::dealer);
  s.set(zmq::sockopt::linger, 0);
  BOOST_REQUIRE(security::secure_client(s, peer.server, g_alice.get()).ok());
  s.connect(peer.endpoint);
  s.send(zmq::const_buffer(data, size), zmq::send_flags::none);
  zmq::pollitem_t item{static_cast<void*>(s), 0, ZMQ_POLLIN, 0};
  zmq::poll(&item, 1, wait);
  if (!(item.revents & ZMQ_POLLIN)) return std::nullopt;
  zmq::message_t m;
  (void)s.recv(m);
  return m.to_string();
}

std::string bodyless_request(fb::RequestBody type) {
  flatbuffers::FlatBufferBuilder b;
  fb::RequestBuilder rb(b);
  rb.add_id(42);
  rb.add_body_type(type);
  fb::FinishRequestBuffer(b, rb.Finish());
  return {reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize()};
}

// Every service of the cluster answers a Ping.
bool all_answer(client::Client& cl) {
  for (auto& s : kServices) {
    auto p = cl.ping(s);
    if (!p.ok()) {
      BOOST_TEST_MESSAGE(s << " does not answer: " << p.status().to_string());
      return false;
    }
  }
  return true;
}

std::vector<Peer> endpoints(Cluster& c, client::Client& cl) {
  load_alice(c);
  std::vector<Peer> out = {{c.scheduler, "service:scheduler"},
                           {c.broker, "service:broker"},
                           {c.metrics, "service:metrics"},
                           {c.billing, "service:billing"}};
  auto nodes = cl.nodes();
  BOOST_REQUIRE_MESSAGE(nodes.ok() && nodes->size() == 1, "the agent registered");
  out.push_back({nodes->at(0).node->agent_endpoint, "agent:" + nodes->at(0).node->name});  // the agent's ROUTER
  return out;
}

// A normal job after the attack: it runs, and billing charges exactly its
// GPU time (one micro-EUR per GPU-ms at 3.60/h).
void a_normal_job_runs_and_is_billed(Cluster& c, client::Client& cl) {
  fb::JobSpecT s;
  s.name = "after";
  s.user = "alice";
  s.account = "vision";
  s.command = {"sleep", "0.5"};
  s.gpus_per_node = 1;
  s.time_limit_s = 60;
  auto sub = cl.submit(s);
  BOOST_REQUIRE_MESSAGE(sub.ok(), sub.status().to_string());
  auto done = cl.wait({sub->job_ids[0]}, 60s);
  BOOST_REQUIRE(done.ok());
  BOOST_REQUIRE_EQUAL(fb::EnumNameJobState(done->at(0).state), std::string("Succeeded"));
  client::UsageQuery q;
  q.job_id = sub->job_ids[0];
  q.group_by = "job";
  BOOST_CHECK_MESSAGE(wait_until(
                          [&] {
                            auto r = cl.usage(q);
                            return r.ok() && !r->rows.empty() && r->rows[0]->gpu_ms >= 500 &&
                                   r->rows[0]->cost_micros == static_cast<int64_t>(r->rows[0]->gpu_ms);
                          },
                          30s),
                      c.logs());
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_bodyless_request_of_every_type_is_refused_by_every_service) {
  testing::TempDir scratch;
  Cluster c(full_cluster(scratch.path()));
  auto cl = connect(c);
  zmq::context_t ctx;
  for (const auto& ep : endpoints(c, cl)) {
    for (auto type : fb::EnumValuesRequestBody()) {
      if (type == fb::RequestBody::NONE) continue;
      auto req = bodyless_request(type);
      auto reply = exchange(ctx, ep, req.data(), req.size());
      BOOST_REQUIRE_MESSAGE(reply, ep.endpoint << " did not answer a body-less " << fb::EnumNameRequestBody(type) << "\n"
                                      << c.logs());
      auto* r = fb::GetReply(reply->data());
      BOOST_CHECK_EQUAL(r->id(), 42u);
      BOOST_CHECK(r->code() == fb::ErrorCode::InvalidArgument);
      BOOST_CHECK_EQUAL(r->message()->str(),
                        std::string("Request.body: the ") + fb::EnumNameRequestBody(type) + " body is absent");
    }
  }
  BOOST_CHECK(all_answer(cl));
  a_normal_job_runs_and_is_billed(c, cl);
}

BOOST_AUTO_TEST_CASE(a_100_mb_frame_is_dropped_by_every_socket_before_it_is_read) {
  testing::TempDir scratch;
  Cluster c(full_cluster(scratch.path()));
  auto cl = connect(c);
  zmq::context_t ctx;
  std::string huge(100u << 20, 'x');
  for (const auto& ep : endpoints(c, cl)) {
    BOOST_CHECK_MESSAGE(!exchange(ctx, ep, huge.data(), huge.size(), 1s), ep.endpoint << " answered a 100 MB frame");
  }
  zmq::socket_t pub(ctx, zmq::socket_type::pub);
  pub.set(zmq::sockopt::linger, 0);
  pub.connect(c.bus_frontend);
  std::this_thread::sleep_for(300ms);
  pub.send(zmq::str_buffer("job.state"), zmq::send_flags::sndmore);
  pub.send(zmq::buffer(huge), zmq::send_flags::none);
  BOOST_CHECK(all_answer(cl));
  a_normal_job_runs_and_is_billed(c, cl);
}

namespace {

// An Envelope on `stream` carrying `payload` (absent when the builder returns 0).
template <typename F>
std::string envelope(const std::string& stream, uint64_t seq, fb::Payload type, F payload) {
  flatbuffers::FlatBufferBuilder b;
  auto s = b.CreateString(stream);
  flatbuffers::Offset<void> p = payload(b);
  fb::EnvelopeBuilder eb(b);
  eb.add_stream(s);
  eb.add_seq(seq);
  eb.add_time_ns(1);
  eb.add_payload_type(type);
  if (!p.IsNull()) eb.add_payload(p);
  fb::FinishEnvelopeBuffer(b, eb.Finish());
  return {reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize()};
}

flatbuffers::Offset<void> none(flatbuffers::FlatBufferBuilder&) { return {}; }

}  // namespace

BOOST_AUTO_TEST_CASE(forged_and_malformed_bus_events_change_nothing_and_survive_restarts) {
  testing::TempDir scratch;
  Cluster c(full_cluster(scratch.path()));
  auto cl = connect(c);
  zmq::context_t ctx;
  zmq::socket_t pub(ctx, zmq::socket_type::pub);
  pub.set(zmq::sockopt::linger, 1000);
  pub.connect(c.bus_frontend);
  std::this_thread::sleep_for(500ms);  // the forwarder learns our subscriptions' path
  auto send = [&](const std::string& topic, const std::string& env) {
    pub.send(zmq::buffer(topic), zmq::send_flags::sndmore);
    pub.send(zmq::buffer(env), zmq::send_flags::none);
  };
  // Every family a service subscribes to, on a stream of our own.
  const std::vector<std::pair<std::string, std::string>> families = {
      {"job.", "job.@evil"}, {"run.", "run.@evil"}, {"usage.", "usage.@evil"}, {"metric.", "metric.@evil"},
      {"lease.node-a.", "lease.node-a.@evil"}, {"node.", "node.@evil"}, {"account.", "account.@evil"}};
  for (int round = 0; round < 3; ++round) {
    for (const auto& family : families) {
      const std::string& prefix = family.first;
      const std::string& stream = family.second;  // (captured below: not a structured binding, for clang 14)
      std::string hb_topic = "ops.stream." + stream;
      // A heartbeat with no payload, then one advertising a bad endpoint.
      send(hb_topic, envelope(stream, 0, fb::Payload::StreamHeartbeat, none));
      send(hb_topic, envelope(stream, 0, fb::Payload::StreamHeartbeat, [&](flatbuffers::FlatBufferBuilder& b) {
             return fb::CreateStreamHeartbeatDirect(b, stream.c_str(), 5, 1, "bogus://nowhere").Union();
           }));
      // Events of every kind with their payload absent.
      for (auto type : fb::EnumValuesPayload()) {
        if (type == fb::Payload::NONE) continue;
        send(prefix + "x", envelope(stream, 1, type, none));
      }
    }
    // Enums out of range where they decide something.
    send("run.finished", envelope("run.@evil", 1, fb::Payload::RunFinished, [](flatbuffers::FlatBufferBuilder& b) {
           return fb::CreateRunFinished(b, 1, 1, 0, 0, static_cast<fb::RunOutcome>(200)).Union();
         }));
    send("job.state", envelope("job.@evil", 1, fb::Payload::JobStateChanged, [](flatbuffers::FlatBufferBuilder& b) {
           return fb::CreateJobStateChanged(b, 1, static_cast<fb::JobState>(77), static_cast<fb::JobState>(99)).Union();
         }));
    std::this_thread::sleep_for(100ms);
  }
  std::this_thread::sleep_for(500ms);
  BOOST_REQUIRE_MESSAGE(all_answer(cl), c.logs());
  for (const auto& name : std::vector<std::string>{"scheduler", "broker", "metrics", "billing", "node-a"})
    BOOST_CHECK_MESSAGE(c.process(name).running(), name << " died\n" << c.logs());
  // Nothing bad was stored: each restarts from its RocksDB and carries on.
  for (const auto& name : std::vector<std::string>{"scheduler", "broker", "metrics", "billing", "node-a"}) {
    c.kill9(name);
    c.start(name);
  }
  BOOST_REQUIRE_MESSAGE(wait_until([&] { return all_answer(cl); }, 20s), c.logs());
  a_normal_job_runs_and_is_billed(c, cl);
}

// The durable bus contract, tested with real processes: a forwarder
// (trainyard-bus), publishers and subscribers (trainyard-bus-peer), real
// RocksDB and real sockets on loopback, and SIGKILL where it hurts.
#define BOOST_TEST_MODULE bus
#include <boost/test/unit_test.hpp>

#include <signal.h>

#include <thread>

#include <flatbuffers/flatbuffers.h>
#include <zmq.hpp>

#include "process.h"
#include "trainyard/fb/bus_generated.h"
#include "trainyard/fb/request_generated.h"
#include "rpc/client.h"

using namespace std::chrono_literals;
using trainyard::testing::bin;
using trainyard::testing::BusProcess;
using trainyard::testing::start_bus;
using trainyard::testing::Process;
using trainyard::testing::TempDir;
using trainyard::testing::wait_json;
using trainyard::testing::wait_until;
using trainyard::testing::read_json;
using nlohmann::json;

namespace {

// The checksum a subscriber must reach after applying events 1..n in order.
uint64_t expected_checksum(uint64_t n) {
  uint64_t sum = 0;
  for (uint64_t i = 1; i <= n; ++i) sum = sum * 1099511628211ull ^ (i * 2654435761u + 7);
  return sum;
}

struct Forwarder {
  Forwarder(const TempDir& dir, const std::string& name, const std::string& frontend = "tcp://127.0.0.1:*",
            const std::string& backend = "tcp://127.0.0.1:*", int hwm = 0)
      : bus(start_bus(dir.path(), {.name = name,
                                   .frontend = frontend,
                                   .backend = backend,
                                   .extra = {"--log-level", "warn", "--set",
                                             "bus.hwm=" + std::to_string(hwm > 0 ? hwm : 1000000)}})),
        proc(*bus.process),
        front(bus.frontend),
        back(bus.backend) {}
  BusProcess bus;
  Process& proc;
  std::string front, back;
};

std::unique_ptr<Process> publisher(const TempDir& dir, const std::string& name, const std::string& bus, uint64_t count,
                                   std::vector<std::string> extra = {}) {
  std::vector<std::string> argv{bin("trainyard-bus-peer"), "publish", "--data", dir / (name + ".db"), "--bus", bus,
                                "--count", std::to_string(count), "--info", dir / (name + ".json")};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return std::make_unique<Process>(argv, dir / (name + ".log"));
}

std::unique_ptr<Process> subscriber(const TempDir& dir, const std::string& name, const std::string& bus, uint64_t until,
                                    std::vector<std::string> extra = {}) {
  std::vector<std::string> argv{bin("trainyard-bus-peer"), "subscribe", "--data", dir / (name + ".db"), "--bus", bus,
                                "--until", std::to_string(until), "--info", dir / (name + ".json")};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return std::make_unique<Process>(argv, dir / (name + ".log"));
}

// Waits for the subscriber to exit having applied `n` events, and checks its
// state is exactly the fold of events 1..n.
json expect_exactly_once(Process& sub, const TempDir& dir, const std::string& name, uint64_t n,
                         std::chrono::seconds timeout = 60s) {
  auto rc = sub.wait(timeout);
  auto info = read_json(dir / (name + ".json")).value_or(json::object());
  BOOST_REQUIRE_MESSAGE(rc.has_value(), "subscriber did not finish; last state " + info.dump() + "\n" + sub.log());
  BOOST_CHECK_EQUAL(*rc, 0);
  BOOST_CHECK_EQUAL(info["count"].get<uint64_t>(), n);
  BOOST_CHECK_EQUAL(info["checksum"].get<uint64_t>(), expected_checksum(n));
  return info;
}

}  // namespace

BOOST_AUTO_TEST_CASE(events_arrive_in_order_exactly_once_and_duplicates_are_skipped) {
  TempDir dir;
  // Two forwarders, as in production: every event arrives twice.
  Forwarder a(dir, "fwd-a"), b(dir, "fwd-b");
  auto sub = subscriber(dir, "sub", a.back + "," + b.back, 5000);
  auto pub = publisher(dir, "pub", a.front + "," + b.front, 5000, {"--batch", "50", "--rate", "20000"});
  auto info = expect_exactly_once(*sub, dir, "sub", 5000);
  BOOST_CHECK_GT(info["duplicates"].get<uint64_t>(), 1000u);
}

BOOST_AUTO_TEST_CASE(a_gap_is_filled_by_replay_when_the_subscriber_falls_behind) {
  TempDir dir;
  // A forwarder with a small queue and a slow subscriber: ZeroMQ drops
  // what does not fit, as it would under load in production.
  Forwarder f(dir, "fwd", "tcp://127.0.0.1:*", "tcp://127.0.0.1:*", 100);
  auto sub = subscriber(dir, "sub", f.back, 20000, {"--rcvhwm", "50", "--apply-delay-us", "20"});
  auto pub = publisher(dir, "pub", f.front, 20000, {"--batch", "1000"});
  auto info = expect_exactly_once(*sub, dir, "sub", 20000);
  BOOST_CHECK_GT(info["gaps"].get<uint64_t>(), 0u);
  BOOST_CHECK_GT(info["replayed"].get<uint64_t>(), 0u);
}

BOOST_AUTO_TEST_CASE(a_subscriber_joining_mid_stream_replays_what_it_missed_while_events_flow) {
  TempDir dir;
  Forwarder f(dir, "fwd");
  auto pub = publisher(dir, "pub", f.front, 30000, {"--batch", "100", "--rate", "20000"});
  wait_json(dir / "pub.json", 30s, [](const json& j) { return j["published"].get<uint64_t>() >= 5000; });
  auto sub = subscriber(dir, "sub", f.back, 30000);
  auto info = expect_exactly_once(*sub, dir, "sub", 30000);
  BOOST_CHECK_GT(info["gaps"].get<uint64_t>(), 0u);
  BOOST_CHECK_GE(info["replayed"].get<uint64_t>(), 5000u);
}

BOOST_AUTO_TEST_CASE(a_subscriber_started_late_catches_up_from_the_beginning) {
  TempDir dir;
  Forwarder f(dir, "fwd");
  auto pub = publisher(dir, "pub", f.front, 10000, {"--batch", "500"});
  wait_json(dir / "pub.json", 30s, [](const json& j) { return j["published"].get<uint64_t>() >= 10000; });
  auto sub = subscriber(dir, "sub", f.back, 10000);
  auto info = expect_exactly_once(*sub, dir, "sub", 10000);
  BOOST_CHECK_EQUAL(info["snapshots"].get<uint64_t>(), 0u);
  BOOST_CHECK_GE(info["replayed"].get<uint64_t>(), 9000u);
}

BOOST_AUTO_TEST_CASE(replay_sockets_are_closed_when_unused_so_new_publishers_past_the_limit_are_replayed) {
  // Every rented machine's agent has a replay endpoint of its own: over
  // months a subscriber meets far more than it may hold sockets for. Here
  // it may hold one: two publishers it missed are replayed one after the
  // other, the first socket closed for the second.
  TempDir dir;
  Forwarder f(dir, "fwd");
  auto a = publisher(dir, "pub-a", f.front, 3000, {"--instance", "a", "--batch", "500"});
  auto b = publisher(dir, "pub-b", f.front, 3000, {"--instance", "b", "--batch", "500"});
  for (auto name : {"pub-a", "pub-b"}) {
    wait_json(dir / (std::string(name) + ".json"), 30s,
              [](const json& j) { return j["published"].get<uint64_t>() >= 3000; });
  }
  auto sub = subscriber(dir, "sub", f.back, 6000, {"--max-replay-endpoints", "1"});
  auto rc = sub->wait(60s);
  auto info = read_json(dir / "sub.json").value_or(json::object());
  BOOST_REQUIRE_MESSAGE(rc.has_value(), "the subscriber did not get both streams: " << info.dump() << "\n"
                                                                                    << sub->log());
  BOOST_CHECK_EQUAL(info["count"].get<uint64_t>(), 6000u);
  BOOST_CHECK_GE(info["replayed"].get<uint64_t>(), 5000u);
  BOOST_CHECK_GE(info["replay_sockets_closed"].get<uint64_t>(), 1u);
  BOOST_CHECK_LE(info["replay_sockets"].get<uint64_t>(), 1u);

  // Unused for the idle time, a socket is closed even below the limit.
  auto c = publisher(dir, "pub-c", f.front, 1000, {"--instance", "c", "--batch", "500"});
  wait_json(dir / "pub-c.json", 30s, [](const json& j) { return j["published"].get<uint64_t>() >= 1000; });
  auto idle = subscriber(dir, "idle", f.back, 0, {"--replay-idle-close-ms", "300"});
  BOOST_CHECK(wait_until(
      [&] {
        auto j = read_json(dir / "idle.json");
        return j && (*j)["count"].get<uint64_t>() == 7000u && (*j)["replay_sockets"].get<uint64_t>() == 0u &&
               (*j)["replay_sockets_closed"].get<uint64_t>() >= 3u;
      },
      30s));
}

BOOST_AUTO_TEST_CASE(a_gone_publisher_is_asked_less_and_less_often_and_warned_about_once) {
  // At each start a subscriber asks every stream's last endpoint for what
  // came after its cursor. A released cloud machine's agent never answers:
  // it is asked again after retry_ms, then twice as long each time.
  TempDir dir;
  Forwarder f(dir, "fwd");
  {
    auto pub = publisher(dir, "pub", f.front, 500, {"--batch", "100"});
    auto sub = subscriber(dir, "sub", f.back, 0);
    wait_json(dir / "sub.json", 30s, [](const json& j) { return j.value("count", uint64_t{0}) >= 500; });
    std::this_thread::sleep_for(1500ms);  // a heartbeat: the subscriber stores where the stream replays from
  }  // both stop (the publisher for good)
  auto sub = subscriber(dir, "sub", f.back, 0, {"--retry-ms", "100", "--replay-timeout-ms", "50"});
  std::this_thread::sleep_for(3s);
  auto info = read_json(dir / "sub.json").value_or(json::object());
  // Asked at 0, 0.15, 0.4, 0.85, 1.75 s and 3.4 s: 5 failures in 3 s, where
  // a fixed 100 ms wait would have made about 20.
  uint64_t failures = info.value("replay_failures", uint64_t{0});
  BOOST_CHECK_MESSAGE(failures >= 3u, info.dump() << "\n" << sub->log());
  BOOST_CHECK_LE(failures, 7u);
  auto log = sub->log();
  size_t warnings = 0;
  for (size_t at = log.find("failed: "); at != std::string::npos; at = log.find("failed: ", at + 1)) ++warnings;
  BOOST_CHECK_MESSAGE(warnings == 1, "one warning per run of failures, not " << warnings << ":\n" << log);
}

BOOST_AUTO_TEST_CASE(a_subscriber_too_far_behind_starts_from_a_snapshot) {
  TempDir dir;
  Forwarder f(dir, "fwd");
  auto pub = publisher(dir, "pub", f.front, 10000, {"--batch", "500", "--keep-events", "1000"});
  wait_json(dir / "pub.json", 30s, [](const json& j) {
    return j["published"].get<uint64_t>() >= 10000 && j["trimmed"].get<uint64_t>() >= 9000;
  });
  auto sub = subscriber(dir, "sub", f.back, 10000);
  auto info = expect_exactly_once(*sub, dir, "sub", 10000);
  BOOST_CHECK_EQUAL(info["snapshots"].get<uint64_t>(), 1u);
}

BOOST_AUTO_TEST_CASE(a_publisher_whose_store_was_wiped_starts_a_new_epoch_that_subscribers_follow_from_seq_1) {
  // A cloud slot's next machine, or a node whose disk was replaced: the same
  // stream name, a fresh outbox counting from 1 again. Without epochs the
  // subscriber would skip all of it as duplicates.
  TempDir dir;
  Forwarder f(dir, "fwd");
  auto sub = subscriber(dir, "sub", f.back, 3000);
  {
    auto first = publisher(dir, "first", f.front, 2000, {"--batch", "200"});
    wait_json(dir / "sub.json", 30s, [](const json& j) { return j.value("count", uint64_t{0}) >= 2000; });
  }  // stopped; its store is never seen again
  auto second = publisher(dir, "second", f.front, 1000, {"--batch", "200"});
  auto rc = sub->wait(60s);
  auto info = read_json(dir / "sub.json").value_or(json::object());
  BOOST_REQUIRE_MESSAGE(rc.has_value(), "subscriber did not finish; last state " + info.dump() + "\n" + sub->log());
  BOOST_CHECK_EQUAL(info["count"].get<uint64_t>(), 3000u);
  // Events 1..2000 of the first incarnation, then 1..1000 of the second.
  uint64_t sum = expected_checksum(2000);
  for (uint64_t i = 1; i <= 1000; ++i) sum = sum * 1099511628211ull ^ (i * 2654435761u + 7);
  BOOST_CHECK_EQUAL(info["checksum"].get<uint64_t>(), sum);
  BOOST_CHECK_EQUAL(info["new_epochs"].get<uint64_t>(), 1u);
}

BOOST_AUTO_TEST_CASE(a_publisher_killed_between_commit_and_publish_delivers_after_restart_exactly_once) {
  TempDir dir;
  Forwarder f(dir, "fwd");
  auto sub = subscriber(dir, "sub", f.back, 3000);
  {
    // Dies by SIGKILL right after committing the batch holding seq 1500,
    // before publishing it.
    auto pub = publisher(dir, "pub", f.front, 3000, {"--batch", "100", "--rate", "5000", "--crash-after-commit", "1500"});
    auto rc = pub->wait(30s);
    BOOST_REQUIRE(rc.has_value());
    BOOST_CHECK_EQUAL(*rc, 128 + SIGKILL);
  }
  auto sub_info = read_json(dir / "sub.json").value_or(json::object());
  BOOST_CHECK_LT(sub_info.value("count", uint64_t{0}), 1500u);  // the crashed batch never left
  auto pub = publisher(dir, "pub", f.front, 3000, {"--batch", "100"});
  expect_exactly_once(*sub, dir, "sub", 3000);
  auto pub_info = read_json(dir / "pub.json").value_or(json::object());
  BOOST_CHECK_GT(pub_info.value("republished", uint64_t{0}), 0u);
}

BOOST_AUTO_TEST_CASE(a_subscriber_killed_mid_stream_of_100k_applies_every_event_exactly_once) {
  TempDir dir;
  Forwarder f(dir, "fwd");
  auto pub = publisher(dir, "pub", f.front, 100000, {"--batch", "500", "--rate", "40000"});
  {
    auto sub = subscriber(dir, "sub", f.back, 100000);
    wait_json(dir / "sub.json", 30s, [](const json& j) { return j["count"].get<uint64_t>() >= 30000; });
    sub->kill9();
    sub->wait(5s);
  }
  auto partial = read_json(dir / "sub.json").value_or(json::object());
  BOOST_TEST_MESSAGE("killed at count " << partial.dump());
  BOOST_CHECK_LT(partial["count"].get<uint64_t>(), 100000u);
  auto sub = subscriber(dir, "sub", f.back, 100000);
  expect_exactly_once(*sub, dir, "sub", 100000, 90s);
}

BOOST_AUTO_TEST_CASE(the_forwarder_killed_and_restarted_mid_stream_loses_nothing) {
  TempDir dir;
  // Ports below the ephemeral range: the restart binds them again, and no
  // connection made meanwhile can take them.
  auto port = [] { return "tcp://127.0.0.1:" + std::to_string(trainyard::testing::free_loopback_port()); };
  auto f = std::make_unique<Forwarder>(dir, "fwd", port(), port());
  std::string front = f->front, back = f->back;
  auto sub = subscriber(dir, "sub", back, 40000);
  auto pub = publisher(dir, "pub", front, 40000, {"--batch", "200", "--rate", "20000"});
  wait_json(dir / "sub.json", 30s, [](const json& j) { return j["count"].get<uint64_t>() >= 10000; });
  f->proc.kill9();
  f->proc.wait(5s);
  f.reset();
  std::this_thread::sleep_for(300ms);  // events published now have nowhere to go
  Forwarder again(dir, "fwd2", front, back);
  // ZeroMQ may queue what the dead forwarder could not take, or drop it;
  // either way the subscriber ends with every event exactly once.
  expect_exactly_once(*sub, dir, "sub", 40000);
}

BOOST_AUTO_TEST_CASE(garbage_truncated_wrong_type_and_oversized_messages_are_rejected_and_counted) {
  TempDir dir;
  Forwarder f(dir, "fwd");
  auto sub = subscriber(dir, "sub", f.back, 1000, {"--max-message-bytes", "1048576"});
  wait_until([&] { return read_json(dir / "sub.json").has_value(); }, 10s);

  zmq::context_t ctx;
  zmq::socket_t raw(ctx, zmq::socket_type::pub);
  raw.connect(f.front);
  // A valid envelope to truncate and to mismatch.
  flatbuffers::FlatBufferBuilder b;
  auto stream = b.CreateString("test.@evil");
  auto ev = trainyard::fb::CreateTestEvent(b, 1, 1);
  auto env = trainyard::fb::CreateEnvelope(b, stream, 1, 0, trainyard::fb::Payload::TestEvent, ev.Union());
  trainyard::fb::FinishEnvelopeBuffer(b, env);
  std::string good(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize());
  // A valid envelope claiming a stream the topic does not belong to.
  flatbuffers::FlatBufferBuilder ob;
  auto ostream = ob.CreateString("other.@evil");
  auto oev = trainyard::fb::CreateTestEvent(ob, 1, 1);
  trainyard::fb::FinishEnvelopeBuffer(
      ob, trainyard::fb::CreateEnvelope(ob, ostream, 1, 0, trainyard::fb::Payload::TestEvent, oev.Union()));
  std::string foreign(reinterpret_cast<const char*>(ob.GetBufferPointer()), ob.GetSize());
  // A well-formed FlatBuffer of another type (a Request).
  flatbuffers::FlatBufferBuilder rb;
  auto req = trainyard::fb::CreateRequest(rb, 7);
  trainyard::fb::FinishRequestBuffer(rb, req);
  std::string wrong(reinterpret_cast<const char*>(rb.GetBufferPointer()), rb.GetSize());

  std::vector<std::pair<std::string, std::string>> bad = {
      {"test.event", "garbage garbage garbage garbage"},
      {"test.event", good.substr(0, good.size() / 2)},
      {"test.event", wrong},
      {"test.event", foreign},                              // topic outside the claimed stream
      {"test.event", std::string(2 << 20, 'x')},            // over the 1 MiB limit
  };
  auto rejected = [&] {
    auto j = read_json(dir / "sub.json");
    return j ? (*j)["rejected"].get<uint64_t>() : 0;
  };
  // Probe until the subscription has reached the raw socket (slow joiner),
  // then send each bad message exactly once.
  BOOST_REQUIRE(wait_until(
      [&] {
        raw.send(zmq::str_buffer("test.single-frame"));
        return rejected() >= 1;
      },
      10s));
  std::this_thread::sleep_for(300ms);
  uint64_t before = rejected();
  for (auto& [t, m] : bad) {
    raw.send(zmq::buffer(t), zmq::send_flags::sndmore);
    raw.send(zmq::buffer(m));
  }
  BOOST_REQUIRE(wait_until([&] { return rejected() >= before + bad.size(); }, 10s));
  auto pub = publisher(dir, "pub", f.front, 1000, {"--batch", "100"});
  auto info = expect_exactly_once(*sub, dir, "sub", 1000);
  BOOST_CHECK_EQUAL(info["rejected"].get<uint64_t>(), before + bad.size());
}

BOOST_AUTO_TEST_CASE(a_garbage_request_is_dropped_and_the_server_keeps_answering) {
  TempDir dir;
  Forwarder f(dir, "fwd");
  auto pub = publisher(dir, "pub", f.front, 10, {"--batch", "10"});
  auto info = wait_json(dir / "pub.json", 10s, [](const json& j) { return j["published"].get<uint64_t>() >= 10; });
  std::string replay = info["replay"];
  zmq::context_t ctx;
  zmq::socket_t raw(ctx, zmq::socket_type::dealer);
  raw.connect(replay);
  raw.send(zmq::str_buffer("not a request"));
  raw.send(zmq::buffer(std::string(1000, '\xff')));
  trainyard::rpc::Client client(ctx, "peer", replay, {1000, 1, "", "", nullptr});
  auto r = client.call(trainyard::fb::RequestBody::ReplayRequest, [](flatbuffers::FlatBufferBuilder& fbb) {
    return trainyard::fb::CreateReplayRequestDirect(fbb, "test.@peer", 1, 100).Union();
  });
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().to_string());
  BOOST_CHECK_EQUAL(r->body<trainyard::fb::ReplayBatch>()->events()->size(), 10u);
  // The garbage got no reply.
  zmq::message_t m;
  BOOST_CHECK(!raw.recv(m, zmq::recv_flags::dontwait));
}

BOOST_AUTO_TEST_CASE(a_request_to_a_dead_peer_fails_fast_with_its_name) {
  zmq::context_t ctx;
  trainyard::rpc::Client client(ctx, "scheduler", "tcp://127.0.0.1:1", {300, 2, "", "", nullptr});
  auto start = std::chrono::steady_clock::now();
  auto r = client.call(trainyard::fb::RequestBody::Ping);
  BOOST_CHECK(!r.ok());
  BOOST_CHECK(r.status().code() == trainyard::fb::ErrorCode::Unavailable);
  BOOST_CHECK_NE(r.status().message().find("scheduler"), std::string::npos);
  BOOST_CHECK_LT(std::chrono::steady_clock::now() - start, 2s);
}

// The gateway under hostile clients and hostile data, each case against a
// real trainyard-gateway process on loopback: slowloris clients are cut off
// at the request deadline and do not stop others from being answered; a full
// worker pool answers 503 at once; one client cannot take every live stream;
// bus events with invalid UTF-8 (job names, metric names) do not stop it; and
// every malformed request body is a 400 naming the field, never a 500.
#define BOOST_TEST_MODULE hostile_gateway
#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>
#include <zmq.hpp>

#include "process.h"
#include "trainyard/fb/bus_generated.h"

using namespace trainyard::testing;
using nlohmann::json;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

const std::string kDead = "tcp://127.0.0.1:9";  // nothing listens there

// The API token of the gateway under test (each case starts its own).
std::string g_token;

// A running trainyard-gateway whose services are all down unless `sets` says
// otherwise, and a token for it (every route but /healthz needs one).
struct Gateway {
  Gateway(const TempDir& dir, std::vector<std::string> sets, const std::string& bus = kDead) {
    std::vector<std::string> argv{bin("trainyard-gateway"), "--listen", "127.0.0.1:0", "--ready-file", dir / "gw.ready",
                                  "--set", "bus.backend=" + bus};
    for (const char* s : {"scheduler", "broker", "metrics", "billing"}) sets.push_back(std::string(s) + ".endpoint=" + kDead);
    sets.push_back("gateway.rpc_timeout_ms=300");
    sets.push_back("gateway.endpoint=tcp://127.0.0.1:*");
    sets.push_back("gateway.data=" + (dir / "gw.db"));
    for (auto& s : sets) {
      argv.push_back("--set");
      argv.push_back(s);
    }
    proc = std::make_unique<Process>(argv, dir / "gw.log");
    auto ready = wait_json(dir / "gw.ready", 15s);
    url = ready.at("url").get<std::string>();
    port = ready.at("port").get<int>();
    auto [rc, out] = run({bin("ty"), "token", "--gateway", ready.at("rpc").get<std::string>(), "create"}, 20s,
                         {{"USER", "ana"}, {"TY_CONFIG", ""}, {"HOME", "/nonexistent"}});
    BOOST_REQUIRE_MESSAGE(rc == 0 && out.find("tyt_") != std::string::npos, out);
    g_token = out.substr(out.find("tyt_"), 68);
  }
  std::unique_ptr<Process> proc;
  std::string url;
  int port = 0;
};

struct Reply {
  int status = 0;
  json body;
  std::string text;
};

Reply get(const std::string& url, const std::string& path, std::chrono::seconds timeout = 10s) {
  httplib::Client cli(url);
  cli.set_read_timeout(timeout.count(), 0);
  cli.set_connection_timeout(5, 0);
  cli.set_bearer_token_auth(g_token.c_str());
  auto r = cli.Get(path.c_str());
  Reply out;
  if (!r) return out;
  out.status = r->status;
  out.text = r->body;
  out.body = json::parse(r->body, nullptr, false);
  return out;
}

Reply send(const std::string& url, const std::string& method, const std::string& path, const std::string& body) {
  httplib::Client cli(url);
  cli.set_read_timeout(10, 0);
  httplib::Headers h{{"Authorization", "Bearer " + g_token}};
  auto r = method == "POST" ? cli.Post(path.c_str(), h, body, "application/json")
                            : cli.Delete(path.c_str(), h, body, "application/json");
  Reply out;
  if (!r) return out;
  out.status = r->status;
  out.text = r->body;
  out.body = json::parse(r->body, nullptr, false);
  return out;
}

// A raw TCP connection to the gateway from a chosen loopback address (the
// gateway tells clients apart by address: 127.0.0.2 is "another client").
struct Conn {
  Conn(int port, const std::string& from = "127.0.0.1") {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in src{};
    src.sin_family = AF_INET;
    inet_pton(AF_INET, from.c_str(), &src.sin_addr);
    BOOST_REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) == 0);
    sockaddr_in dst{};
    dst.sin_family = AF_INET;
    dst.sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
    BOOST_REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) == 0);
  }
  ~Conn() { close(); }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;
  void close() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
  bool send(const std::string& s) { return ::send(fd, s.data(), s.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(s.size()); }
  // Reads what is there within `wait`; false once the peer closed (EOF or reset).
  bool pump(std::chrono::milliseconds wait) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(wait.count())) <= 0) return true;
    char buf[4096];
    ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) {
      got.append(buf, static_cast<size_t>(n));
      return true;
    }
    return n < 0 && (errno == EAGAIN || errno == EINTR);
  }
  // Reads until `needle` arrives, the peer closes, or `timeout` passes.
  bool read_until(const std::string& needle, std::chrono::milliseconds timeout) {
    auto end = Clock::now() + timeout;
    while (got.find(needle) == std::string::npos && Clock::now() < end) {
      if (!pump(50ms)) break;
    }
    return got.find(needle) != std::string::npos;
  }
  int status() const { return got.rfind("HTTP/1.1 ", 0) == 0 ? std::stoi(got.substr(9, 3)) : 0; }
  json body() const {
    auto p = got.find("\r\n\r\n");
    return p == std::string::npos ? json() : json::parse(got.substr(p + 4), nullptr, false);
  }
  int fd = -1;
  std::string got;
};

// The "field" of an error body; "" when it names none (null).
std::string field_of(const json& body) {
  return body.is_object() && body.contains("field") && body["field"].is_string() ? body["field"].get<std::string>() : "";
}

std::string sse_request(const std::string& path) {
  return "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + g_token + "\r\n\r\n";
}

}  // namespace

BOOST_AUTO_TEST_CASE(fifty_slow_clients_do_not_stop_a_normal_get_and_are_cut_off_at_the_request_deadline) {
  TempDir dir;
  Gateway gw(dir, {"gateway.request_deadline_ms=3000"});
  // Each slow client sends its request one byte a second (it would take 40 s).
  const std::string request = "GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  std::vector<std::unique_ptr<Conn>> slow;
  for (int i = 0; i < 50; ++i) slow.push_back(std::make_unique<Conn>(gw.port));
  auto t0 = Clock::now();
  std::vector<std::optional<std::chrono::milliseconds>> cut(slow.size());
  std::atomic<bool> done{false};
  std::thread dripper([&] {
    for (size_t byte = 0; byte < request.size() && !done; ++byte) {
      for (size_t i = 0; i < slow.size(); ++i) {
        if (cut[i]) continue;
        if (!slow[i]->send(request.substr(byte, 1)) || !slow[i]->pump(0ms)) {
          cut[i] = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
        }
      }
      bool all_cut = std::all_of(cut.begin(), cut.end(), [](auto& c) { return c.has_value(); });
      if (all_cut || Clock::now() - t0 > 12s) break;
      for (int w = 0; w < 10 && !done; ++w) {
        for (size_t i = 0; i < slow.size(); ++i) {
          if (!cut[i] && !slow[i]->pump(0ms)) cut[i] = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
        }
        std::this_thread::sleep_for(100ms);
      }
    }
  });
  struct Join {
    std::thread& t;
    std::atomic<bool>& done;
    ~Join() {
      done = true;
      if (t.joinable()) t.join();
    }
  } join{dripper, done};

  // While they drip: a normal request is answered at once, several times.
  std::this_thread::sleep_for(1500ms);
  for (int i = 0; i < 3; ++i) {
    auto t = Clock::now();
    auto r = get(gw.url, "/api/v1/events/recent");
    auto took = Clock::now() - t;
    BOOST_TEST(r.status == 200, r.text);
    BOOST_TEST_MESSAGE("a normal GET with 50 slow clients connected: "
                       << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms");
    BOOST_TEST(took < 2s, "a normal GET took " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                                               << " ms with 50 slow clients connected");
    std::this_thread::sleep_for(300ms);
  }
  dripper.join();
  // Every slow client was disconnected after the 3 s deadline, not before it
  // and not 40 s later, with a 408 that says why.
  for (size_t i = 0; i < slow.size(); ++i) {
    BOOST_REQUIRE_MESSAGE(cut[i].has_value(), "slow client " << i << " was never disconnected");
    BOOST_TEST(cut[i]->count() >= 2500, "client " << i << " cut after " << cut[i]->count() << " ms: " << slow[i]->got);
    BOOST_TEST(cut[i]->count() <= 6000, "client " << i << " cut after " << cut[i]->count() << " ms");
  }
  auto [lo, hi] = std::minmax_element(cut.begin(), cut.end());
  BOOST_TEST_MESSAGE("slow clients cut after " << (*lo)->count() << " to " << (*hi)->count() << " ms (deadline 3000)");
  size_t with_408 = 0;
  for (auto& c : slow) {
    if (c->status() == 408) {
      ++with_408;
      BOOST_TEST(c->body().value("error", "").find("gateway.request_deadline_ms") != std::string::npos, c->got);
    }
  }
  BOOST_TEST(with_408 > slow.size() / 2, with_408 << " of " << slow.size() << " slow clients read their 408");
  BOOST_TEST(gw.proc->running());
  BOOST_TEST(get(gw.url, "/api/v1/events/recent").status == 200);
  // /metrics counts them.
  auto m = get(gw.url, "/metrics").text;
  auto at = m.find("trainyard_gateway_http_refused_total{reason=\"deadline\"} ");
  BOOST_REQUIRE_MESSAGE(at != std::string::npos, m);
  BOOST_TEST(std::stod(m.substr(at + 56)) >= 25.0, m.substr(at, 70));
}

BOOST_AUTO_TEST_CASE(when_every_worker_is_taken_a_new_request_gets_503_at_once) {
  TempDir dir;
  Gateway gw(dir, {"gateway.threads=4", "gateway.max_queued=0", "gateway.max_streams=4",
                   "gateway.max_streams_per_client=4", "gateway.keepalive_ms=200"});
  std::vector<std::unique_ptr<Conn>> streams;
  for (int i = 0; i < 4; ++i) {
    streams.push_back(std::make_unique<Conn>(gw.port));
    streams.back()->send(sse_request("/api/v1/events"));
    BOOST_REQUIRE_MESSAGE(streams.back()->read_until("event: hello", 5s), streams.back()->got);
  }
  auto t = Clock::now();
  auto r = get(gw.url, "/api/v1/events/recent");
  BOOST_TEST((Clock::now() - t) < 1s);
  BOOST_TEST(r.status == 503, r.text);
  BOOST_TEST(r.body.value("error", "").find("gateway.max_queued") != std::string::npos, r.text);
  // A worker freed is a worker used again.
  streams.pop_back();
  BOOST_TEST(wait_until([&] { return get(gw.url, "/api/v1/events/recent").status == 200; }, 10s));
}

BOOST_AUTO_TEST_CASE(one_client_gets_a_clear_429_past_its_stream_limit_while_another_client_still_streams) {
  TempDir dir;
  Gateway gw(dir, {"gateway.max_streams_per_client=2", "gateway.max_streams=10", "gateway.keepalive_ms=200"});
  std::vector<std::unique_ptr<Conn>> mine;
  for (int i = 0; i < 2; ++i) {
    mine.push_back(std::make_unique<Conn>(gw.port));
    mine.back()->send(sse_request("/api/v1/events"));
    BOOST_REQUIRE_MESSAGE(mine.back()->read_until("event: hello", 5s), mine.back()->got);
  }
  Conn third(gw.port);
  third.send(sse_request("/api/v1/events?kinds=job"));
  BOOST_REQUIRE_MESSAGE(third.read_until("}", 5s), third.got);
  BOOST_TEST(third.status() == 429, third.got);
  BOOST_TEST(third.body().value("code", "") == "ResourceExhausted", third.got);
  BOOST_TEST(third.body().value("error", "").find("gateway.max_streams_per_client") != std::string::npos, third.got);
  // Another client (another address) is not affected.
  Conn other(gw.port, "127.0.0.2");
  other.send(sse_request("/api/v1/events"));
  BOOST_TEST(other.read_until("event: hello", 5s), other.got);
  BOOST_TEST(other.status() == 200);
  // Closing a stream gives its place back.
  mine.pop_back();
  BOOST_TEST(wait_until(
      [&] {
        Conn again(gw.port);
        again.send(sse_request("/api/v1/events"));
        return again.read_until("event: hello", 2s);
      },
      10s));
}

namespace {

namespace fb = trainyard::fb;

std::string envelope(const std::string& stream, uint64_t seq,
                     const std::function<std::pair<fb::Payload, flatbuffers::Offset<void>>(flatbuffers::FlatBufferBuilder&)>& payload) {
  flatbuffers::FlatBufferBuilder b;
  auto [type, p] = payload(b);
  auto s = b.CreateString(stream);
  fb::FinishEnvelopeBuffer(b, fb::CreateEnvelope(b, s, seq, 1'700'000'000'000'000'000, type, p));
  return std::string(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize());
}

// A Latin-1 "été", a lone surrogate as the agent's metric parser encodes it
// (CESU-8 style), and bytes that are never UTF-8.
const std::string kLatin1 = "\xe9t\xe9";
const std::string kSurrogate = "loss\xed\xa0\x80";
const std::string kNever = "\xff\xfe";

void publish_hostile(zmq::socket_t& pub, uint64_t seq) {
  auto send = [&](const std::string& topic, const std::string& env) {
    pub.send(zmq::buffer(topic), zmq::send_flags::sndmore);
    pub.send(zmq::buffer(env), zmq::send_flags::none);
  };
  send("job.submitted", envelope("job.@hostile", 2 * seq - 1, [&](auto& b) {
    auto name = b.CreateString(kLatin1);
    auto user = b.CreateString(kNever);
    auto exp = b.CreateString(kSurrogate);
    fb::JobSpecBuilder sb(b);
    sb.add_name(name);
    sb.add_user(user);
    sb.add_experiment(exp);
    auto spec = sb.Finish();
    return std::make_pair(fb::Payload::JobSubmitted, fb::CreateJobSubmitted(b, 1000 + seq, spec).Union());
  }));
  send("job.state", envelope("job.@hostile", 2 * seq, [&](auto& b) {
    auto reason = b.CreateString(kNever + kSurrogate);
    auto ev = fb::CreateJobStateChanged(b, 1000 + seq, fb::JobState::Pending, fb::JobState::Running, reason);
    return std::make_pair(fb::Payload::JobStateChanged, ev.Union());
  }));
  send("metric.batch", envelope("metric.@hostile", seq, [&](auto& b) {
    auto names = b.CreateVectorOfStrings({kSurrogate, kNever, kLatin1});
    fb::MetricBatchBuilder mb(b);
    mb.add_job_id(1000 + seq);
    mb.add_names(names);
    return std::make_pair(fb::Payload::MetricBatch, mb.Finish().Union());
  }));
}

}  // namespace

BOOST_AUTO_TEST_CASE(bus_events_with_invalid_utf8_in_job_and_metric_names_do_not_stop_the_gateway) {
  TempDir dir;
  auto bus = start_bus(dir.path());
  Gateway gw(dir, {}, bus.backend);
  // A live stream from before the events.
  Conn sse(gw.port);
  sse.send(sse_request("/api/v1/events?kinds=job,metric"));
  BOOST_REQUIRE(sse.read_until("event: hello", 5s));

  zmq::context_t ctx;
  zmq::socket_t pub(ctx, zmq::socket_type::pub);
  pub.set(zmq::sockopt::linger, 0);
  pub.connect(bus.frontend);
  // Until the subscription has travelled through the forwarder, events are
  // dropped: publish rounds until the gateway shows some.
  uint64_t seq = 0;
  bool seen = wait_until(
      [&] {
        publish_hostile(pub, ++seq);
        std::this_thread::sleep_for(100ms);
        auto r = get(gw.url, "/api/v1/events/recent?kinds=job,metric");
        return r.status == 200 && r.body["events"].size() >= 3;
      },
      15s);
  BOOST_REQUIRE_MESSAGE(seen, "the gateway never showed the events: " << gw.proc->log());
  BOOST_REQUIRE_MESSAGE(gw.proc->running(), gw.proc->log());

  // REST: the strings arrive with U+FFFD in place of what was not UTF-8.
  auto recent = get(gw.url, "/api/v1/events/recent?kinds=job,metric");
  BOOST_TEST(recent.status == 200);
  const std::string replacement = "\xef\xbf\xbd";
  bool name_replaced = false, metric_replaced = false;
  for (auto& e : recent.body["events"]) {
    if (e["topic"] == "job.submitted") {
      auto name = e["data"]["name"].get<std::string>();
      name_replaced = name.find(replacement) != std::string::npos && name.find('t') != std::string::npos;
    }
    if (e["topic"] == "metric.batch") {
      metric_replaced = e["data"]["names"].size() == 3u &&
                        e["data"]["names"][0].get<std::string>().find(replacement) != std::string::npos;
    }
  }
  BOOST_TEST(name_replaced, recent.text);
  BOOST_TEST(metric_replaced, recent.text);
  // SSE: the open stream carried them and still works.
  BOOST_TEST(sse.read_until("event: metric.batch", 5s), sse.got);
  BOOST_TEST(sse.got.find("event: job.submitted") != std::string::npos);
  publish_hostile(pub, ++seq);
  Conn late(gw.port);
  late.send(sse_request("/api/v1/events?kinds=job,metric&after=0"));
  BOOST_TEST(late.read_until("event: metric.batch", 5s), late.got);
  // /metrics still scrapes.
  auto m = get(gw.url, "/metrics");
  BOOST_TEST(m.status == 200);
  BOOST_TEST(m.text.find("trainyard_gateway_bus_events_total") != std::string::npos, m.text);
  BOOST_TEST(gw.proc->running(), gw.proc->log());
}

BOOST_AUTO_TEST_CASE(malformed_json_bodies_of_every_route_get_400_naming_the_field) {
  TempDir dir;
  Gateway gw(dir, {});
  struct Case {
    std::string method, path, body, field;
  } cases[] = {
      {"POST", "/api/v1/jobs", R"({"command":["true"],"dependencies":[{"job_id":1,"kind":5}]})", "dependencies"},
      {"POST", "/api/v1/jobs", R"({"command":["true"],"dependencies":[{"job_id":"1"}]})", "dependencies"},
      {"POST", "/api/v1/jobs", R"({"command":["true"],"dependencies":[7]})", "dependencies"},
      {"POST", "/api/v1/jobs", R"({"command":["true"],"dependencies":[{"job_id":1,"after":"x"}]})", "dependencies"},
      {"POST", "/api/v1/jobs", R"({"command":["true"],"dependencies":{"job_id":1}})", "dependencies"},
      {"POST", "/api/v1/jobs", R"({"command":""})", "command"},
      {"POST", "/api/v1/jobs", R"({"command":["true",5]})", "command"},
      {"POST", "/api/v1/jobs", R"({"command":["true"],"gpus":"2"})", "gpus"},
      {"POST", "/api/v1/jobs", R"({"command":["true"],"gpus":-1})", "gpus"},
      {"POST", "/api/v1/jobs", R"({"command":["true"],"cpus":1.5})", "cpus"},
      {"POST", "/api/v1/jobs", R"({"command":["true"],"priority":18446744073709551615})", "priority"},
      {"POST", "/api/v1/jobs", R"({"command":["true"],"nodes":4294967296})", "nodes"},
      {"POST", "/api/v1/jobs", R"({"command":["true"],"env":{"A":[1]}})", "env.A"},
      {"POST", "/api/v1/jobs", R"({"command":["true"],"env":["A=1"]})", "env"},
      {"POST", "/api/v1/jobs", R"({"command":["true"],"labels":{"a":{"b":1}}})", "labels.a"},
      {"POST", "/api/v1/jobs", R"({"command":["true"],"preemptible":"yes"})", "preemptible"},
      {"POST", "/api/v1/jobs", R"({"command":["true"],"sim_duration_s":"10"})", "sim_duration_s"},
      {"POST", "/api/v1/jobs", R"({"command":["true"],"name":["x"]})", "name"},
      {"POST", "/api/v1/jobs", R"({"command":["true"],"nmae":"x"})", "nmae"},
      {"POST", "/api/v1/jobs", R"([{"command":["true"]}])", ""},
      {"POST", "/api/v1/jobs", R"("just a string")", ""},
      {"POST", "/api/v1/jobs", "{\"command\":[\"tr\xff\"]}", ""},
      {"POST", "/api/v1/jobs/5/cancel", R"({"reason":5})", "reason"},
      {"POST", "/api/v1/jobs/5/cancel", R"({"why":"x"})", "why"},
      {"POST", "/api/v1/jobs/5/hold", R"([1])", ""},
      {"POST", "/api/v1/jobs/5/release", R"({"reason":{"a":1}})", "reason"},
      {"DELETE", "/api/v1/jobs/5", R"({"reason":true})", "reason"},
      {"DELETE", "/api/v1/jobs/5", "{oops", ""},
      // Nesting a million deep, within the 4 MiB body limit: parsed without
      // recursion, refused, and the gateway stays up.
      {"POST", "/api/v1/jobs", std::string(1'000'000, '[') + std::string(1'000'000, ']'), ""},
      {"POST", "/api/v1/jobs", "{\"command\":" + std::string(1'000'000, '[') + std::string(1'000'000, ']') + "}", "command"},
  };
  for (const auto& c : cases) {
    auto r = send(gw.url, c.method, c.path, c.body);
    BOOST_TEST(r.status == 400, c.method << " " << c.path << " " << c.body << " -> " << r.status << " " << r.text);
    BOOST_TEST(r.body.is_object(), r.text);
    BOOST_TEST(field_of(r.body) == c.field, c.body << " -> " << r.text);
    BOOST_TEST(!r.body.value("error", "").empty(), r.text);
  }
  // Query parameters too: seconds past what int64 nanoseconds hold.
  auto r = get(gw.url, "/api/v1/usage?since=999999999999");
  BOOST_TEST(r.status == 400, r.text);
  BOOST_TEST(field_of(r.body) == "since", r.text);
  BOOST_TEST(gw.proc->running());
}

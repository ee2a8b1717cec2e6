// A real service, in-process, for fuzzing its request dispatch: the shell
// run_service would build (its Options from config, a RocksDB store in a
// temporary directory, its ROUTER, publisher and subscriber), driven one
// loop iteration at a time. Each input is sent as one frame from a DEALER,
// exactly as a peer sends it; the service checks it, runs the handler,
// commits, and answers. The harness aborts when a reply is not a valid
// Reply for that request: a service never answers with garbage. Events
// come the same way, from a PUB socket where the bus forwarder would be.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "bus/event.h"
#include "fb_generator.h"
#include "rpc/message.h"
#include "trainyard/fb/bus_bfbs_generated.h"
#include "trainyard/fb/bus_generated.h"
#include "trainyard/fb/request_bfbs_generated.h"
#include "storage/store.h"
#include "util/clock.h"
#include "util/config.h"
#include "util/run_service.h"
#include "util/runtime.h"

namespace trainyard::fuzz {

template <class Shell>
class ServiceUnderFuzz {
 public:
  // `sets`: config overrides (section.key=value) besides data and endpoints,
  // which the harness chooses: `endpoint_key` gets an inproc endpoint,
  // `data_key` a fresh directory, the bus endpoints go nowhere.
  ServiceUnderFuzz(const std::string& endpoint_key, const std::string& data_key, std::vector<std::string> sets) {
    char tmpl[] = "/tmp/ty-fuzz-XXXXXX";
    if (!mkdtemp(tmpl)) die("mkdtemp failed");
    dir_ = tmpl;
    endpoint_ = "inproc://fuzz-" + endpoint_key;
    sets.push_back(endpoint_key + "=" + endpoint_);
    sets.push_back(data_key + "=" + dir_ + "/data");
    sets.push_back("bus.frontend=ipc://" + dir_ + "/no-bus-in");
    sets.push_back("bus.backend=ipc://" + dir_ + "/no-bus-out");
    bus_ = zmq::socket_t(ctx_, zmq::socket_type::xpub);
    bus_.set(zmq::sockopt::sndhwm, 0);
    bus_.bind("ipc://" + dir_ + "/no-bus-out");
    auto config = Config::load("", sets);
    if (!config) die(config.status().message());
    auto options = Shell::Options::from_config(*config);
    if (!options) die(options.status().message());
    std::filesystem::create_directories(options->data);
    auto store = storage::Store::open(options->data, Shell::store_options(*options));
    if (!store) die(store.status().message());
    store_ = std::move(store).value();
    runtime_ = std::make_unique<Runtime>(store_.get());
    shell_ = std::make_unique<Shell>(ServiceEnv{ctx_, *store_, *runtime_, clock_}, std::move(options).value());
    peer_ = zmq::socket_t(ctx_, zmq::socket_type::dealer);
    peer_.set(zmq::sockopt::linger, 0);
    peer_.connect(endpoint_);
    // Until the subscriber's subscriptions reach the "forwarder", events
    // sent would be dropped: wait for them to stop arriving.
    int quiet = 0, seen = 0;
    for (int i = 0; i < 400 && (seen == 0 || quiet < 20); ++i) {
      runtime_->run_once(5);
      zmq::message_t sub;
      if (bus_.recv(sub, zmq::recv_flags::dontwait)) {
        ++seen;
        quiet = 0;
      } else {
        ++quiet;
      }
    }
  }
  ~ServiceUnderFuzz() {
    shell_.reset();
    bus_.close();
    runtime_.reset();
    store_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // Sends one request; runs the loop until its reply arrives (or, for a
  // frame the service drops unanswered or a handler that answers later, a
  // few iterations). Aborts on a malformed reply or one for another request.
  void send(const std::vector<uint8_t>& bytes) {
    peer_.send(zmq::buffer(bytes.data(), bytes.size()), zmq::send_flags::none);
    auto checked = rpc::check_request(bytes.data(), bytes.size());
    int iterations = checked.request ? 8 : 1;
    for (int i = 0; i < iterations; ++i) {
      runtime_->run_once(0);
      zmq::message_t reply;
      if (!peer_.recv(reply, zmq::recv_flags::dontwait)) continue;
      Status why;
      const fb::Reply* r = rpc::check_reply(static_cast<const uint8_t*>(reply.data()), reply.size(), &why);
      if (!r) die("the service sent a malformed reply: " + why.message());
      if (!checked.request || r->id() != checked.request->id()) die("a reply to no request sent");
      return;
    }
  }

  // Publishes one event as the bus forwarder would and runs the loop until
  // the subscriber has read it.
  void publish(const std::string& topic, const std::vector<uint8_t>& envelope) {
    bus_.send(zmq::buffer(topic), zmq::send_flags::sndmore);
    bus_.send(zmq::buffer(envelope.data(), envelope.size()), zmq::send_flags::none);
    runtime_->run_once(0);
    runtime_->run_once(0);
  }

  // The seq the next event of `stream` must carry to be applied, not
  // taken for a gap; applied() moves it on once one was.
  uint64_t next_seq(const std::string& stream) { return seqs_[stream] + 1; }
  void applied(const std::string& stream) { ++seqs_[stream]; }

 private:
  [[noreturn]] static void die(const std::string& why) {
    std::fprintf(stderr, "service harness: %s\n", why.c_str());
    std::abort();
  }

  std::map<std::string, uint64_t> seqs_;
  zmq::socket_t bus_;
  std::string dir_, endpoint_;
  zmq::context_t ctx_{1};
  SystemClock clock_;
  std::unique_ptr<storage::Store> store_;
  std::unique_ptr<Runtime> runtime_;
  std::unique_ptr<Shell> shell_;
  zmq::socket_t peer_;
};

// A payload type and the stream family a service follows it on ("usage.").
struct EventKind {
  fb::Payload type;
  std::string family;
};

// Builds one event of one of `kinds` from the fuzzer's bytes, puts it on
// stream "<family>@fuzz" at the next seq (so the subscriber applies it,
// not waits for a gap to fill) and publishes it to the service.
template <class Shell>
void publish_event(ServiceUnderFuzz<Shell>& service, FuzzedDataProvider& in, const std::vector<EventKind>& kinds) {
  static const MessageGenerator gen({fb::EnvelopeBinarySchema::data(), fb::EnvelopeBinarySchema::size()}, "TYEV");
  const EventKind& kind = kinds[in.ConsumeIntegralInRange<size_t>(0, kinds.size() - 1)];
  std::vector<uint8_t> bytes = gen.build(in, {static_cast<int64_t>(kind.type)});
  std::string stream = kind.family + "@fuzz", topic = kind.family + "fuzz";
  flatbuffers::Verifier v(bytes.data(), bytes.size());
  if (fb::VerifyEnvelopeBuffer(v)) {
    fb::EnvelopeT e;
    fb::GetEnvelope(bytes.data())->UnPackTo(&e);
    e.stream = stream;
    e.seq = service.next_seq(stream);
    flatbuffers::FlatBufferBuilder b;
    fb::FinishEnvelopeBuffer(b, fb::Envelope::Pack(b, &e));
    bytes.assign(b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize());
    if (bus::verify_event(topic, bytes).ok()) service.applied(stream);
  }
  service.publish(topic, bytes);
}

// One fuzz input for a service: raw bytes as any peer can send them, an
// event through the subscriber to its handler, or (most often) a request
// built from the schema with its type mostly one of `requests`.
template <class Shell>
void fuzz_one(ServiceUnderFuzz<Shell>& service, const uint8_t* data, size_t size,
              const std::vector<int64_t>& requests, const std::vector<EventKind>& events) {
  static const MessageGenerator gen({fb::RequestBinarySchema::data(), fb::RequestBinarySchema::size()}, "TYRQ");
  FuzzedDataProvider in(data, size);
  switch (in.ConsumeIntegralInRange<int>(0, 3)) {
    case 0:
      service.send(in.ConsumeRemainingBytes<uint8_t>());
      break;
    case 1:
      publish_event(service, in, events);
      break;
    default:
      service.send(gen.build(in, requests));
  }
}

}  // namespace trainyard::fuzz

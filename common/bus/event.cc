#include "bus/event.h"

#include "wire/check.h"

namespace trainyard::bus {

Result<Event> verify_event(std::string_view topic, std::span<const uint8_t> bytes) {
  if (bytes.size() < 8 || !fb::EnvelopeBufferHasIdentifier(bytes.data())) {
    return Status::invalid("not a Trainyard envelope (missing TYEV identifier)");
  }
  flatbuffers::Verifier v(bytes.data(), bytes.size(), 64, 10'000'000);
  if (!fb::VerifyEnvelopeBuffer(v)) {
    return Status::invalid("envelope failed FlatBuffers verification");
  }
  auto* env = fb::GetEnvelope(bytes.data());
  if (!env->stream() || env->stream()->size() == 0) {
    return Status::invalid("envelope has no stream");
  }
  if (env->payload_type() == fb::Payload::NONE) {
    return Status::invalid("envelope has no payload");
  }
  // Every union member present, every enum in range, every required field
  // set: handlers may dereference what the schema promises.
  if (auto s = wire::envelope_check().check(bytes.data()); !s.ok()) {
    return Status::invalid(s.message());
  }
  auto stream = env->stream()->string_view();
  bool heartbeat = topic.substr(0, kHeartbeatPrefix.size()) == kHeartbeatPrefix;
  if (!heartbeat && env->seq() == 0) {
    return Status::invalid("event has seq 0");
  }
  if (!heartbeat) {
    auto prefix = stream_prefix(stream);
    if (topic.substr(0, prefix.size()) != prefix) {
      return Status::invalid("topic '" + std::string(topic) + "' does not belong to stream '" + std::string(stream) + "'");
    }
  }
  Event e;
  e.topic = topic;
  e.envelope = env;
  e.bytes = bytes;
  return e;
}

}  // namespace trainyard::bus

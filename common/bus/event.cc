#include "bus/event.h"

#include "wire/check.h"

namespace trainyard::bus {

bool verify_event(std::string_view topic, std::span<const uint8_t> bytes, Event* out, std::string* why) {
  if (bytes.size() < 8 || !fb::EnvelopeBufferHasIdentifier(bytes.data())) {
    *why = "not a Trainyard envelope (missing TYEV identifier)";
    return false;
  }
  flatbuffers::Verifier v(bytes.data(), bytes.size(), 64, 10'000'000);
  if (!fb::VerifyEnvelopeBuffer(v)) {
    *why = "envelope failed FlatBuffers verification";
    return false;
  }
  auto* env = fb::GetEnvelope(bytes.data());
  if (!env->stream() || env->stream()->size() == 0) {
    *why = "envelope has no stream";
    return false;
  }
  if (env->payload_type() == fb::Payload::NONE) {
    *why = "envelope has no payload";
    return false;
  }
  // Every union member present, every enum in range, every required field
  // set: handlers may dereference what the schema promises.
  if (auto s = wire::envelope_check().check(bytes.data()); !s.ok()) {
    *why = s.message();
    return false;
  }
  auto stream = env->stream()->string_view();
  bool heartbeat = topic.substr(0, kHeartbeatPrefix.size()) == kHeartbeatPrefix;
  if (!heartbeat && env->seq() == 0) {
    *why = "event has seq 0";
    return false;
  }
  if (!heartbeat) {
    auto prefix = stream_prefix(stream);
    if (topic.substr(0, prefix.size()) != prefix) {
      *why = "topic '" + std::string(topic) + "' does not belong to stream '" + std::string(stream) + "'";
      return false;
    }
  }
  out->topic = topic;
  out->envelope = env;
  out->bytes = bytes;
  return true;
}

}  // namespace trainyard::bus

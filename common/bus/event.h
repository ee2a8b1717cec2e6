// A bus event as a handler sees it, plus the checks every received message
// passes before anything reads it (size limit, FlatBuffers Verifier).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "trainyard/fb/bus_generated.h"
#include "util/status.h"

namespace trainyard::bus {

// Largest message a Trainyard socket accepts (64 MiB); bigger ones are
// rejected and counted.
inline constexpr size_t kDefaultMaxMessageBytes = 64u << 20;

// A verified event. Views into buffers owned by the caller of the handler:
// copy what must outlive the call.
struct Event {
  std::string_view topic;
  const fb::Envelope* envelope = nullptr;
  std::span<const uint8_t> bytes;  // the envelope, as received

  std::string_view stream() const { return envelope->stream()->string_view(); }
  uint64_t seq() const { return envelope->seq(); }
  int64_t time_ns() const { return envelope->time_ns(); }
  fb::Payload type() const { return envelope->payload_type(); }
  template <typename T>
  const T* as() const {
    return envelope->template payload_as<T>();
  }
};

// Stream names are "<topic prefix>@<publisher instance>"; every event of a
// stream has a topic starting with that prefix, so a subscriber to a prefix
// sees every event of each stream it tracks and can trust seq gaps.
inline std::string stream_name(std::string_view prefix, std::string_view instance) {
  return std::string(prefix) + "@" + std::string(instance);
}
inline std::string_view stream_prefix(std::string_view stream) {
  auto at = stream.rfind('@');
  return at == std::string_view::npos ? stream : stream.substr(0, at);
}
// The family prefix of a topic: "job.state" -> "job.".
inline std::string_view family_prefix(std::string_view topic) {
  auto dot = topic.find('.');
  return dot == std::string_view::npos ? topic : topic.substr(0, dot + 1);
}

inline constexpr std::string_view kHeartbeatPrefix = "ops.stream.";
// The principal every bus forwarder authenticates as under CURVE.
inline constexpr const char* kBusPrincipal = "service:bus";

// Checks a received envelope: identifier, Verifier, the schema's rules
// (wire::envelope_check: union members present, enums in range, required
// fields set), a non-empty stream, a positive seq, and that the topic
// belongs to the stream. The event (a view of `bytes`), or InvalidArgument
// with a sentence for the log.
Result<Event> verify_event(std::string_view topic, std::span<const uint8_t> bytes);

}  // namespace trainyard::bus

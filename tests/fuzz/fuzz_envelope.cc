// Bus events as a subscriber receives them, live or inside a replay batch:
// a topic and an Envelope (raw bytes or built from the schema).
#include <cstdlib>

#include "bus/event.h"
#include "fb_generator.h"
#include "trainyard/fb/bus_bfbs_generated.h"

using namespace trainyard;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const fuzz::MessageGenerator gen({fb::EnvelopeBinarySchema::data(), fb::EnvelopeBinarySchema::size()},
                                          "TYEV");
  FuzzedDataProvider in(data, size);
  std::string topic = in.ConsumeRandomLengthString(40);
  std::vector<uint8_t> bytes = in.ConsumeBool() ? gen.build(in) : in.ConsumeRemainingBytes<uint8_t>();
  if (auto e = bus::verify_event(topic, bytes)) {
    if (e->stream().empty() || (e->type() != fb::Payload::NONE && !e->envelope->payload() &&
                                static_cast<size_t>(e->type()) <= static_cast<size_t>(fb::Payload::MAX)))
      std::abort();
  } else if (e.status().message().empty()) {
    std::abort();  // a refusal always says why
  }
  return 0;
}

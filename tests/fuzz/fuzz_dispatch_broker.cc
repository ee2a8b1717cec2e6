// The resource broker's request dispatch with its real handlers behind it:
// registrations, heartbeats, allocations (gangs too), releases, drains and
// lists against a real cluster state in a temporary RocksDB. Requests are
// built from the schema, mostly of the types the broker takes; run.*
// events arrive through the real subscriber.
#include "fb_generator.h"
#include "service_harness.h"
#include "shell.h"
#include "trainyard/fb/request_bfbs_generated.h"

using namespace trainyard;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using fb::RequestBody;
  static const fuzz::MessageGenerator gen({fb::RequestBinarySchema::data(), fb::RequestBinarySchema::size()}, "TYRQ");
  static const std::vector<int64_t> mine = {
      static_cast<int64_t>(RequestBody::Ping),         static_cast<int64_t>(RequestBody::RegisterNode),
      static_cast<int64_t>(RequestBody::NodeHeartbeat), static_cast<int64_t>(RequestBody::Allocate),
      static_cast<int64_t>(RequestBody::ReleaseLease), static_cast<int64_t>(RequestBody::DrainNode),
      static_cast<int64_t>(RequestBody::ListNodes)};
  static fuzz::ServiceUnderFuzz<broker::BrokerShell> service("broker.endpoint", "broker.data",
                                                              {"broker.metrics_ms=0"});
  static const std::vector<fuzz::EventKind> events = {{fb::Payload::RunStarted, "run."}, {fb::Payload::RunFinished, "run."}};
  FuzzedDataProvider in(data, size);
  switch (in.ConsumeIntegralInRange<int>(0, 3)) {
    case 0:  // raw bytes, as any peer can send
      service.send(in.ConsumeRemainingBytes<uint8_t>());
      break;
    case 1:  // an event on the bus, through the subscriber to its handler
      fuzz::publish_event(service, in, events);
      break;
    default:  // a request built from the schema
      service.send(gen.build(in, mine));
  }
  return 0;
}

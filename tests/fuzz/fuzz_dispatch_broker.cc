// The resource broker's request dispatch with its real handlers behind it:
// registrations, heartbeats, allocations (gangs too), releases, drains and
// lists against a real cluster state in a temporary RocksDB. Requests are
// built from the schema, mostly of the types the broker takes.
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
  FuzzedDataProvider in(data, size);
  service.send(in.ConsumeBool() ? gen.build(in, mine) : in.ConsumeRemainingBytes<uint8_t>());
  return 0;
}

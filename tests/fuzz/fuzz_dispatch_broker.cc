// The resource broker's request dispatch with its real handlers behind it:
// registrations, heartbeats, allocations (gangs too), releases, drains and
// lists against a real cluster state in a temporary RocksDB. Requests are
// built from the schema, mostly of the types the broker takes; run.*
// events arrive through the real subscriber.
#include "service_harness.h"
#include "shell.h"

using namespace trainyard;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using fb::RequestBody;
  static const std::vector<int64_t> mine = {
      static_cast<int64_t>(RequestBody::Ping),         static_cast<int64_t>(RequestBody::RegisterNode),
      static_cast<int64_t>(RequestBody::NodeHeartbeat), static_cast<int64_t>(RequestBody::Allocate),
      static_cast<int64_t>(RequestBody::ReleaseLease), static_cast<int64_t>(RequestBody::DrainNode),
      static_cast<int64_t>(RequestBody::ListNodes)};
  static fuzz::ServiceUnderFuzz<broker::BrokerShell> service("broker.endpoint", "broker.data",
                                                              {"broker.metrics_ms=0"});
  static const std::vector<fuzz::EventKind> events = {{fb::Payload::RunStarted, "run."}, {fb::Payload::RunFinished, "run."}};
  fuzz::fuzz_one(service, data, size, mine, events);
  return 0;
}

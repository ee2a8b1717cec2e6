// The metrics-aggregator's request dispatch with its real handlers behind
// it: metric lists, series queries (downsampled, any step range) and
// comparisons against a real store in a temporary RocksDB. Requests are
// built from the schema, mostly of the types the aggregator takes.
#include "fb_generator.h"
#include "service_harness.h"
#include "shell.h"
#include "trainyard/fb/request_bfbs_generated.h"

using namespace trainyard;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using fb::RequestBody;
  static const fuzz::MessageGenerator gen({fb::RequestBinarySchema::data(), fb::RequestBinarySchema::size()}, "TYRQ");
  static const std::vector<int64_t> mine = {
      static_cast<int64_t>(RequestBody::Ping), static_cast<int64_t>(RequestBody::ListMetrics),
      static_cast<int64_t>(RequestBody::QuerySeries), static_cast<int64_t>(RequestBody::CompareRuns)};
  static fuzz::ServiceUnderFuzz<metrics::AggregatorShell> service("metrics.endpoint", "metrics.data", {});
  FuzzedDataProvider in(data, size);
  service.send(in.ConsumeBool() ? gen.build(in, mine) : in.ConsumeRemainingBytes<uint8_t>());
  return 0;
}

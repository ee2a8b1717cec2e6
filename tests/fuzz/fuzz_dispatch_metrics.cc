// The metrics-aggregator's request dispatch with its real handlers behind
// it: metric lists, series queries (downsampled, any step range) and
// comparisons against a real store in a temporary RocksDB. Requests are
// built from the schema, mostly of the types the aggregator takes; metric
// batches and job.submitted arrive through the real subscriber.
#include "service_harness.h"
#include "shell.h"

using namespace trainyard;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using fb::RequestBody;
  static const std::vector<int64_t> mine = {
      static_cast<int64_t>(RequestBody::Ping), static_cast<int64_t>(RequestBody::ListMetrics),
      static_cast<int64_t>(RequestBody::QuerySeries), static_cast<int64_t>(RequestBody::CompareRuns)};
  static fuzz::ServiceUnderFuzz<metrics::AggregatorShell> service("metrics.endpoint", "metrics.data", {});
  static const std::vector<fuzz::EventKind> events = {{fb::Payload::MetricBatch, "metric."}, {fb::Payload::JobSubmitted, "job."}};
  fuzz::fuzz_one(service, data, size, mine, events);
  return 0;
}

// The scheduler's request dispatch with its real handlers behind it:
// submissions (arrays, dependencies, limits), cancels, holds, releases,
// gets and paged queries against a real job table in a temporary RocksDB,
// with a cycle every 10 ms. Requests are built from the schema,
// mostly of the types the scheduler takes; node.*, lease.*, run.* and
// account.* events arrive through the real subscriber.
#include "service_harness.h"
#include "shell.h"

using namespace trainyard;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using fb::RequestBody;
  static const std::vector<int64_t> mine = {
      static_cast<int64_t>(RequestBody::Ping),      static_cast<int64_t>(RequestBody::SubmitJob),
      static_cast<int64_t>(RequestBody::CancelJob), static_cast<int64_t>(RequestBody::HoldJob),
      static_cast<int64_t>(RequestBody::ReleaseJob), static_cast<int64_t>(RequestBody::GetJob),
      static_cast<int64_t>(RequestBody::QueryJobs), static_cast<int64_t>(RequestBody::RequeueJob)};
  // No broker answers: allocations time out quickly and jobs stay pending,
  // which keeps the table growing as the fuzzer submits.
  static fuzz::ServiceUnderFuzz<scheduler::SchedulerShell> service(
      "scheduler.endpoint", "scheduler.data",
      {"scheduler.cycle_ms=10", "scheduler.allocate_timeout_ms=50", "scheduler.max_submit_jobs_per_user=2000"});
  static const std::vector<fuzz::EventKind> events = {{fb::Payload::NodeUp, "node."},         {fb::Payload::NodeDown, "node."},
      {fb::Payload::NodeDrained, "node."},    {fb::Payload::LeaseGranted, "lease.n1."},
      {fb::Payload::LeaseRevoked, "lease.n1."}, {fb::Payload::LeaseReleased, "lease.n1."},
      {fb::Payload::LeaseLost, "lease.n1."},  {fb::Payload::RunStarted, "run."},
      {fb::Payload::RunFinished, "run."},     {fb::Payload::AccountWarning, "account."},
      {fb::Payload::AccountBlocked, "account."}};
  fuzz::fuzz_one(service, data, size, mine, events);
  return 0;
}

// Billing's request dispatch with its real handlers behind it: usage
// queries, invoices, estimates, budgets, reloads, against a real ledger in
// a temporary RocksDB. Requests are built from the schema, mostly of the
// types billing takes, so the fuzzer reaches the handlers; events (usage
// ticks, job.*) arrive through the real subscriber and charge the ledger.
#include "service_harness.h"
#include "shell.h"

using namespace trainyard;

namespace {

std::string rates_file() {
  static const std::string path = [] {
    std::string p = std::filesystem::temp_directory_path() / ("ty-fuzz-rates-" + std::to_string(getpid()) + ".toml");
    std::FILE* f = std::fopen(p.c_str(), "w");
    std::fputs("currency = \"EUR\"\n[[period]]\nfrom = 2020-01-01\ncpu_core_hour = \"0.04\"\nmemory_gb_hour = \"0.01\"\n"
               "[period.gpu_hour]\nA100 = \"2.50\"\ndefault = \"1.00\"\n",
               f);
    std::fclose(f);
    return p;
  }();
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using fb::RequestBody;
  static const std::vector<int64_t> mine = {
      static_cast<int64_t>(RequestBody::Ping),         static_cast<int64_t>(RequestBody::QueryUsage),
      static_cast<int64_t>(RequestBody::GetInvoice),   static_cast<int64_t>(RequestBody::EstimateCost),
      static_cast<int64_t>(RequestBody::SetBudget),    static_cast<int64_t>(RequestBody::ReloadRates)};
  static fuzz::ServiceUnderFuzz<billing::BillingShell> service(
      "billing.endpoint", "billing.data", {"billing.rates=" + rates_file(), "billing.currency=EUR"});
  static const std::vector<fuzz::EventKind> events = {{fb::Payload::UsageTick, "usage."}, {fb::Payload::JobSubmitted, "job."}, {fb::Payload::JobStateChanged, "job."}};
  fuzz::fuzz_one(service, data, size, mine, events);
  return 0;
}

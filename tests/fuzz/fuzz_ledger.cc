// Billing's exact arithmetic under forged usage ticks: any gpus, cpus,
// memory and interval. A tick is either refused or charged, and no total
// ever goes negative (signed overflow would make one).
#include <cstdlib>
#include <map>

#include <fuzzer/FuzzedDataProvider.h>

#include "core/ledger.h"
#include "core/rate_card.h"

using namespace trainyard::billing;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const RateCard card = *RateCard::parse(
      "currency = \"EUR\"\n[[period]]\nfrom = 2020-01-01\ncpu_core_hour = \"999999\"\nmemory_gb_hour = \"999999\"\n"
      "[period.gpu_hour]\ndefault = \"999999\"\n",
      "fuzz");
  std::map<std::string, std::string, std::less<>> stored;
  auto read = [&](std::string_view k) -> std::optional<std::string> {
    auto it = stored.find(k);
    return it == stored.end() ? std::nullopt : std::optional<std::string>(it->second);
  };
  Ledger ledger(read, read);
  FuzzedDataProvider in(data, size);
  while (in.remaining_bytes() > 0) {
    Usage u;
    u.account = "a";
    u.user = "u";
    u.gpu_type = "A100";
    u.job = in.ConsumeIntegral<uint8_t>();
    u.gpus = in.ConsumeIntegral<uint32_t>();
    u.cpus = in.ConsumeIntegral<uint32_t>();
    u.memory_mb = in.ConsumeIntegral<uint64_t>();
    u.start_ns = in.ConsumeIntegral<int64_t>();
    int64_t length = in.ConsumeIntegral<int64_t>();
    if (!in.ConsumeBool() || __builtin_add_overflow(u.start_ns, length, &u.end_ns)) u.end_ns = length;
    auto r = ledger.charge(u, card);
    if (r.ok() && r->cost_micros < 0) std::abort();
  }
  for (const auto& [key, micros] : ledger.drain().spends)
    if (micros < 0) std::abort();
  return 0;
}

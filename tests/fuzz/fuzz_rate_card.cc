// Billing's rate card parser: any text as rates.toml.
#include "core/rate_card.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto card = trainyard::billing::RateCard::parse(text, "fuzz.toml");
  (void)card;
  return 0;
}

// The rate card: what an hour of each resource costs, per price period
// (effective from a UTC date), with multipliers per partition. Parsed from
// TOML with errors naming the file and line; see rates.example.toml.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace trainyard::billing {

// The prices in force from `from_day` until the next period. Every period
// is complete: what a [[period]] does not list carries over from the one
// before it.
struct PricePeriod {
  uint32_t from_day = 0;                                        // days since 1970-01-01 UTC
  int64_t cpu_core_hour = 0;                                    // micro-units per core-hour
  int64_t memory_gb_hour = 0;                                   // micro-units per GB-hour (1 GB = 1024 MB)
  std::map<std::string, int64_t, std::less<>> gpu_hour;         // micro-units per GPU-hour, by type
  std::map<std::string, int64_t, std::less<>> partition_ppm;    // multiplier in millionths; absent: 1
};

class RateCard {
 public:
  // The GPU type key whose price applies to types the card does not list.
  static constexpr std::string_view kDefaultGpu = "default";
  static constexpr int64_t kMaxPriceUnits = 1'000'000;  // per hour
  static constexpr int64_t kMaxMultiplier = 100;

  // Parses a card; `source` names it in errors ("rates.toml line 7: ...").
  static Result<RateCard> parse(std::string_view text, const std::string& source);

  // The currency the card names ("" when it names none).
  const std::string& currency() const { return currency_; }
  const std::vector<PricePeriod>& periods() const { return periods_; }
  // The period in force on `day`; days before the first period's date use
  // the first period.
  const PricePeriod& period_at(uint32_t day) const;

  // Price per GPU-hour of `type` (or of "default"); nullopt when the card
  // prices neither.
  static std::optional<int64_t> gpu_price(const PricePeriod& p, std::string_view type);
  // Multiplier of `partition` in millionths (1,000,000 when not listed).
  static int64_t multiplier_ppm(const PricePeriod& p, std::string_view partition);

 private:
  std::string currency_;
  std::vector<PricePeriod> periods_;  // ascending from_day, at least one
};

}  // namespace trainyard::billing

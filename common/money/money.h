// Money and ratios as exact integers: prices in micro-units of the currency
// (1 EUR = 1,000,000), multipliers in parts per million. Decimal text is
// parsed digit by digit, never through a floating-point number.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "util/status.h"

namespace trainyard {

inline constexpr int64_t kMicros = 1'000'000;  // micro-units per unit; also ppm per 1.0

// Parses a non-negative decimal with at most 6 fractional digits ("2.50",
// "3", "0.000001") into millionths (2500000). Refuses signs, exponents,
// more than 6 decimals and values above `max_units` whole units; the error
// says what is wrong with `text`.
Result<int64_t> parse_millionths(std::string_view text, int64_t max_units);

// 2500000 -> "2.50"; keeps at least two decimals and every non-zero one.
std::string format_micros(int64_t micros);

}  // namespace trainyard

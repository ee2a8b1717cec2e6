// UTC calendar arithmetic (billing, dated cloud prices): days since 1970-01-01 (the ledger's
// day), months as yyyymm (budgets, invoices) and their text forms.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace trainyard {

inline constexpr int64_t kNsPerMs = 1'000'000;
inline constexpr int64_t kNsPerHour = 3'600'000'000'000;
inline constexpr int64_t kNsPerDay = 86'400'000'000'000;

// Days since 1970-01-01 of a civil date (proleptic Gregorian).
int64_t days_from_civil(int64_t y, unsigned m, unsigned d);
struct CivilDate {
  int64_t year;
  unsigned month;
  unsigned day;
};
CivilDate civil_from_days(int64_t days);

// The UTC day holding `ns` (ns >= 0).
inline uint32_t day_of(int64_t ns) { return static_cast<uint32_t>(ns / kNsPerDay); }
// The first ns of `day`; INT64_MAX for the days past the int64 range (from
// 2262-04-12), so that "the start of the next day" of the last day bounds
// an interval instead of overflowing.
inline int64_t day_start_ns(uint32_t day) {
  constexpr int64_t kLastDay = INT64_MAX / kNsPerDay;
  return day > kLastDay ? INT64_MAX : static_cast<int64_t>(day) * kNsPerDay;
}

// Months as yyyymm (202611).
uint32_t month_of_day(uint32_t day);
inline uint32_t month_of(int64_t ns) { return month_of_day(day_of(ns)); }
// First day of the month and first day of the next one.
uint32_t month_first_day(uint32_t month);
uint32_t month_end_day(uint32_t month);

std::string format_day(uint32_t day);      // "2026-11-03"
std::string format_month(uint32_t month);  // "2026-11"
// "2026-11-03" -> day; nullopt if it is not a valid date.
std::optional<uint32_t> parse_day(std::string_view s);
// "2026-11" -> 202611; nullopt if it is not a valid month.
std::optional<uint32_t> parse_month(std::string_view s);

}  // namespace trainyard

#include "calendar/calendar.h"

#include <cstdio>

namespace trainyard {

// Howard Hinnant's civil-date algorithms (public domain).
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

CivilDate civil_from_days(int64_t z) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  return {y + (m <= 2), m, d};
}

uint32_t month_of_day(uint32_t day) {
  auto c = civil_from_days(day);
  return static_cast<uint32_t>(c.year * 100 + c.month);
}

uint32_t month_first_day(uint32_t month) {
  return static_cast<uint32_t>(days_from_civil(month / 100, month % 100, 1));
}

uint32_t month_end_day(uint32_t month) {
  unsigned y = month / 100, m = month % 100;
  return m == 12 ? static_cast<uint32_t>(days_from_civil(y + 1, 1, 1))
                 : static_cast<uint32_t>(days_from_civil(y, m + 1, 1));
}

std::string format_day(uint32_t day) {
  auto c = civil_from_days(day);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04lld-%02u-%02u", static_cast<long long>(c.year), c.month, c.day);
  return buf;
}

std::string format_month(uint32_t month) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04u-%02u", month / 100, month % 100);
  return buf;
}

namespace {

bool digits(std::string_view s, unsigned* out) {
  if (s.empty()) return false;
  unsigned v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  *out = v;
  return true;
}

}  // namespace

std::optional<uint32_t> parse_month(std::string_view s) {
  unsigned y = 0, m = 0;
  if (s.size() != 7 || s[4] != '-' || !digits(s.substr(0, 4), &y) || !digits(s.substr(5, 2), &m)) return std::nullopt;
  if (y < 1970 || m < 1 || m > 12) return std::nullopt;
  return y * 100 + m;
}

std::optional<uint32_t> parse_day(std::string_view s) {
  unsigned d = 0;
  if (s.size() != 10 || s[7] != '-' || !digits(s.substr(8, 2), &d)) return std::nullopt;
  auto month = parse_month(s.substr(0, 7));
  if (!month || d < 1) return std::nullopt;
  uint32_t first = month_first_day(*month);
  if (first + d - 1 >= month_end_day(*month)) return std::nullopt;
  return first + d - 1;
}

}  // namespace trainyard

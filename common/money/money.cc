#include "money/money.h"

namespace trainyard {

Result<int64_t> parse_millionths(std::string_view text, int64_t max_units) {
  auto bad = [&](const std::string& why) { return Status::invalid("\"" + std::string(text) + "\" " + why); };
  if (text.empty()) return bad("is empty: write a decimal such as \"2.50\"");
  size_t dot = text.find('.');
  std::string_view whole = text.substr(0, dot);
  std::string_view frac = dot == std::string_view::npos ? std::string_view() : text.substr(dot + 1);
  if (whole.empty()) return bad("has no digits before the decimal point: write \"0.5\", not \".5\"");
  if (dot != std::string_view::npos && frac.empty()) return bad("ends in a decimal point");
  if (frac.size() > 6) return bad("has more than 6 decimals: amounts are exact to a millionth");
  int64_t units = 0;
  for (char c : whole) {
    if (c < '0' || c > '9') return bad("is not a non-negative decimal number (digits and one '.')");
    units = units * 10 + (c - '0');
    if (units > max_units) return bad("is above the limit of " + std::to_string(max_units));
  }
  int64_t millionths = 0;
  int64_t scale = kMicros;
  for (char c : frac) {
    if (c < '0' || c > '9') return bad("is not a non-negative decimal number (digits and one '.')");
    scale /= 10;
    millionths += (c - '0') * scale;
  }
  int64_t v = units * kMicros + millionths;
  if (v > max_units * kMicros) return bad("is above the limit of " + std::to_string(max_units));
  return v;
}

std::string format_micros(int64_t micros) {
  bool neg = micros < 0;
  uint64_t m = neg ? static_cast<uint64_t>(-(micros + 1)) + 1 : static_cast<uint64_t>(micros);
  std::string frac = std::to_string(m % kMicros);
  frac.insert(0, 6 - frac.size(), '0');
  while (frac.size() > 2 && frac.back() == '0') frac.pop_back();
  return (neg ? "-" : "") + std::to_string(m / kMicros) + "." + frac;
}

}  // namespace trainyard

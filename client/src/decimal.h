// Decimal numbers as a submission writes them (private to client/src).
#pragma once

#include <charconv>
#include <cstdint>
#include <optional>
#include <string_view>

namespace trainyard::client::detail {

// A non-negative decimal integer, all of `s`.
inline std::optional<uint64_t> to_u64(std::string_view s) {
  if (s.empty()) return std::nullopt;
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace trainyard::client::detail

#include "core/array_spec.h"

#include <algorithm>
#include <charconv>
#include <string>

namespace trainyard::scheduler {
namespace {

bool parse_int(std::string_view s, int64_t* out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

Status bad(std::string_view text, const std::string& why) {
  return Status::invalid("array: '" + std::string(text) + "' " + why +
                         " (expected e.g. \"0-99%8\", \"1,3,5\" or \"0-15:4\")");
}

}  // namespace

Result<ArraySpec> parse_array(std::string_view text, uint32_t max_size) {
  ArraySpec out;
  std::string_view list = text;
  if (auto pct = text.find('%'); pct != std::string_view::npos) {
    int64_t n = 0;
    if (!parse_int(text.substr(pct + 1), &n) || n < 1) return bad(text, "has a bad limit after '%'");
    out.max_running = static_cast<uint32_t>(std::min<int64_t>(n, UINT32_MAX));
    list = text.substr(0, pct);
  }
  if (list.empty()) return bad(text, "lists no index");
  size_t start = 0;
  while (start <= list.size()) {
    auto comma = list.find(',', start);
    if (comma == std::string_view::npos) comma = list.size();
    std::string_view part = list.substr(start, comma - start);
    int64_t step = 1;
    if (auto colon = part.find(':'); colon != std::string_view::npos) {
      if (!parse_int(part.substr(colon + 1), &step) || step < 1) return bad(text, "has a bad step after ':'");
      part = part.substr(0, colon);
    }
    int64_t lo = 0, hi = 0;
    if (auto dash = part.find('-'); dash != std::string_view::npos) {
      if (!parse_int(part.substr(0, dash), &lo) || !parse_int(part.substr(dash + 1), &hi)) {
        return bad(text, "has a bad range '" + std::string(part) + "'");
      }
    } else {
      if (!parse_int(part, &lo)) return bad(text, "has a bad index '" + std::string(part) + "'");
      hi = lo;
    }
    if (lo < 0 || hi < lo) return bad(text, "has a range that is empty or negative");
    if (hi > INT32_MAX) return bad(text, "has an index that is too large");
    if ((hi - lo) / step + 1 + static_cast<int64_t>(out.indices.size()) > max_size) {
      return bad(text, "has more than " + std::to_string(max_size) + " tasks (scheduler.max_array_size)");
    }
    for (int64_t i = lo; i <= hi; i += step) out.indices.push_back(static_cast<int32_t>(i));
    start = comma + 1;
  }
  std::sort(out.indices.begin(), out.indices.end());
  out.indices.erase(std::unique(out.indices.begin(), out.indices.end()), out.indices.end());
  return out;
}

}  // namespace trainyard::scheduler

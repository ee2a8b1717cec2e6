#include "text/gpu_type.h"

#include <algorithm>

namespace trainyard::text {
namespace {

char upper(char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c; }

}  // namespace

std::string gpu_type_key(std::string_view type) {
  std::string out(type);
  for (auto& c : out) c = upper(c);
  return out;
}

bool same_gpu_type(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return upper(x) == upper(y); });
}

}  // namespace trainyard::text

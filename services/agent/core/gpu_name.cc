#include "core/gpu_name.h"

#include <vector>

namespace trainyard::agent {

std::string gpu_type_from_name(std::string_view name) {
  std::vector<std::string> words;
  std::string w;
  for (char c : name) {
    if (c == ' ') {
      if (!w.empty()) words.push_back(w);
      w.clear();
    } else {
      w.push_back(c);
    }
  }
  if (!w.empty()) words.push_back(w);
  // Vendor and product-line words carry no type.
  std::vector<std::string> kept;
  for (auto& x : words) {
    if (x == "NVIDIA" || x == "Tesla" || x == "GeForce" || x == "Quadro") continue;
    kept.push_back(x);
  }
  if (kept.empty()) return std::string(name);
  std::string first = kept[0];
  // "RTX 4090": the model number follows the line; "RTX A6000": the model is a word of its own.
  if ((first == "RTX" || first == "GTX" || first == "TITAN") && kept.size() > 1) {
    const std::string& next = kept[1];
    bool digits = !next.empty() && next[0] >= '0' && next[0] <= '9';
    return digits ? first + next.substr(0, next.find('-')) : next.substr(0, next.find('-'));
  }
  return first.substr(0, first.find('-'));
}

}  // namespace trainyard::agent

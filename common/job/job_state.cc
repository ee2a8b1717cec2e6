#include "job/job_state.h"

#include <cctype>

namespace trainyard {

std::string state_name(fb::JobState s) {
  const char* name = fb::EnumNameJobState(s);
  std::string out;
  for (size_t i = 0; name[i] != '\0'; ++i) {
    auto c = static_cast<unsigned char>(name[i]);
    if (std::isupper(c) && i > 0) out += '_';
    out += static_cast<char>(std::tolower(c));
  }
  return out.empty() ? "unknown" : out;
}

std::optional<fb::JobState> parse_state(std::string_view text) {
  auto folded = [](std::string_view s) {
    std::string out;
    for (char c : s) {
      if (c != '_' && c != '-') out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return out;
  };
  std::string want = folded(text);
  if (want.empty()) return std::nullopt;
  for (auto s : fb::EnumValuesJobState()) {
    if (folded(fb::EnumNameJobState(s)) == want) return s;
  }
  return std::nullopt;
}

bool is_terminal(fb::JobState s) {
  switch (s) {
    case fb::JobState::Succeeded:
    case fb::JobState::Failed:
    case fb::JobState::Cancelled:
    case fb::JobState::TimedOut:
    case fb::JobState::NodeFailure:
      return true;
    default:
      return false;
  }
}

}  // namespace trainyard

// Lets Boost.Test print the enums the broker tests compare.
#pragma once

#include <ostream>

#include "trainyard/fb/common_generated.h"

namespace trainyard::fb {
inline std::ostream& operator<<(std::ostream& os, ErrorCode c) { return os << EnumNameErrorCode(c); }
}  // namespace trainyard::fb

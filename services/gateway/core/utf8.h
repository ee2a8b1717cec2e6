// Strings from users and jobs (job names, metric names, log text) may hold
// bytes that are not UTF-8; what the gateway writes as text must be UTF-8.
#pragma once

#include <string>
#include <string_view>

namespace trainyard::gateway {

// `s` with every byte that does not start or continue a valid UTF-8 sequence
// (overlong forms, UTF-16 surrogates and code points past U+10FFFF included)
// replaced by U+FFFD.
std::string valid_utf8(std::string_view s);

}  // namespace trainyard::gateway

// UTF-8 checks for strings that come from users and jobs (job names, metric
// names, labels, log lines): refused or replaced at ingest, so nothing
// downstream (JSON output, Prometheus labels, the dashboard) meets bytes it
// cannot encode.
#pragma once

#include <string>
#include <string_view>

namespace trainyard::text {

// True when `s` is well-formed UTF-8 (RFC 3629: no overlong forms, no
// surrogates, nothing above U+10FFFF).
bool valid_utf8(std::string_view s);

// `s` with each ill-formed sequence replaced by U+FFFD.
std::string replace_invalid_utf8(std::string_view s);

}  // namespace trainyard::text

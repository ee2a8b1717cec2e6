// GPU type names ("A100", "h100", "RTX4090") as users and nodes spell them:
// one rule, used everywhere a type is compared, so `--gres=gpu:a100:1`
// finds the node that reports "A100".
#pragma once

#include <string>
#include <string_view>

namespace trainyard::text {

// The form types compare in: ASCII upper case ("a100" -> "A100").
std::string gpu_type_key(std::string_view type);

// Whether two spellings name the same GPU type (case-insensitive).
bool same_gpu_type(std::string_view a, std::string_view b);

}  // namespace trainyard::text

// GPU names as NVML reports them ("NVIDIA A100-SXM4-80GB") turned into the
// short types users ask for in a job spec ("A100"). Pure.
#pragma once

#include <string>
#include <string_view>

namespace trainyard::agent {

// "NVIDIA A100-SXM4-80GB" -> "A100", "NVIDIA H100 80GB HBM3" -> "H100",
// "Tesla V100-SXM2-16GB" -> "V100", "NVIDIA GeForce RTX 4090" -> "RTX4090",
// "NVIDIA RTX A6000" -> "A6000", "NVIDIA L40S" -> "L40S".
std::string gpu_type_from_name(std::string_view name);

}  // namespace trainyard::agent

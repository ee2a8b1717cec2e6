// NVIDIA's management library, loaded with dlopen when the host has it, so
// the agent builds and runs on machines without GPUs or NVIDIA headers.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "util/status.h"

namespace trainyard::agent {

class Nvml {
 public:
  struct Device {
    uint32_t index = 0;
    std::string name;       // "NVIDIA A100-SXM4-80GB"
    std::string uuid;
    uint64_t memory_mb = 0;
  };
  struct Sample {
    double util_percent = 0;
    double memory_used_mb = 0;
  };

  // The loaded library, or Unavailable when libnvidia-ml.so.1 is absent or
  // nvmlInit fails (the message says which). Never null on success.
  static Result<std::unique_ptr<Nvml>> load();
  ~Nvml();
  Nvml(const Nvml&) = delete;
  Nvml& operator=(const Nvml&) = delete;

  std::vector<Device> devices();
  // Utilisation and used memory of the GPU at NVML index `index`.
  std::optional<Sample> sample(uint32_t index);

 private:
  Nvml() = default;
  struct Api;
  void* lib_ = nullptr;
  std::unique_ptr<Api> api_;
};

}  // namespace trainyard::agent

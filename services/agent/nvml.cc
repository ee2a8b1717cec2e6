#include "nvml.h"

#include <dlfcn.h>

namespace trainyard::agent {
namespace {

// The few NVML declarations the agent needs, from NVML's stable C ABI.
using nvmlReturn = int;  // 0: NVML_SUCCESS
using nvmlDevice = struct nvmlDevice_st*;
struct nvmlMemory {
  unsigned long long total;
  unsigned long long free;
  unsigned long long used;
};
struct nvmlUtilization {
  unsigned int gpu;
  unsigned int memory;
};
using InitFn = nvmlReturn (*)();
using ShutdownFn = nvmlReturn (*)();
using CountFn = nvmlReturn (*)(unsigned int*);
using HandleFn = nvmlReturn (*)(unsigned int, nvmlDevice*);
using NameFn = nvmlReturn (*)(nvmlDevice, char*, unsigned int);
using MemoryFn = nvmlReturn (*)(nvmlDevice, nvmlMemory*);
using UtilFn = nvmlReturn (*)(nvmlDevice, nvmlUtilization*);

}  // namespace

struct Nvml::Api {
  InitFn init = nullptr;
  ShutdownFn shutdown = nullptr;
  CountFn count = nullptr;
  HandleFn handle = nullptr;
  NameFn name = nullptr;
  NameFn uuid = nullptr;
  MemoryFn memory = nullptr;
  UtilFn util = nullptr;
};

Result<std::unique_ptr<Nvml>> Nvml::load() {
  void* lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib) return Status::unavailable("libnvidia-ml.so.1 not found");
  auto api = std::make_unique<Api>();
  auto sym = [&](const char* n) { return dlsym(lib, n); };
  api->init = reinterpret_cast<InitFn>(sym("nvmlInit_v2"));
  api->shutdown = reinterpret_cast<ShutdownFn>(sym("nvmlShutdown"));
  api->count = reinterpret_cast<CountFn>(sym("nvmlDeviceGetCount_v2"));
  api->handle = reinterpret_cast<HandleFn>(sym("nvmlDeviceGetHandleByIndex_v2"));
  api->name = reinterpret_cast<NameFn>(sym("nvmlDeviceGetName"));
  api->uuid = reinterpret_cast<NameFn>(sym("nvmlDeviceGetUUID"));
  api->memory = reinterpret_cast<MemoryFn>(sym("nvmlDeviceGetMemoryInfo"));
  api->util = reinterpret_cast<UtilFn>(sym("nvmlDeviceGetUtilizationRates"));
  if (!api->init || !api->shutdown || !api->count || !api->handle || !api->name || !api->uuid || !api->memory ||
      !api->util) {
    dlclose(lib);
    return Status::unavailable("libnvidia-ml.so.1 lacks a function the agent needs (driver too old?)");
  }
  if (int rc = api->init(); rc != 0) {
    dlclose(lib);
    return Status::unavailable("nvmlInit_v2 failed with code " + std::to_string(rc));
  }
  std::unique_ptr<Nvml> n(new Nvml());
  n->lib_ = lib;
  n->api_ = std::move(api);
  return n;
}

Nvml::~Nvml() {
  if (api_) api_->shutdown();
  if (lib_) dlclose(lib_);
}

std::vector<Nvml::Device> Nvml::devices() {
  std::vector<Device> out;
  unsigned int n = 0;
  if (api_->count(&n) != 0) return out;
  for (unsigned int i = 0; i < n; ++i) {
    nvmlDevice h = nullptr;
    if (api_->handle(i, &h) != 0) continue;
    Device d;
    d.index = i;
    char buf[256] = {};
    if (api_->name(h, buf, sizeof buf) == 0) d.name = buf;
    char ubuf[256] = {};
    if (api_->uuid(h, ubuf, sizeof ubuf) == 0) d.uuid = ubuf;
    nvmlMemory m{};
    if (api_->memory(h, &m) == 0) d.memory_mb = m.total / (1024 * 1024);
    out.push_back(std::move(d));
  }
  return out;
}

std::optional<Nvml::Sample> Nvml::sample(uint32_t index) {
  nvmlDevice h = nullptr;
  if (api_->handle(index, &h) != 0) return std::nullopt;
  nvmlUtilization u{};
  nvmlMemory m{};
  if (api_->util(h, &u) != 0 || api_->memory(h, &m) != 0) return std::nullopt;
  return Sample{static_cast<double>(u.gpu), static_cast<double>(m.used) / (1024.0 * 1024.0)};
}

}  // namespace trainyard::agent

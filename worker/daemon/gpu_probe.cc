#include "worker/daemon/gpu_probe.h"

#include <dlfcn.h>

#include "common/log.h"

namespace pendulum::daemon {
namespace {
// The few NVML declarations we need (ABI-stable since NVML 5).
using nvmlReturn_t = int;
using nvmlDevice_t = void*;
struct nvmlMemory_t {
  unsigned long long total, free, used;
};
struct nvmlUtilization_t {
  unsigned int gpu, memory;
};
}  // namespace

struct GpuProbe::Api {
  nvmlReturn_t (*init)() = nullptr;
  nvmlReturn_t (*shutdown)() = nullptr;
  nvmlReturn_t (*count)(unsigned int*) = nullptr;
  nvmlReturn_t (*handle)(unsigned int, nvmlDevice_t*) = nullptr;
  nvmlReturn_t (*name)(nvmlDevice_t, char*, unsigned int) = nullptr;
  nvmlReturn_t (*memory)(nvmlDevice_t, nvmlMemory_t*) = nullptr;
  nvmlReturn_t (*util)(nvmlDevice_t, nvmlUtilization_t*) = nullptr;
};

GpuProbe::GpuProbe() {
  void* lib = ::dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    const char* err = ::dlerror();
    reason_ = err ? err : "libnvidia-ml.so.1 not found";
    return;
  }
  auto api = std::make_unique<Api>();
  api->init = reinterpret_cast<nvmlReturn_t (*)()>(::dlsym(lib, "nvmlInit_v2"));
  api->shutdown = reinterpret_cast<nvmlReturn_t (*)()>(::dlsym(lib, "nvmlShutdown"));
  api->count = reinterpret_cast<nvmlReturn_t (*)(unsigned int*)>(::dlsym(lib, "nvmlDeviceGetCount_v2"));
  api->handle = reinterpret_cast<nvmlReturn_t (*)(unsigned int, nvmlDevice_t*)>(
      ::dlsym(lib, "nvmlDeviceGetHandleByIndex_v2"));
  api->name = reinterpret_cast<nvmlReturn_t (*)(nvmlDevice_t, char*, unsigned int)>(
      ::dlsym(lib, "nvmlDeviceGetName"));
  api->memory = reinterpret_cast<nvmlReturn_t (*)(nvmlDevice_t, nvmlMemory_t*)>(
      ::dlsym(lib, "nvmlDeviceGetMemoryInfo"));
  api->util = reinterpret_cast<nvmlReturn_t (*)(nvmlDevice_t, nvmlUtilization_t*)>(
      ::dlsym(lib, "nvmlDeviceGetUtilizationRates"));
  if (!api->init || !api->count || !api->handle || !api->name || !api->memory) {
    reason_ = "libnvidia-ml.so.1 lacks the expected NVML symbols";
    ::dlclose(lib);
    return;
  }
  if (const int rc = api->init(); rc != 0) {
    reason_ = "nvmlInit_v2 failed with NVML code " + std::to_string(rc);
    ::dlclose(lib);
    return;
  }
  lib_ = lib;
  api_ = std::move(api);
}

GpuProbe::~GpuProbe() {
  if (lib_ == nullptr) return;
  if (api_->shutdown) api_->shutdown();
  ::dlclose(lib_);
}

std::vector<v1::GpuInfo> GpuProbe::Query() const {
  std::vector<v1::GpuInfo> gpus;
  if (lib_ == nullptr) return gpus;
  unsigned int count = 0;
  if (api_->count(&count) != 0) return gpus;
  for (unsigned int i = 0; i < count; ++i) {
    nvmlDevice_t dev = nullptr;
    if (api_->handle(i, &dev) != 0) continue;
    v1::GpuInfo info;
    info.set_index(i);
    char name[96] = {0};
    if (api_->name(dev, name, sizeof(name)) == 0) info.set_name(name);
    nvmlMemory_t mem{};
    if (api_->memory(dev, &mem) == 0) {
      info.set_memory_mb(mem.total >> 20);
      info.set_memory_used_mb(mem.used >> 20);
    }
    nvmlUtilization_t util{};
    if (api_->util && api_->util(dev, &util) == 0) info.set_utilization(util.gpu / 100.0);
    gpus.push_back(std::move(info));
  }
  return gpus;
}

std::vector<v1::GpuInfo> FakeGpus(int count) {
  std::vector<v1::GpuInfo> gpus;
  for (int i = 0; i < count; ++i) {
    v1::GpuInfo info;
    info.set_index(static_cast<uint32_t>(i));
    info.set_name("fake-gpu");
    gpus.push_back(std::move(info));
  }
  return gpus;
}

}  // namespace pendulum::daemon

// The CUDA runtime of the CPU emulator: one device, host memory as device memory, kernels run
// synchronously by the fiber scheduler once the launch passed the checks a GPU makes. This file
// holds errors, device queries, kernel registration, attributes and launches; device memory,
// memory pools and stream/event handles are in device_memory.cpp (state in runtime_state.h).
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "emulator/control.h"
#include "emulator/runtime.h"
#include "emulator/runtime_state.h"
#include "emulator/scheduler.h"

namespace ipdpp::emu {
using namespace runtime_state;

namespace runtime_state {

std::mutex g_mutex;
DeviceLimits g_limits;
std::map<void*, std::size_t> g_allocations;
std::size_t g_allocated = 0;
std::string g_fault;

}  // namespace runtime_state
namespace {

std::mutex g_execution_mutex;
std::map<const void*, KernelInfo> g_kernels;  // guarded by g_mutex, as is g_log
std::vector<LaunchRecord> g_log;
std::atomic<std::uint64_t> g_launches{0};

constexpr std::size_t kMaxLogEntries = 100000;

thread_local cudaError_t t_last_error = cudaSuccess;
thread_local cudaError_t t_detail_code = cudaSuccess;
thread_local std::string t_detail;

}  // namespace

cudaError_t runtime_state::record(cudaError_t code, std::string detail) {
  t_last_error = code;
  t_detail_code = code;
  t_detail = "ipdpp emulator: " + std::move(detail);
  return code;
}

cudaError_t runtime_state::take_fault() {
  std::string fault;
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    fault.swap(g_fault);
  }
  if (fault.empty()) return cudaSuccess;
  return record(cudaErrorIllegalAddress, fault);
}

std::string runtime_state::bytes_text(std::size_t bytes) {
  return std::to_string(bytes) + " bytes";
}

namespace {

KernelInfo* find_kernel_locked(const void* kernel) {
  auto it = g_kernels.find(kernel);
  if (it == g_kernels.end()) return nullptr;
  if (!it->second.probed) probe_kernel(it->second, kernel);
  return &it->second;
}

cudaError_t unknown_kernel(const char* call) {
  return record(cudaErrorInvalidDeviceFunction,
                std::string(call) + ": the pointer is not a kernel this build registered");
}

int occupancy_locked(const KernelInfo& k, int block_size, std::size_t dynamic_shared) {
  const DeviceLimits& d = g_limits;
  if (k.launch_bounds > 0 && block_size > k.launch_bounds) return 0;
  if (block_size > d.threads_per_block) return 0;
  const std::size_t shared = k.static_bytes + dynamic_shared;
  if (shared > static_cast<std::size_t>(d.shared_per_block_optin)) return 0;
  const int warps = (block_size + 31) / 32;
  const int by_threads = d.threads_per_multiprocessor / (warps * 32);
  const int by_shared = static_cast<int>(static_cast<std::size_t>(d.shared_per_multiprocessor) /
                                         (shared + d.reserved_shared_per_block));
  return std::min({by_threads, by_shared, d.blocks_per_multiprocessor});
}

}  // namespace

// ---- control.h -----------------------------------------------------------------------------

DeviceLimits device_limits() {
  std::lock_guard<std::mutex> lock(g_mutex);
  return g_limits;
}
void set_device_limits(const DeviceLimits& limits) {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_limits = limits;
}
std::vector<LaunchRecord> launch_log() {
  std::lock_guard<std::mutex> lock(g_mutex);
  return g_log;
}
void clear_launch_log() {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_log.clear();
}
std::size_t live_allocations() {
  std::lock_guard<std::mutex> lock(g_mutex);
  return g_allocations.size();
}

// ---- kernel_registry.h ----------------------------------------------------------------------

void register_kernel(const void* kernel, const char* name, InvokeFn invoke, ProbeFn probe) {
  std::lock_guard<std::mutex> lock(g_mutex);
  KernelInfo& info = g_kernels[kernel];
  if (info.invoke == nullptr) {
    info.invoke = invoke;
    info.probe = probe;
  }
  if (name != nullptr && info.name.empty()) info.name = name;
}

void set_last_error(int error) {
  if (error != cudaSuccess) t_last_error = static_cast<cudaError_t>(error);
}

int launch(const LaunchRequest& r, void* const* args) {
  KernelInfo snapshot;
  int per_multiprocessor = 0, multiprocessors = 0, optin = 0;
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    KernelInfo* k = find_kernel_locked(r.kernel);
    if (k == nullptr) return unknown_kernel("kernel launch");
    snapshot = *k;
    const unsigned threads = r.block[0] * r.block[1] * r.block[2];
    per_multiprocessor = occupancy_locked(*k, static_cast<int>(threads), r.dynamic_shared);
    multiprocessors = g_limits.multiprocessors;
    optin = g_limits.shared_per_block_optin;
  }
  const std::string name = snapshot.name.empty() ? "kernel" : snapshot.name;
  const std::uint64_t blocks = 1ull * r.grid[0] * r.grid[1] * r.grid[2];
  const std::uint64_t threads = 1ull * r.block[0] * r.block[1] * r.block[2];
  if (blocks == 0 || r.grid[0] > 0x7fffffffu || r.grid[1] > 65535 || r.grid[2] > 65535)
    return record(cudaErrorInvalidConfiguration,
                  "launch of " + name + ": invalid grid " + std::to_string(r.grid[0]) + "x" +
                      std::to_string(r.grid[1]) + "x" + std::to_string(r.grid[2]));
  if (threads == 0 || threads > 1024 || r.block[0] > 1024 || r.block[1] > 1024 || r.block[2] > 64)
    return record(cudaErrorInvalidConfiguration, "launch of " + name + ": invalid block of " +
                                                     std::to_string(threads) + " threads");
  if (snapshot.launch_bounds > 0 && threads > static_cast<std::uint64_t>(snapshot.launch_bounds))
    return record(cudaErrorLaunchOutOfResources,
                  "launch of " + name + " with " + std::to_string(threads) +
                      " threads per block; its __launch_bounds__ allows " +
                      std::to_string(snapshot.launch_bounds));
  if (r.dynamic_shared > static_cast<std::size_t>(snapshot.max_dynamic_shared))
    return record(cudaErrorInvalidValue,
                  "launch of " + name + " asks for " + bytes_text(r.dynamic_shared) +
                      " of dynamic shared memory; its cudaFuncAttributeMaxDynamicSharedMemorySize "
                      "allows " +
                      bytes_text(static_cast<std::size_t>(snapshot.max_dynamic_shared)));
  if (snapshot.static_bytes + r.dynamic_shared > static_cast<std::size_t>(optin))
    return record(cudaErrorInvalidValue,
                  "launch of " + name + ": " + bytes_text(snapshot.static_bytes) + " static + " +
                      bytes_text(r.dynamic_shared) + " dynamic shared memory exceed the device's " +
                      bytes_text(static_cast<std::size_t>(optin)) + " per block");
  if (r.cooperative && blocks > static_cast<std::uint64_t>(per_multiprocessor) * multiprocessors)
    return record(cudaErrorCooperativeLaunchTooLarge,
                  "cooperative launch of " + name + " with " + std::to_string(blocks) +
                      " blocks; at most " + std::to_string(per_multiprocessor) +
                      " per "
                      "multiprocessor x " +
                      std::to_string(multiprocessors) + " multiprocessors can be resident at once");
  const std::uint64_t id = ++g_launches;
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    if (g_log.size() < kMaxLogEntries)
      g_log.push_back(LaunchRecord{name,
                                   {r.grid[0], r.grid[1], r.grid[2]},
                                   {r.block[0], r.block[1], r.block[2]},
                                   r.dynamic_shared,
                                   r.cooperative});
  }
  const Execution e{&snapshot,
                    r.kernel,
                    dim3(r.grid[0], r.grid[1], r.grid[2]),
                    dim3(r.block[0], r.block[1], r.block[2]),
                    r.dynamic_shared,
                    r.cooperative,
                    args,
                    id};
  // One launch at a time: the fibers' built-in variables are process-wide. Host threads still
  // interleave everything else (attributes, allocations, the launches' order), as on a GPU.
  Outcome outcome;
  {
    std::lock_guard<std::mutex> lock(g_execution_mutex);
    outcome = execute(e);
  }
  if (outcome.status != cudaSuccess) return record(outcome.status, name + ": " + outcome.message);
  return cudaSuccess;
}

}  // namespace ipdpp::emu

using namespace ipdpp::emu;

// ---- errors --------------------------------------------------------------------------------

cudaError_t cudaGetLastError() {
  const cudaError_t e = t_last_error;
  t_last_error = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError() { return t_last_error; }

const char* cudaGetErrorName(cudaError_t error) {
  switch (error) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInitializationError: return "cudaErrorInitializationError";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
    case cudaErrorLaunchOutOfResources: return "cudaErrorLaunchOutOfResources";
    case cudaErrorLaunchTimeout: return "cudaErrorLaunchTimeout";
    case cudaErrorAssert: return "cudaErrorAssert";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorCooperativeLaunchTooLarge: return "cudaErrorCooperativeLaunchTooLarge";
    case cudaErrorNotSupported: return "cudaErrorNotSupported";
    case cudaErrorInvalidDeviceFunction: return "cudaErrorInvalidDeviceFunction";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    default: return "cudaErrorUnknown";
  }
}

const char* cudaGetErrorString(cudaError_t error) {
  if (error == t_detail_code && !t_detail.empty()) return t_detail.c_str();
  switch (error) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    default: return "emulated CUDA error";
  }
}

// ---- device --------------------------------------------------------------------------------

cudaError_t cudaGetDeviceCount(int* count) {
  *count = 1;
  return cudaSuccess;
}
cudaError_t cudaGetDevice(int* device) {
  *device = 0;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int device) {
  if (device != 0)
    return record(cudaErrorInvalidDevice,
                  "device " + std::to_string(device) + " does not exist (one emulated device)");
  return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  if (device != 0) return cudaSetDevice(device);
  const DeviceLimits d = device_limits();
  switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock: *value = d.threads_per_block; break;
    case cudaDevAttrMaxBlockDimX:
    case cudaDevAttrMaxBlockDimY: *value = 1024; break;
    case cudaDevAttrMaxBlockDimZ: *value = 64; break;
    case cudaDevAttrMaxGridDimX: *value = 0x7fffffff; break;
    case cudaDevAttrMaxGridDimY:
    case cudaDevAttrMaxGridDimZ: *value = 65535; break;
    case cudaDevAttrMaxSharedMemoryPerBlock: *value = d.shared_per_block; break;
    case cudaDevAttrWarpSize: *value = 32; break;
    case cudaDevAttrMultiProcessorCount: *value = d.multiprocessors; break;
    case cudaDevAttrComputeCapabilityMajor: *value = 9; break;
    case cudaDevAttrComputeCapabilityMinor: *value = 0; break;
    case cudaDevAttrMaxThreadsPerMultiProcessor: *value = d.threads_per_multiprocessor; break;
    case cudaDevAttrL2CacheSize: *value = 50 * 1024 * 1024; break;
    case cudaDevAttrCooperativeLaunch: *value = 1; break;
    case cudaDevAttrMaxSharedMemoryPerMultiprocessor: *value = d.shared_per_multiprocessor; break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = d.shared_per_block_optin; break;
    case cudaDevAttrMaxBlocksPerMultiprocessor: *value = d.blocks_per_multiprocessor; break;
    case cudaDevAttrMemoryPoolsSupported: *value = 1; break;
    default:
      return record(cudaErrorInvalidValue, "cudaDeviceGetAttribute: attribute " +
                                               std::to_string(attr) + " is not emulated");
  }
  return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (device != 0) return cudaSetDevice(device);
  const DeviceLimits d = device_limits();
  std::memset(prop, 0, sizeof(*prop));
  std::strncpy(prop->name, "ipdpp CPU emulator (sm_90 limits)", sizeof(prop->name) - 1);
  prop->totalGlobalMem = d.global_memory;
  prop->sharedMemPerBlock = static_cast<std::size_t>(d.shared_per_block);
  prop->regsPerBlock = 65536;
  prop->warpSize = 32;
  prop->maxThreadsPerBlock = d.threads_per_block;
  prop->maxThreadsDim[0] = prop->maxThreadsDim[1] = 1024;
  prop->maxThreadsDim[2] = 64;
  prop->maxGridSize[0] = 0x7fffffff;
  prop->maxGridSize[1] = prop->maxGridSize[2] = 65535;
  prop->major = 9;
  prop->minor = 0;
  prop->multiProcessorCount = d.multiprocessors;
  prop->l2CacheSize = 50 * 1024 * 1024;
  prop->maxThreadsPerMultiProcessor = d.threads_per_multiprocessor;
  prop->sharedMemPerMultiprocessor = static_cast<std::size_t>(d.shared_per_multiprocessor);
  prop->sharedMemPerBlockOptin = static_cast<std::size_t>(d.shared_per_block_optin);
  prop->maxBlocksPerMultiProcessor = d.blocks_per_multiprocessor;
  prop->cooperativeLaunch = 1;
  prop->reservedSharedMemPerBlock = static_cast<std::size_t>(d.reserved_shared_per_block);
  return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize() { return take_fault(); }

// ---- kernels -------------------------------------------------------------------------------

cudaError_t cudaFuncSetAttribute(const void* func, cudaFuncAttribute attr, int value) {
  std::lock_guard<std::mutex> lock(g_mutex);
  KernelInfo* k = find_kernel_locked(func);
  if (k == nullptr) return unknown_kernel("cudaFuncSetAttribute");
  if (attr == cudaFuncAttributeMaxDynamicSharedMemorySize) {
    const std::size_t limit = static_cast<std::size_t>(g_limits.shared_per_block_optin);
    if (value < 0 || static_cast<std::size_t>(value) + k->static_bytes > limit)
      return record(cudaErrorInvalidValue,
                    "cudaFuncSetAttribute(" + k->name + ", MaxDynamicSharedMemorySize, " +
                        std::to_string(value) + "): the device allows " + bytes_text(limit) +
                        " per block, of which the "
                        "kernel's static shared memory takes " +
                        bytes_text(k->static_bytes));
    k->max_dynamic_shared = value;
    return cudaSuccess;
  }
  if (attr == cudaFuncAttributePreferredSharedMemoryCarveout) {
    if (value < -1 || value > 100)
      return record(cudaErrorInvalidValue, "cudaFuncSetAttribute: carveout out of range");
    return cudaSuccess;
  }
  return record(cudaErrorInvalidValue, "cudaFuncSetAttribute: attribute not emulated");
}

cudaError_t cudaFuncGetAttributes(cudaFuncAttributes* attr, const void* func) {
  std::lock_guard<std::mutex> lock(g_mutex);
  KernelInfo* k = find_kernel_locked(func);
  if (k == nullptr) return unknown_kernel("cudaFuncGetAttributes");
  std::memset(attr, 0, sizeof(*attr));
  attr->sharedSizeBytes = k->static_bytes;
  attr->maxThreadsPerBlock = k->launch_bounds > 0 ? k->launch_bounds : g_limits.threads_per_block;
  attr->maxDynamicSharedSizeBytes = k->max_dynamic_shared;
  attr->preferredShmemCarveout = -1;
  attr->ptxVersion = attr->binaryVersion = 90;
  return cudaSuccess;
}

cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int* blocks, const void* func,
                                                          int block_size,
                                                          std::size_t dynamic_shared) {
  std::lock_guard<std::mutex> lock(g_mutex);
  KernelInfo* k = find_kernel_locked(func);
  if (k == nullptr) return unknown_kernel("cudaOccupancyMaxActiveBlocksPerMultiprocessor");
  if (block_size <= 0)
    return record(cudaErrorInvalidValue,
                  "cudaOccupancyMaxActiveBlocksPerMultiprocessor: "
                  "block size must be positive");
  *blocks = occupancy_locked(*k, block_size, dynamic_shared);
  return cudaSuccess;
}

cudaError_t cudaLaunchKernel(const void* func, dim3 grid, dim3 block, void** args,
                             std::size_t shared, cudaStream_t) {
  return static_cast<cudaError_t>(launch(
      LaunchRequest{func, {grid.x, grid.y, grid.z}, {block.x, block.y, block.z}, shared, false},
      args));
}

cudaError_t cudaLaunchCooperativeKernel(const void* func, dim3 grid, dim3 block, void** args,
                                        std::size_t shared, cudaStream_t) {
  return static_cast<cudaError_t>(launch(
      LaunchRequest{func, {grid.x, grid.y, grid.z}, {block.x, block.y, block.z}, shared, true},
      args));
}

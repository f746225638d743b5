// The CUDA runtime of the CPU emulator: one device, host memory as device memory, kernels run
// synchronously by the fiber scheduler once the launch passed the checks a GPU makes.
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "emulator/control.h"
#include "emulator/runtime.h"
#include "emulator/scheduler.h"

namespace ipdpp::emu {
namespace {

constexpr std::size_t kAllocationGuard = 64;
constexpr unsigned char kAllocationGuardByte = 0xcd;

std::mutex g_execution_mutex;
std::mutex g_mutex;  // guards everything below
DeviceLimits g_limits;
std::map<const void*, KernelInfo> g_kernels;
std::map<void*, std::size_t> g_allocations;
std::size_t g_allocated = 0;
std::set<const void*> g_handles;  // streams, events
std::vector<LaunchRecord> g_log;
std::string g_fault;  // a fault found outside a launch, reported by the next synchronising call
std::uint64_t g_pool_threshold = 0;
std::atomic<std::uint64_t> g_launches{0};
std::atomic<std::uint64_t> g_allocation_salt{0};
int g_pool_object = 0;

constexpr std::size_t kMaxLogEntries = 100000;

thread_local cudaError_t t_last_error = cudaSuccess;
thread_local cudaError_t t_detail_code = cudaSuccess;
thread_local std::string t_detail;

cudaError_t record(cudaError_t code, std::string detail) {
  t_last_error = code;
  t_detail_code = code;
  t_detail = "ipdpp emulator: " + std::move(detail);
  return code;
}

// Reports (once) a fault found when memory was freed.
cudaError_t take_fault() {
  std::string fault;
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    fault.swap(g_fault);
  }
  if (fault.empty()) return cudaSuccess;
  return record(cudaErrorIllegalAddress, fault);
}

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

std::string bytes_text(std::size_t bytes) { return std::to_string(bytes) + " bytes"; }

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

// ---- memory --------------------------------------------------------------------------------

cudaError_t cudaMalloc(void** ptr, std::size_t bytes) {
  *ptr = nullptr;
  if (bytes == 0) return cudaSuccess;
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    if (bytes > g_limits.global_memory - std::min(g_allocated, g_limits.global_memory))
      return record(cudaErrorMemoryAllocation,
                    "cudaMalloc of " + bytes_text(bytes) + ": the emulated device has " +
                        bytes_text(g_limits.global_memory - g_allocated) + " free");
  }
  const std::size_t total = (bytes + kAllocationGuard + 255) / 256 * 256;
  void* p = std::aligned_alloc(256, total);
  if (p == nullptr)
    return record(cudaErrorMemoryAllocation, "cudaMalloc of " + bytes_text(bytes) + " failed");
  // Device memory is not initialised on a GPU either.
  fill_garbage(static_cast<unsigned char*>(p), bytes, ++g_allocation_salt);
  std::memset(static_cast<unsigned char*>(p) + bytes, kAllocationGuardByte, kAllocationGuard);
  std::lock_guard<std::mutex> lock(g_mutex);
  g_allocations[p] = bytes;
  g_allocated += bytes;
  *ptr = p;
  return cudaSuccess;
}

cudaError_t cudaFree(void* ptr) {
  if (ptr == nullptr) return cudaSuccess;
  std::lock_guard<std::mutex> lock(g_mutex);
  auto it = g_allocations.find(ptr);
  if (it == g_allocations.end())
    return record(cudaErrorInvalidValue,
                  "cudaFree of a pointer that is not a live allocation (freed twice?)");
  const std::size_t bytes = it->second;
  const auto* guard = static_cast<const unsigned char*>(ptr) + bytes;
  for (std::size_t i = 0; i < kAllocationGuard; ++i) {
    if (guard[i] != kAllocationGuardByte) {
      if (g_fault.empty())
        g_fault =
            "a kernel or copy wrote past the end of a device allocation of " + bytes_text(bytes);
      break;
    }
  }
  g_allocated -= bytes;
  g_allocations.erase(it);
  std::free(ptr);
  return cudaSuccess;
}

cudaError_t cudaMallocAsync(void** ptr, std::size_t bytes, cudaStream_t) {
  return cudaMalloc(ptr, bytes);
}
cudaError_t cudaFreeAsync(void* ptr, cudaStream_t) { return cudaFree(ptr); }
cudaError_t cudaMallocHost(void** ptr, std::size_t bytes) {
  *ptr = std::malloc(bytes == 0 ? 1 : bytes);
  return *ptr != nullptr ? cudaSuccess : record(cudaErrorMemoryAllocation, "cudaMallocHost failed");
}
cudaError_t cudaFreeHost(void* ptr) {
  std::free(ptr);
  return cudaSuccess;
}

cudaError_t cudaMemcpy(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind) {
  if (const cudaError_t fault = take_fault(); fault != cudaSuccess) return fault;
  return cudaMemcpyAsync(dst, src, bytes, kind, nullptr);
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t) {
  if (static_cast<int>(kind) < 0 || static_cast<int>(kind) > 4)
    return record(cudaErrorInvalidValue, "cudaMemcpy: invalid cudaMemcpyKind");
  if (bytes == 0) return cudaSuccess;
  if (dst == nullptr || src == nullptr)
    return record(cudaErrorInvalidValue,
                  "cudaMemcpy of " + bytes_text(bytes) + " with a null pointer");
  std::memcpy(dst, src, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemset(void* ptr, int value, std::size_t bytes) {
  return cudaMemsetAsync(ptr, value, bytes, nullptr);
}
cudaError_t cudaMemsetAsync(void* ptr, int value, std::size_t bytes, cudaStream_t) {
  if (bytes == 0) return cudaSuccess;
  if (ptr == nullptr) return record(cudaErrorInvalidValue, "cudaMemset with a null pointer");
  std::memset(ptr, value, bytes);
  return cudaSuccess;
}

cudaError_t cudaDeviceGetDefaultMemPool(cudaMemPool_t* pool, int device) {
  if (device != 0) return cudaSetDevice(device);
  *pool = reinterpret_cast<cudaMemPool_t>(&g_pool_object);
  return cudaSuccess;
}
cudaError_t cudaMemPoolSetAttribute(cudaMemPool_t, cudaMemPoolAttr attr, void* value) {
  if (attr == cudaMemPoolAttrReleaseThreshold)
    g_pool_threshold = *static_cast<std::uint64_t*>(value);
  return cudaSuccess;
}
cudaError_t cudaMemPoolGetAttribute(cudaMemPool_t, cudaMemPoolAttr attr, void* value) {
  std::uint64_t result = 0;
  if (attr == cudaMemPoolAttrReleaseThreshold) result = g_pool_threshold;
  if (attr == cudaMemPoolAttrUsedMemCurrent || attr == cudaMemPoolAttrReservedMemCurrent) {
    std::lock_guard<std::mutex> lock(g_mutex);
    result = g_allocated;
  }
  if (attr == cudaMemPoolReuseFollowEventDependencies ||
      attr == cudaMemPoolReuseAllowOpportunistic ||
      attr == cudaMemPoolReuseAllowInternalDependencies) {
    *static_cast<int*>(value) = 1;
    return cudaSuccess;
  }
  *static_cast<std::uint64_t*>(value) = result;
  return cudaSuccess;
}
cudaError_t cudaMemPoolTrimTo(cudaMemPool_t, std::size_t) { return cudaSuccess; }

// ---- streams and events: handles only (work is complete when a call returns) -----------------

namespace {
template <class H>
cudaError_t make_handle(H* handle) {
  auto* object = new char(0);  // a unique address; released by the matching destroy call
  std::lock_guard<std::mutex> lock(g_mutex);
  g_handles.insert(object);
  *handle = reinterpret_cast<H>(object);
  return cudaSuccess;
}
cudaError_t destroy_handle(const void* handle, const char* call) {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_handles.erase(handle) == 0)
    return record(cudaErrorInvalidResourceHandle, std::string(call) + ": unknown handle");
  delete static_cast<const char*>(handle);
  return cudaSuccess;
}
}  // namespace

cudaError_t cudaStreamCreate(cudaStream_t* stream) { return make_handle(stream); }
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned int) {
  return make_handle(stream);
}
cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  return destroy_handle(stream, "cudaStreamDestroy");
}
cudaError_t cudaStreamSynchronize(cudaStream_t) { return take_fault(); }
cudaError_t cudaStreamQuery(cudaStream_t) { return take_fault(); }
cudaError_t cudaStreamWaitEvent(cudaStream_t, cudaEvent_t, unsigned int) { return cudaSuccess; }
cudaError_t cudaEventCreate(cudaEvent_t* event) { return make_handle(event); }
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int) {
  return make_handle(event);
}
cudaError_t cudaEventDestroy(cudaEvent_t event) {
  return destroy_handle(event, "cudaEventDestroy");
}
cudaError_t cudaEventRecord(cudaEvent_t, cudaStream_t) { return cudaSuccess; }
cudaError_t cudaEventSynchronize(cudaEvent_t) { return take_fault(); }
cudaError_t cudaEventQuery(cudaEvent_t) { return cudaSuccess; }
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t, cudaEvent_t) {
  *ms = 0.0f;  // nothing is timed here
  return cudaSuccess;
}

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

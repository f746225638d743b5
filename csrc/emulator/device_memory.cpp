// Device memory of the CPU emulator's CUDA runtime: host memory stands for device memory, filled
// with garbage at allocation (a GPU does not clear it either) and followed by guard bytes that
// cudaFree checks, so that a write past the end is reported by the next synchronising call; the
// default memory pool, and streams and events as bare handles (all work is complete when a call
// returns). runtime.cpp holds the rest of the runtime (errors, device queries, launches).
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <set>
#include <string>

#include "emulator/runtime.h"
#include "emulator/runtime_state.h"
#include "emulator/scheduler.h"

using namespace ipdpp::emu;
using namespace ipdpp::emu::runtime_state;

namespace {

constexpr std::size_t kAllocationGuard = 64;
constexpr unsigned char kAllocationGuardByte = 0xcd;

std::set<const void*> g_handles;  // streams, events (guarded by g_mutex)
std::uint64_t g_pool_threshold = 0;
std::atomic<std::uint64_t> g_allocation_salt{0};
int g_pool_object = 0;

}  // namespace

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

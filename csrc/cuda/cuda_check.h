// Error handling for the CUDA backend: every runtime call and every kernel launch is checked, and
// a failure becomes a C++ exception that names the call, so Python sees an exception instead of a
// crash or a silent wrong answer. Out-of-memory gets its own type (mapped to MemoryError).
//
// Plain C++ (no device code): included by .cu files and by the pybind11 bindings alike.
#pragma once

#include <cuda_runtime_api.h>

#include <stdexcept>
#include <string>

namespace ipdpp::cuda {

// A failed CUDA runtime, cuBLAS or cuSOLVER call (RuntimeError in Python).
struct CudaError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The device ran out of memory (MemoryError in Python).
struct CudaOutOfMemory : CudaError {
  using CudaError::CudaError;
};

// A failed runtime call also records its status as the thread's "last error", which the next
// CUDA_CHECK_LAUNCH (cudaGetLastError) would then report against an innocent kernel launch, e.g.
// every launch after a caught out-of-memory error. Clear it once the failure is being reported
// (sticky errors, which poison the context, stay visible to every later call anyway).
inline void clear_last_error() noexcept { static_cast<void>(cudaGetLastError()); }

[[noreturn]] inline void throw_cuda_error(cudaError_t status, const char* call, const char* file,
                                          int line) {
  clear_last_error();
  const std::string where = std::string(" (") + file + ":" + std::to_string(line) + ")";
  if (status == cudaErrorMemoryAllocation)
    throw CudaOutOfMemory(std::string("CUDA out of memory in ") + call + where);
  throw CudaError(std::string(call) + " failed: " + cudaGetErrorName(status) + ": " +
                  cudaGetErrorString(status) + where);
}

// Sets the current device for the lifetime of the guard and restores the previous one, so a call
// on an array that lives on device 1 does not change the caller's current device.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device);
  ~DeviceGuard() {  // restoring cannot fail meaningfully here; do not leave a stale last error
    if (cudaSetDevice(previous_) != cudaSuccess) clear_last_error();
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = 0;
};

}  // namespace ipdpp::cuda

// Checks a CUDA runtime call.
#define CUDA_CHECK(call)                                                         \
  do {                                                                           \
    const cudaError_t ipdpp_status_ = (call);                                    \
    if (ipdpp_status_ != cudaSuccess)                                            \
      ::ipdpp::cuda::throw_cuda_error(ipdpp_status_, #call, __FILE__, __LINE__); \
  } while (0)

// Checks the launch that just happened (bad configuration, too many resources, ...); asynchronous
// faults inside the kernel surface at the next synchronising call, which is checked as well.
#define CUDA_CHECK_LAUNCH(kernel_name)                                                   \
  do {                                                                                   \
    const cudaError_t ipdpp_status_ = cudaGetLastError();                                \
    if (ipdpp_status_ != cudaSuccess)                                                    \
      ::ipdpp::cuda::throw_cuda_error(ipdpp_status_, "launch of " kernel_name, __FILE__, \
                                      __LINE__);                                         \
  } while (0)

namespace ipdpp::cuda {

inline DeviceGuard::DeviceGuard(int device) {
  CUDA_CHECK(cudaGetDevice(&previous_));
  if (device != previous_) CUDA_CHECK(cudaSetDevice(device));
}

}  // namespace ipdpp::cuda

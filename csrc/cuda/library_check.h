// CUBLAS_CHECK / CUSOLVER_CHECK: like CUDA_CHECK for the two libraries (only spectrum.cu calls
// them). Kept apart from cuda_check.h so the other kernels compile without their headers.
#pragma once

#include <cublas_v2.h>
#include <cusolverDn.h>

#include <string>

#include "cuda/cuda_check.h"

namespace ipdpp::cuda {

[[noreturn]] inline void throw_cublas_error(cublasStatus_t status, const char* call,
                                            const char* file, int line) {
  clear_last_error();  // a failed allocation inside the library may have set it (cuda_check.h)
  const std::string where = std::string(" (") + file + ":" + std::to_string(line) + ")";
  if (status == CUBLAS_STATUS_ALLOC_FAILED)
    throw CudaOutOfMemory(std::string("CUDA out of memory in ") + call + where);
  throw CudaError(std::string(call) + " failed: " + cublasGetStatusName(status) + ": " +
                  cublasGetStatusString(status) + where);
}

inline const char* cusolver_status_name(cusolverStatus_t status) {
  switch (status) {
    case CUSOLVER_STATUS_NOT_INITIALIZED: return "CUSOLVER_STATUS_NOT_INITIALIZED";
    case CUSOLVER_STATUS_ALLOC_FAILED: return "CUSOLVER_STATUS_ALLOC_FAILED";
    case CUSOLVER_STATUS_INVALID_VALUE: return "CUSOLVER_STATUS_INVALID_VALUE";
    case CUSOLVER_STATUS_ARCH_MISMATCH: return "CUSOLVER_STATUS_ARCH_MISMATCH";
    case CUSOLVER_STATUS_EXECUTION_FAILED: return "CUSOLVER_STATUS_EXECUTION_FAILED";
    case CUSOLVER_STATUS_INTERNAL_ERROR: return "CUSOLVER_STATUS_INTERNAL_ERROR";
    case CUSOLVER_STATUS_NOT_SUPPORTED: return "CUSOLVER_STATUS_NOT_SUPPORTED";
    default: return "cusolverStatus_t (other)";
  }
}

[[noreturn]] inline void throw_cusolver_error(cusolverStatus_t status, const char* call,
                                              const char* file, int line) {
  clear_last_error();  // as in throw_cublas_error
  const std::string where = std::string(" (") + file + ":" + std::to_string(line) + ")";
  if (status == CUSOLVER_STATUS_ALLOC_FAILED)
    throw CudaOutOfMemory(std::string("CUDA out of memory in ") + call + where);
  throw CudaError(std::string(call) + " failed: " + cusolver_status_name(status) + " (" +
                  std::to_string(static_cast<int>(status)) + ")" + where);
}

}  // namespace ipdpp::cuda

#define CUBLAS_CHECK(call)                                                         \
  do {                                                                             \
    const cublasStatus_t ipdpp_status_ = (call);                                   \
    if (ipdpp_status_ != CUBLAS_STATUS_SUCCESS)                                    \
      ::ipdpp::cuda::throw_cublas_error(ipdpp_status_, #call, __FILE__, __LINE__); \
  } while (0)

#define CUSOLVER_CHECK(call)                                                         \
  do {                                                                               \
    const cusolverStatus_t ipdpp_status_ = (call);                                   \
    if (ipdpp_status_ != CUSOLVER_STATUS_SUCCESS)                                    \
      ::ipdpp::cuda::throw_cusolver_error(ipdpp_status_, #call, __FILE__, __LINE__); \
  } while (0)

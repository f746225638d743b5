// cuBLAS and cuSOLVER of the emulated build: the same calls, computed on the host with the
// BLAS/LAPACK routines the CPU extension binds from SciPy at import (csrc/cpu/lapack.h). Device
// pointers are host pointers, so the column-major operands are passed through unchanged.
#include <cublas_v2.h>
#include <cusolverDn.h>

#include <algorithm>
#include <climits>
#include <exception>
#include <vector>

#include "cpu/lapack.h"

namespace {

char op_char(cublasOperation_t op) { return op == CUBLAS_OP_N ? 'N' : 'T'; }

// Handles only need to be distinct, non-null values.
struct Handle {};

template <class H>
H new_handle() {
  return reinterpret_cast<H>(new Handle());  // released by the matching destroy call
}

}  // namespace

cublasStatus_t cublasCreate(cublasHandle_t* handle) {
  *handle = new_handle<cublasHandle_t>();
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy(cublasHandle_t handle) {
  delete reinterpret_cast<Handle*>(handle);
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t) {
  return handle != nullptr ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_NOT_INITIALIZED;
}

const char* cublasGetStatusName(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    default: return "CUBLAS_STATUS_INTERNAL_ERROR";
  }
}
const char* cublasGetStatusString(cublasStatus_t status) {
  return status == CUBLAS_STATUS_SUCCESS ? "success" : "emulated cuBLAS failure";
}

cublasStatus_t cublasDgemm_64(cublasHandle_t handle, cublasOperation_t transa,
                              cublasOperation_t transb, std::int64_t m, std::int64_t n,
                              std::int64_t k, const double* alpha, const double* A,
                              std::int64_t lda, const double* B, std::int64_t ldb,
                              const double* beta, double* C, std::int64_t ldc) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  // cuBLAS's argument checks: negative sizes and leading dimensions too small for the operands.
  const std::int64_t rows_a = transa == CUBLAS_OP_N ? m : k;
  const std::int64_t rows_b = transb == CUBLAS_OP_N ? k : n;
  if (m < 0 || n < 0 || k < 0 || lda < std::max<std::int64_t>(1, rows_a) ||
      ldb < std::max<std::int64_t>(1, rows_b) || ldc < std::max<std::int64_t>(1, m))
    return CUBLAS_STATUS_INVALID_VALUE;
  try {
    ipdpp::lapack::dgemm(op_char(transa), op_char(transb), m, n, k, *alpha, A, lda, B, ldb, *beta,
                         C, ldc);
  } catch (const std::exception&) {
    return CUBLAS_STATUS_EXECUTION_FAILED;
  }
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDgemm(cublasHandle_t handle, cublasOperation_t transa,
                           cublasOperation_t transb, int m, int n, int k, const double* alpha,
                           const double* A, int lda, const double* B, int ldb, const double* beta,
                           double* C, int ldc) {
  return cublasDgemm_64(handle, transa, transb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}

cublasStatus_t cublasDsyrk(cublasHandle_t handle, cublasFillMode_t uplo, cublasOperation_t trans,
                           int n, int k, const double* alpha, const double* A, int lda,
                           const double* beta, double* C, int ldc) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  const int rows_a = trans == CUBLAS_OP_N ? n : k;
  if (n < 0 || k < 0 || lda < std::max(1, rows_a) || ldc < std::max(1, n))
    return CUBLAS_STATUS_INVALID_VALUE;
  try {
    ipdpp::lapack::dsyrk(uplo == CUBLAS_FILL_MODE_LOWER ? 'L' : 'U', op_char(trans), n, k, *alpha,
                         A, lda, *beta, C, ldc);
  } catch (const std::exception&) {
    return CUBLAS_STATUS_EXECUTION_FAILED;
  }
  return CUBLAS_STATUS_SUCCESS;
}

// ---- cuSOLVER ------------------------------------------------------------------------------

cusolverStatus_t cusolverDnCreate(cusolverDnHandle_t* handle) {
  *handle = new_handle<cusolverDnHandle_t>();
  return CUSOLVER_STATUS_SUCCESS;
}
cusolverStatus_t cusolverDnDestroy(cusolverDnHandle_t handle) {
  delete reinterpret_cast<Handle*>(handle);
  return CUSOLVER_STATUS_SUCCESS;
}
cusolverStatus_t cusolverDnSetStream(cusolverDnHandle_t handle, cudaStream_t) {
  return handle != nullptr ? CUSOLVER_STATUS_SUCCESS : CUSOLVER_STATUS_NOT_INITIALIZED;
}
cusolverStatus_t cusolverDnCreateParams(cusolverDnParams_t* params) {
  *params = new_handle<cusolverDnParams_t>();
  return CUSOLVER_STATUS_SUCCESS;
}
cusolverStatus_t cusolverDnDestroyParams(cusolverDnParams_t params) {
  delete reinterpret_cast<Handle*>(params);
  return CUSOLVER_STATUS_SUCCESS;
}

namespace {

// Workspace the emulated solver asks for: what cuSOLVER's syevd needs is of the same order
// (O(n^2) doubles), so a caller that sizes or allocates it wrongly fails here as well.
std::int64_t syevd_work_doubles(std::int64_t n) { return 1 + 6 * n + 2 * n * n; }

bool syevd_arguments_ok(cusolverEigMode_t jobz, cublasFillMode_t uplo, std::int64_t n,
                        std::int64_t lda) {
  return jobz == CUSOLVER_EIG_MODE_VECTOR && uplo == CUBLAS_FILL_MODE_LOWER && n >= 0 &&
         lda >= std::max<std::int64_t>(1, n);
}

// Eigendecomposition of the lower triangle of A (n x n, column-major, leading dimension lda)
// in place; `info` (a device int) gets 0, or > 0 when LAPACK did not converge.
void eigh(std::int64_t n, double* A, std::int64_t lda, double* W, int* info) {
  std::vector<double> packed(static_cast<std::size_t>(n * n));
  for (std::int64_t j = 0; j < n; ++j)
    std::copy(A + j * lda, A + j * lda + n, packed.begin() + j * n);
  try {
    ipdpp::lapack::dsyevd(n, packed.data(), W);
  } catch (const std::exception&) {
    *info = 1;
    return;
  }
  for (std::int64_t j = 0; j < n; ++j)
    std::copy(packed.begin() + j * n, packed.begin() + (j + 1) * n, A + j * lda);
  *info = 0;
}

}  // namespace

cusolverStatus_t cusolverDnDsyevd_bufferSize(cusolverDnHandle_t handle, cusolverEigMode_t jobz,
                                             cublasFillMode_t uplo, int n, const double*, int lda,
                                             const double*, int* lwork) {
  if (handle == nullptr) return CUSOLVER_STATUS_NOT_INITIALIZED;
  if (!syevd_arguments_ok(jobz, uplo, n, lda)) return CUSOLVER_STATUS_INVALID_VALUE;
  const std::int64_t work = syevd_work_doubles(n);
  // The 32-bit interface cannot express larger workspaces (the reason for the 64-bit one).
  if (work > INT_MAX) return CUSOLVER_STATUS_INVALID_VALUE;
  *lwork = static_cast<int>(work);
  return CUSOLVER_STATUS_SUCCESS;
}

cusolverStatus_t cusolverDnDsyevd(cusolverDnHandle_t handle, cusolverEigMode_t jobz,
                                  cublasFillMode_t uplo, int n, double* A, int lda, double* W,
                                  double* work, int lwork, int* info) {
  if (handle == nullptr) return CUSOLVER_STATUS_NOT_INITIALIZED;
  if (!syevd_arguments_ok(jobz, uplo, n, lda) || work == nullptr || lwork < syevd_work_doubles(n))
    return CUSOLVER_STATUS_INVALID_VALUE;
  eigh(n, A, lda, W, info);
  return CUSOLVER_STATUS_SUCCESS;
}

cusolverStatus_t cusolverDnXsyevd_bufferSize(cusolverDnHandle_t handle, cusolverDnParams_t,
                                             cusolverEigMode_t jobz, cublasFillMode_t uplo,
                                             std::int64_t n, cudaDataType data_type_a, const void*,
                                             std::int64_t lda, cudaDataType data_type_w,
                                             const void*, cudaDataType compute_type,
                                             std::size_t* device_bytes, std::size_t* host_bytes) {
  if (handle == nullptr) return CUSOLVER_STATUS_NOT_INITIALIZED;
  if (!syevd_arguments_ok(jobz, uplo, n, lda)) return CUSOLVER_STATUS_INVALID_VALUE;
  if (data_type_a != CUDA_R_64F || data_type_w != CUDA_R_64F || compute_type != CUDA_R_64F)
    return CUSOLVER_STATUS_NOT_SUPPORTED;
  *device_bytes = static_cast<std::size_t>(syevd_work_doubles(n)) * sizeof(double);
  *host_bytes = 0;
  return CUSOLVER_STATUS_SUCCESS;
}

cusolverStatus_t cusolverDnXsyevd(cusolverDnHandle_t handle, cusolverDnParams_t,
                                  cusolverEigMode_t jobz, cublasFillMode_t uplo, std::int64_t n,
                                  cudaDataType data_type_a, void* A, std::int64_t lda,
                                  cudaDataType data_type_w, void* W, cudaDataType compute_type,
                                  void* device_buffer, std::size_t device_bytes, void*, std::size_t,
                                  int* info) {
  if (handle == nullptr) return CUSOLVER_STATUS_NOT_INITIALIZED;
  if (!syevd_arguments_ok(jobz, uplo, n, lda)) return CUSOLVER_STATUS_INVALID_VALUE;
  if (data_type_a != CUDA_R_64F || data_type_w != CUDA_R_64F || compute_type != CUDA_R_64F)
    return CUSOLVER_STATUS_NOT_SUPPORTED;
  if (device_buffer == nullptr ||
      device_bytes < static_cast<std::size_t>(syevd_work_doubles(n)) * sizeof(double))
    return CUSOLVER_STATUS_INVALID_VALUE;
  eigh(n, static_cast<double*>(A), lda, static_cast<double*>(W), info);
  return CUSOLVER_STATUS_SUCCESS;
}

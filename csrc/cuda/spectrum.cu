// Kernel construction with cuBLAS and cuSOLVER (see spectrum.h for the precision choice).
#include <cublas_v2.h>
#include <cusolverDn.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/error.h"
#include "common/spectrum_rules.h"
#include "cuda/block_reduce.cuh"
#include "cuda/cuda_check.h"
#include "cuda/launch_config.h"
#include "cuda/library_check.h"
#include "cuda/spectrum.h"

namespace ipdpp::cuda {
namespace {

// One cuBLAS / cuSOLVER handle per (host thread, device). Creating a handle costs milliseconds,
// so they are created once and deliberately never destroyed: destroying them during interpreter
// exit can run after the CUDA runtime has shut down.
cublasHandle_t cublas_handle(cudaStream_t stream) {
  thread_local std::unordered_map<int, cublasHandle_t> handles;
  int device = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  auto it = handles.find(device);
  if (it == handles.end()) {
    cublasHandle_t handle = nullptr;
    CUBLAS_CHECK(cublasCreate(&handle));
    it = handles.emplace(device, handle).first;
  }
  CUBLAS_CHECK(cublasSetStream(it->second, stream));
  return it->second;
}

cusolverDnHandle_t cusolver_handle(cudaStream_t stream) {
  thread_local std::unordered_map<int, cusolverDnHandle_t> handles;
  int device = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  auto it = handles.find(device);
  if (it == handles.end()) {
    cusolverDnHandle_t handle = nullptr;
    CUSOLVER_CHECK(cusolverDnCreate(&handle));
    it = handles.emplace(device, handle).first;
  }
  CUSOLVER_CHECK(cusolverDnSetStream(it->second, stream));
  return it->second;
}

// out[i, j] = q_i * B[i, j] as float64 for rows [0, rows) of a row-major block (q optional).
template <class T>
__global__ void widen_scaled_rows(const T* __restrict__ B, const double* __restrict__ q,
                                  std::int64_t rows, std::int64_t d, double* __restrict__ out) {
  const std::int64_t total = rows * d;
  for (std::int64_t e = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const double scale = q != nullptr ? q[e / d] : 1.0;
    out[e] = scale * static_cast<double>(B[e]);
  }
}

// Us[:, c] = U[:, first + c] / sqrt(lambda_{first + c}) (column-major d x rank, ld = d).
__global__ void scale_eigenvector_columns(const double* __restrict__ U,
                                          const double* __restrict__ eigenvalues, std::int64_t d,
                                          std::int64_t first, std::int64_t rank,
                                          double* __restrict__ Us) {
  const std::int64_t total = d * rank;
  for (std::int64_t e = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t c = e / d;
    Us[e] = U[(first + c) * d + e % d] / sqrt(eigenvalues[first + c]);
  }
}

// out[e] = in[e] converted to T.
template <class T>
__global__ void narrow_copy(const double* __restrict__ in, std::int64_t count,
                            T* __restrict__ out) {
  for (std::int64_t e = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; e < count;
       e += static_cast<std::int64_t>(gridDim.x) * blockDim.x)
    out[e] = static_cast<T>(in[e]);
}

// V[i, c] = U[i, first + c] (row-major n x rank output from column-major n x n U).
template <class T>
__global__ void gather_dense_eigenvectors(const double* __restrict__ U, std::int64_t n,
                                          std::int64_t first, std::int64_t rank,
                                          T* __restrict__ V) {
  const std::int64_t total = n * rank;
  for (std::int64_t e = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t i = e / rank, c = e % rank;
    V[e] = static_cast<T>(U[(first + c) * n + i]);
  }
}

// Rows [row0, row0 + rows) of X = diag(q) B as float64 (row-major), either a view of B itself
// (float64 input without quality) or a widened copy in `scratch`.
const double* widened_rows(const void* B, DType dtype, std::int64_t row0, std::int64_t rows,
                           std::int64_t d, const double* q, double* scratch, cudaStream_t stream) {
  if (dtype == DType::kFloat64 && q == nullptr) return static_cast<const double*>(B) + row0 * d;
  const double* q_rows = q != nullptr ? q + row0 : nullptr;
  dispatch_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    widen_scaled_rows<T><<<grid_size(rows * d), kThreadsPerBlock, 0, stream>>>(
        static_cast<const T*>(B) + row0 * d, q_rows, rows, d, scratch);
  });
  CUDA_CHECK_LAUNCH("widen_scaled_rows");
  return scratch;
}

// C (d x d, column-major, full) = X^T X with X = diag(q) B, accumulated over row chunks.
void dual_gram(const void* B, DType dtype, std::int64_t n, std::int64_t d, const double* q,
               double* C, cudaStream_t stream) {
  cublasHandle_t handle = cublas_handle(stream);
  const bool needs_copy = !(dtype == DType::kFloat64 && q == nullptr);
  const std::int64_t chunk = needs_copy ? std::min(n, kGramChunkRows) : n;
  DeviceBuffer<double> scratch(needs_copy ? checked_size(chunk, d) : 0, stream);
  CUDA_CHECK(cudaMemsetAsync(C, 0, checked_size(d, d, sizeof(double)), stream));
  for (std::int64_t row0 = 0; row0 < n; row0 += chunk) {
    const std::int64_t rows = std::min(chunk, n - row0);
    const double* X = widened_rows(B, dtype, row0, rows, d, q, scratch.data(), stream);
    // A row-major rows x d block is the column-major d x rows matrix X^T (ld = d), so
    // C += X^T (X^T)^T is gemm(N, T). gemm rather than syrk: it is the better tuned kernel and
    // leaves C fully symmetric.
    const double one = 1.0;
    CUBLAS_CHECK(cublasDgemm(handle, CUBLAS_OP_N, CUBLAS_OP_T, static_cast<int>(d),
                             static_cast<int>(d), static_cast<int>(rows), &one, X,
                             static_cast<int>(d), X, static_cast<int>(d), &one, C,
                             static_cast<int>(d)));
  }
}

// cusolverDn parameters object (RAII).
class SolverParams {
 public:
  SolverParams() { CUSOLVER_CHECK(cusolverDnCreateParams(&params_)); }
  ~SolverParams() { static_cast<void>(cusolverDnDestroyParams(params_)); }
  SolverParams(const SolverParams&) = delete;
  SolverParams& operator=(const SolverParams&) = delete;
  cusolverDnParams_t get() const { return params_; }

 private:
  cusolverDnParams_t params_ = nullptr;
};

// In-place symmetric eigendecomposition of the column-major m x m matrix A (eigenvectors
// overwrite A); eigenvalues ascending into `w` (device). Throws if syevd did not converge. The
// 64-bit API: the legacy one takes the workspace size as an int, which overflows for m above
// about 32,000 (the workspace is ~2 m^2 doubles), below the allowed m <= 46,340.
void symmetric_eigh(double* A, std::int64_t m, double* w, cudaStream_t stream) {
  cusolverDnHandle_t handle = cusolver_handle(stream);
  const SolverParams params;
  std::size_t device_bytes = 0, host_bytes = 0;
  CUSOLVER_CHECK(cusolverDnXsyevd_bufferSize(
      handle, params.get(), CUSOLVER_EIG_MODE_VECTOR, CUBLAS_FILL_MODE_LOWER, m, CUDA_R_64F, A, m,
      CUDA_R_64F, w, CUDA_R_64F, &device_bytes, &host_bytes));
  DeviceBuffer<unsigned char> work(std::max<std::size_t>(device_bytes, 1), stream);
  std::vector<unsigned char> host_work(std::max<std::size_t>(host_bytes, 1));
  DeviceBuffer<int> info(1, stream);
  CUSOLVER_CHECK(cusolverDnXsyevd(handle, params.get(), CUSOLVER_EIG_MODE_VECTOR,
                                  CUBLAS_FILL_MODE_LOWER, m, CUDA_R_64F, A, m, CUDA_R_64F, w,
                                  CUDA_R_64F, work.data(), device_bytes, host_work.data(),
                                  host_bytes, info.data()));
  const int host_info = read_value(info.data(), stream);  // also keeps host_work alive until done
  if (host_info != 0)
    throw CudaError("cusolverDnXsyevd failed: info = " + std::to_string(host_info) +
                    (host_info > 0 ? " (the eigensolver did not converge; is the input finite?)"
                                   : " (invalid argument)"));
}

// Largest |L_e| (as the bits of a non-negative double, which order like its value) and whether
// an entry is not finite, over the n x n entries: one atomic per block.
template <class T>
__global__ void scan_dense_entries(const T* __restrict__ L, std::int64_t count,
                                   unsigned long long* __restrict__ largest,
                                   int* __restrict__ non_finite) {
  __shared__ unsigned long long scratch[33];
  unsigned long long top = 0;  // the bits of +0.0
  bool bad = false;
  for (std::int64_t e = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; e < count;
       e += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const double x = static_cast<double>(L[e]);
    if (!isfinite(x)) {
      bad = true;
      continue;
    }
    const auto bits = static_cast<unsigned long long>(__double_as_longlong(fabs(x)));
    top = bits > top ? bits : top;
  }
  if (bad) atomicOr(non_finite, 1);
  const unsigned long long block_top = ~block_min_u64(~top, scratch);  // max through min
  if (threadIdx.x == 0) atomicMax(largest, block_top);
}

// The first (row-major) e = i n + j, i < j, with |L_ij - L_ji| > tolerance: one atomic per block.
template <class T>
__global__ void first_asymmetric_entry(const T* __restrict__ L, std::int64_t n, double tolerance,
                                       unsigned long long* __restrict__ first) {
  __shared__ unsigned long long scratch[33];
  unsigned long long best = kRaceEmpty;
  const std::int64_t count = n * n;
  for (std::int64_t e = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; e < count;
       e += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t i = e / n, j = e % n;
    if (j <= i) continue;
    const double gap = fabs(static_cast<double>(L[i * n + j]) - static_cast<double>(L[j * n + i]));
    if (gap > tolerance && static_cast<unsigned long long>(e) < best)
      best = static_cast<unsigned long long>(e);
  }
  best = block_min_u64(best, scratch);
  if (threadIdx.x == 0) atomicMin(first, best);
}

template <class T>
T read_entry(const void* L, std::int64_t e, cudaStream_t stream) {
  return read_value(static_cast<const T*>(L) + e, stream);
}

// The CPU dense_spectrum's finiteness and symmetry checks on the device.
void check_dense_kernel(const void* L, DType dtype, std::int64_t n, double symmetry_rtol,
                        cudaStream_t stream) {
  DeviceBuffer<unsigned long long> flags(3, stream);  // largest bits, first pair, non-finite
  const unsigned long long initial[3] = {0, kRaceEmpty, 0};
  CUDA_CHECK(
      cudaMemcpyAsync(flags.data(), initial, sizeof(initial), cudaMemcpyHostToDevice, stream));
  int* non_finite = reinterpret_cast<int*>(flags.data() + 2);
  dispatch_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    scan_dense_entries<T><<<grid_size(n * n), kThreadsPerBlock, 0, stream>>>(
        static_cast<const T*>(L), n * n, flags.data(), non_finite);
  });
  CUDA_CHECK_LAUNCH("scan_dense_entries");
  unsigned long long host[3] = {0, 0, 0};
  CUDA_CHECK(cudaMemcpyAsync(host, flags.data(), sizeof(host), cudaMemcpyDeviceToHost, stream));
  CUDA_CHECK(cudaStreamSynchronize(stream));
  IPDPP_REQUIRE(host[2] == 0, kNonFiniteKernelMessage);
  if (symmetry_rtol < 0.0) return;
  double largest = 0.0;
  std::memcpy(&largest, &host[0], sizeof(largest));
  const double tolerance = symmetry_rtol * largest;
  dispatch_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    first_asymmetric_entry<T><<<grid_size(n * n), kThreadsPerBlock, 0, stream>>>(
        static_cast<const T*>(L), n, tolerance, flags.data() + 1);
  });
  CUDA_CHECK_LAUNCH("first_asymmetric_entry");
  const unsigned long long first = read_value(flags.data() + 1, stream);
  if (first == kRaceEmpty) return;
  const auto e = static_cast<std::int64_t>(first);
  const std::int64_t i = e / n, j = e % n;
  const double gap = dispatch_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    return std::abs(static_cast<double>(read_entry<T>(L, i * n + j, stream)) -
                    static_cast<double>(read_entry<T>(L, j * n + i, stream)));
  });
  throw not_symmetric_error(i, j, gap, symmetry_rtol, tolerance);
}

std::vector<double> to_host(const double* device, std::int64_t count, cudaStream_t stream) {
  std::vector<double> host(static_cast<std::size_t>(count));
  if (count > 0)
    CUDA_CHECK(cudaMemcpyAsync(host.data(), device, host.size() * sizeof(double),
                               cudaMemcpyDeviceToHost, stream));
  CUDA_CHECK(cudaStreamSynchronize(stream));
  return host;
}

}  // namespace

std::vector<double> dual_gram_eigenvalues(const void* features, DType dtype, std::int64_t n,
                                          std::int64_t d, const double* quality,
                                          cudaStream_t stream) {
  IPDPP_REQUIRE(n > 0 && d > 0, "features must be non-empty");
  DeviceBuffer<double> C(checked_size(d, d), stream);
  DeviceBuffer<double> w(static_cast<std::size_t>(d), stream);
  dual_gram(features, dtype, n, d, quality, C.data(), stream);
  symmetric_eigh(C.data(), d, w.data(), stream);
  return to_host(w.data(), d, stream);
}

std::unique_ptr<DeviceSpectrum> lowrank_spectrum(const void* features, DType dtype, std::int64_t n,
                                                 std::int64_t d, const double* quality, double rtol,
                                                 cudaStream_t stream) {
  IPDPP_REQUIRE(n > 0 && d > 0, "features must be non-empty");
  IPDPP_REQUIRE(d <= (std::int64_t{1} << 31) - 1 && n <= (std::int64_t{1} << 31) - 1,
                "features is too large for cuBLAS (n and d must be below 2^31)");
  auto spectrum = std::make_unique<DeviceSpectrum>();
  spectrum->n = n;
  spectrum->dtype = dtype;
  CUDA_CHECK(cudaGetDevice(&spectrum->device));

  DeviceBuffer<double> C(checked_size(d, d), stream);
  DeviceBuffer<double> w(static_cast<std::size_t>(d), stream);
  dual_gram(features, dtype, n, d, quality, C.data(), stream);
  symmetric_eigh(C.data(), d, w.data(), stream);
  const std::vector<double> all = to_host(w.data(), d, stream);
  const std::int64_t first = first_kept(all.data(), static_cast<std::int64_t>(all.size()), rtol);
  const std::int64_t rank = d - first;
  spectrum->rank = rank;
  spectrum->eigenvalues.assign(all.begin() + first, all.end());
  if (rank == 0) return spectrum;

  // V = X U_r Lambda_r^{-1/2}; with row-major V (n x rank) = column-major V^T (rank x n):
  // V^T = Us^T X^T, one gemm(T, N) per row chunk.
  DeviceBuffer<double> Us(checked_size(d, rank), stream);
  scale_eigenvector_columns<<<grid_size(d * rank), kThreadsPerBlock, 0, stream>>>(
      C.data(), w.data(), d, first, rank, Us.data());
  CUDA_CHECK_LAUNCH("scale_eigenvector_columns");

  spectrum->eigenvectors =
      DeviceBuffer<unsigned char>(checked_size(n, rank, dtype_size(dtype)), stream);
  const bool needs_copy = !(dtype == DType::kFloat64 && quality == nullptr);
  const std::int64_t chunk = std::min(n, kGramChunkRows);
  DeviceBuffer<double> x_scratch(needs_copy ? checked_size(chunk, d) : 0, stream);
  DeviceBuffer<double> v_scratch(dtype == DType::kFloat32 ? checked_size(chunk, rank) : 0, stream);
  cublasHandle_t handle = cublas_handle(stream);
  for (std::int64_t row0 = 0; row0 < n; row0 += chunk) {
    const std::int64_t rows = std::min(chunk, n - row0);
    const double* X =
        widened_rows(features, dtype, row0, rows, d, quality, x_scratch.data(), stream);
    double* out = dtype == DType::kFloat32
                      ? v_scratch.data()
                      : reinterpret_cast<double*>(spectrum->eigenvectors.data()) + row0 * rank;
    const double one = 1.0, zero = 0.0;
    CUBLAS_CHECK(cublasDgemm(handle, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(rank),
                             static_cast<int>(rows), static_cast<int>(d), &one, Us.data(),
                             static_cast<int>(d), X, static_cast<int>(d), &zero, out,
                             static_cast<int>(rank)));
    if (dtype == DType::kFloat32) {
      narrow_copy<float><<<grid_size(rows * rank), kThreadsPerBlock, 0, stream>>>(
          out, rows * rank, reinterpret_cast<float*>(spectrum->eigenvectors.data()) + row0 * rank);
      CUDA_CHECK_LAUNCH("narrow_copy");
    }
  }
  // The spectrum outlives this call and may be read on other streams: finish it here.
  CUDA_CHECK(cudaStreamSynchronize(stream));
  spectrum->eigenvectors.free_when_device_idle();
  return spectrum;
}

std::unique_ptr<DeviceSpectrum> dense_spectrum(const void* L, DType dtype, std::int64_t n,
                                               double rtol, double symmetry_rtol, double psd_rtol,
                                               cudaStream_t stream) {
  IPDPP_REQUIRE(n > 0, "L must be non-empty");
  IPDPP_REQUIRE(rtol >= 0.0 && rtol < 1.0, "rtol must be in [0, 1)");
  IPDPP_REQUIRE(psd_rtol >= 0.0, "psd_rtol must be >= 0");
  IPDPP_REQUIRE(n <= 46340, "L is too large for the dense GPU eigensolver (n must be < 46341)");
  check_dense_kernel(L, dtype, n, symmetry_rtol, stream);
  auto spectrum = std::make_unique<DeviceSpectrum>();
  spectrum->n = n;
  spectrum->dtype = dtype;
  CUDA_CHECK(cudaGetDevice(&spectrum->device));

  // A symmetric row-major matrix equals its column-major reading, so no transpose is needed.
  DeviceBuffer<double> A(checked_size(n, n), stream);
  if (dtype == DType::kFloat32) {
    widen_scaled_rows<float><<<grid_size(n * n), kThreadsPerBlock, 0, stream>>>(
        static_cast<const float*>(L), nullptr, n, n, A.data());
    CUDA_CHECK_LAUNCH("widen_scaled_rows");
  } else {
    CUDA_CHECK(cudaMemcpyAsync(A.data(), L, checked_size(n, n, sizeof(double)),
                               cudaMemcpyDeviceToDevice, stream));
  }
  DeviceBuffer<double> w(static_cast<std::size_t>(n), stream);
  symmetric_eigh(A.data(), n, w.data(), stream);
  const std::vector<double> all = to_host(w.data(), n, stream);
  check_positive_semidefinite(all.data(), n, psd_rtol, "L");  // the CPU's rule
  const std::int64_t first = first_kept(all.data(), static_cast<std::int64_t>(all.size()), rtol);
  const std::int64_t rank = n - first;
  spectrum->rank = rank;
  spectrum->eigenvalues.assign(all.begin() + first, all.end());
  if (rank == 0) return spectrum;
  spectrum->eigenvectors =
      DeviceBuffer<unsigned char>(checked_size(n, rank, dtype_size(dtype)), stream);
  dispatch_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    gather_dense_eigenvectors<T><<<grid_size(n * rank), kThreadsPerBlock, 0, stream>>>(
        A.data(), n, first, rank, reinterpret_cast<T*>(spectrum->eigenvectors.data()));
  });
  CUDA_CHECK_LAUNCH("gather_dense_eigenvectors");
  CUDA_CHECK(cudaStreamSynchronize(stream));  // may be read on other streams (see above)
  spectrum->eigenvectors.free_when_device_idle();
  return spectrum;
}

}  // namespace ipdpp::cuda

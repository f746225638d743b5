// Kernel construction on the GPU: the spectrum (eigenvalues, orthonormal eigenvectors) of a
// low-rank kernel L = diag(q) B B^T diag(q) through its d x d dual C = B^T diag(q^2) B (cuBLAS),
// and of a dense kernel; eigendecomposition with cuSOLVER (syevd).
//
// Precision: the Gram matrix, the eigendecomposition and the eigenvector product are computed in
// float64 for float32 input as well (rows are widened chunk by chunk). A float32 Gram matrix of
// n = 1e6 rows carries relative errors ~1e-5 of the largest eigenvalue, which would turn every
// smaller eigenvalue into noise and bias the sampler; float64 products cost about the same as
// float32 ones on H100/H200 (FP64 tensor cores). Eigenvectors are stored in the input's dtype.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "common/dtype.h"
#include "common/esp_cache.h"
#include "cuda/device_buffer.h"

namespace ipdpp::cuda {

// The spectrum of a kernel on one device. Owned by the Python object that caches it.
struct DeviceSpectrum {
  std::int64_t n = 0;
  std::int64_t rank = 0;
  DType dtype = DType::kFloat64;
  int device = 0;
  // Eigenvalues above rtol * max, ascending (host copy: the selection tables are built on the
  // host, see select_eigenvectors.h).
  std::vector<double> eigenvalues;
  // Eigenvectors, n x rank row-major in `dtype`, orthonormal columns (column c <-> eigenvalue c).
  DeviceBuffer<unsigned char> eigenvectors;
  // Rejection-sampler tables (built on first use by prepare_rejection_tables): leverage scores
  // l_i = ||V_i||^2 as the alias table's weights (float64, n) and the alias table itself.
  DeviceBuffer<double> leverage;
  DeviceBuffer<double> alias_probability;
  DeviceBuffer<std::int32_t> alias_index;
  // Selection tables (select_eigenvectors.cu), uploaded on first use: the eigenvalues and their
  // logarithms (device, rank) and the log-ESP table per k, each built once per spectrum as on
  // the CPU instead of once per call.
  DeviceBuffer<double> eigenvalues_device;
  DeviceBuffer<double> log_eigenvalues_device;
  EspTableCache<DeviceBuffer<double>> esp_tables;
  // Serialises the lazy construction of the tables above: Python threads may sample from one
  // spectrum at once (the bindings release the GIL).
  std::mutex tables_mutex;

  template <class T>
  const T* eigenvectors_as() const {
    return reinterpret_cast<const T*>(eigenvectors.data());
  }
};

// Spectrum of L = diag(q) B B^T diag(q).
//   features: device, n x d row-major, `dtype`; quality: device float64 (n,) or nullptr (q = 1).
//   rtol: eigenvalues <= rtol * max eigenvalue are dropped (they are rounding noise).
// Synchronises `stream` twice: the rank decides the size of the eigenvector buffer, and the
// finished spectrum may be read on any stream afterwards.
std::unique_ptr<DeviceSpectrum> lowrank_spectrum(const void* features, DType dtype, std::int64_t n,
                                                 std::int64_t d, const double* quality, double rtol,
                                                 cudaStream_t stream);

// Eigenvalues (all d, ascending, host) of the dual Gram matrix C = B^T diag(q^2) B: the
// "Gram + eigendecomposition" part of lowrank_spectrum alone (benchmarks compare it with
// torch's B.T @ B + eigh).
std::vector<double> dual_gram_eigenvalues(const void* features, DType dtype, std::int64_t n,
                                          std::int64_t d, const double* quality,
                                          cudaStream_t stream);

// Spectrum of a dense symmetric PSD L (device, n x n row-major, `dtype`), with the CPU
// dense_spectrum's checks and messages (common/spectrum_rules.h): std::invalid_argument
// (ValueError) naming `L` when an entry is not finite or the first pair with |L_ij - L_ji| >
// symmetry_rtol * max|L| (skipped when symmetry_rtol < 0: the caller checked), and when the
// smallest eigenvalue is below -psd_rtol * max|eigenvalue|. Eigenvalues <= rtol * max are dropped.
std::unique_ptr<DeviceSpectrum> dense_spectrum(const void* L, DType dtype, std::int64_t n,
                                               double rtol, double symmetry_rtol, double psd_rtol,
                                               cudaStream_t stream);

}  // namespace ipdpp::cuda

// Eigenvector selection, the first phase of spectral DPP sampling (Kulesza & Taskar 2012):
// a k-DPP keeps an index set J, |J| = k, with P(J) ∝ prod_{j in J} lambda_j (Algorithm 8 through
// the log-space ESP table of common/esp.h); a DPP keeps eigenpair j with probability
// lambda_j / (1 + lambda_j). One thread per sample draws from RandomStream(seed, sample,
// kEigenSelection), the stream the CPU backend uses for the same phase.
//
// Where the work happens: the ESP table is O(r k) and depends only on the eigenvalues, which the
// host already holds (spectrum.h), so it is built on the host and uploaded, once per (spectrum, k)
// (DeviceSpectrum::esp_tables); the per-sample
// walks (O(r) each, num_samples of them) run on the device and write straight into the buffers
// the sequential phase reads, with no host round trip per sample.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "cuda/device_buffer.h"
#include "cuda/spectrum.h"

namespace ipdpp::cuda {

// Selected eigenvector indices of a batch of samples, on the device.
struct EigenSelection {
  std::int64_t num_samples = 0;
  std::int64_t width = 0;              // row stride of `indices`: k, or the rank for a DPP
  DeviceBuffer<std::int64_t> indices;  // num_samples x width, ascending, valid up to counts[s]
  DeviceBuffer<std::int32_t> counts;   // num_samples: k for a k-DPP, random for a DPP
  std::int64_t max_count = 0;          // max of counts (k for a k-DPP)
};

// Draws the eigenvector sets of samples sample_offset .. sample_offset + num_samples - 1.
// k >= 0: k-DPP (requires k <= spectrum.rank); k < 0: DPP.
EigenSelection select_eigenvectors(DeviceSpectrum& spectrum, std::int64_t k,
                                   std::int64_t num_samples, std::uint64_t seed,
                                   std::uint64_t sample_offset, cudaStream_t stream);

// Launch APIs (exposed for tests of the phase on its own).
//   log_esp_table: device (rank + 1) x (k + 1), common/esp.h layout; log_eigenvalues: device
//   (rank,) indices: device num_samples x k
void launch_select_eigenvectors_k(const double* log_esp_table, const double* log_eigenvalues,
                                  std::int64_t rank, std::int64_t k, std::int64_t num_samples,
                                  std::uint64_t seed, std::uint64_t sample_offset,
                                  std::int64_t* indices, std::int32_t* counts, cudaStream_t stream);
//   eigenvalues: device (rank,); indices: device num_samples x rank; counts: device (num_samples,)
void launch_select_eigenvectors_bernoulli(const double* eigenvalues, std::int64_t rank,
                                          std::int64_t num_samples, std::uint64_t seed,
                                          std::uint64_t sample_offset, std::int64_t* indices,
                                          std::int32_t* counts, cudaStream_t stream);

}  // namespace ipdpp::cuda

#include <algorithm>
#include <cmath>
#include <mutex>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/esp.h"
#include "common/philox.h"
#include "common/select_eigenvectors.h"
#include "cuda/cuda_check.h"
#include "cuda/launch_config.h"
#include "cuda/select_eigenvectors.h"

namespace ipdpp::cuda {
namespace {

__global__ void select_eigenvectors_k_kernel(
    const double* __restrict__ table, const double* __restrict__ log_eigenvalues, std::int64_t rank,
    std::int64_t k, std::int64_t num_samples, std::uint64_t seed, std::uint64_t sample_offset,
    std::int64_t* __restrict__ indices, std::int32_t* __restrict__ counts) {
  for (std::int64_t s = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
       s < num_samples; s += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    RandomStream rng(seed, sample_offset + static_cast<std::uint64_t>(s),
                     RandomPurpose::kEigenSelection);
    const std::int64_t written =
        select_k_from_log_esp(table, log_eigenvalues, rank, k, rng, indices + s * k);
    counts[s] = static_cast<std::int32_t>(written);
  }
}

__global__ void select_eigenvectors_bernoulli_kernel(const double* __restrict__ eigenvalues,
                                                     std::int64_t rank, std::int64_t num_samples,
                                                     std::uint64_t seed,
                                                     std::uint64_t sample_offset,
                                                     std::int64_t* __restrict__ indices,
                                                     std::int32_t* __restrict__ counts) {
  for (std::int64_t s = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
       s < num_samples; s += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    RandomStream rng(seed, sample_offset + static_cast<std::uint64_t>(s),
                     RandomPurpose::kEigenSelection);
    counts[s] =
        static_cast<std::int32_t>(select_bernoulli(eigenvalues, rank, rng, indices + s * rank));
  }
}

// A long-lived copy of `host` on the device, complete when this returns (other threads may use
// it on their streams at once) and freed safely for any stream (device_buffer.h).
DeviceBuffer<double> upload_shared(const std::vector<double>& host, cudaStream_t stream) {
  DeviceBuffer<double> buffer = to_device(host.data(), host.size(), stream);
  CUDA_CHECK(cudaStreamSynchronize(stream));
  buffer.free_when_device_idle();
  return buffer;
}

struct SelectionTables {
  const double* eigenvalues;      // device (rank,)
  const double* log_eigenvalues;  // device (rank,)
  std::vector<double> log_eigenvalues_host;
};

// The spectrum's eigenvalues and their logarithms on the device, uploaded on first use.
SelectionTables selection_tables(DeviceSpectrum& spectrum, cudaStream_t stream) {
  std::vector<double> log_lambda(spectrum.eigenvalues.size());
  for (std::size_t j = 0; j < log_lambda.size(); ++j)
    log_lambda[j] = std::log(spectrum.eigenvalues[j]);
  const std::lock_guard<std::mutex> lock(spectrum.tables_mutex);
  if (spectrum.eigenvalues_device.data() == nullptr) {
    spectrum.log_eigenvalues_device = upload_shared(log_lambda, stream);
    spectrum.eigenvalues_device = upload_shared(spectrum.eigenvalues, stream);
  }
  return {spectrum.eigenvalues_device.data(), spectrum.log_eigenvalues_device.data(),
          std::move(log_lambda)};
}

}  // namespace

void launch_select_eigenvectors_k(const double* log_esp_table, const double* log_eigenvalues,
                                  std::int64_t rank, std::int64_t k, std::int64_t num_samples,
                                  std::uint64_t seed, std::uint64_t sample_offset,
                                  std::int64_t* indices, std::int32_t* counts,
                                  cudaStream_t stream) {
  if (num_samples == 0) return;
  select_eigenvectors_k_kernel<<<grid_size(num_samples), kThreadsPerBlock, 0, stream>>>(
      log_esp_table, log_eigenvalues, rank, k, num_samples, seed, sample_offset, indices, counts);
  CUDA_CHECK_LAUNCH("select_eigenvectors_k_kernel");
}

void launch_select_eigenvectors_bernoulli(const double* eigenvalues, std::int64_t rank,
                                          std::int64_t num_samples, std::uint64_t seed,
                                          std::uint64_t sample_offset, std::int64_t* indices,
                                          std::int32_t* counts, cudaStream_t stream) {
  if (num_samples == 0) return;
  select_eigenvectors_bernoulli_kernel<<<grid_size(num_samples), kThreadsPerBlock, 0, stream>>>(
      eigenvalues, rank, num_samples, seed, sample_offset, indices, counts);
  CUDA_CHECK_LAUNCH("select_eigenvectors_bernoulli_kernel");
}

EigenSelection select_eigenvectors(DeviceSpectrum& spectrum, std::int64_t k,
                                   std::int64_t num_samples, std::uint64_t seed,
                                   std::uint64_t sample_offset, cudaStream_t stream) {
  const std::int64_t rank = spectrum.rank;
  IPDPP_REQUIRE(k <= rank,
                "k = " + std::to_string(k) + " exceeds the kernel's rank " + std::to_string(rank));
  EigenSelection selection;
  selection.num_samples = num_samples;
  selection.width = k >= 0 ? k : rank;
  selection.max_count = selection.width;
  selection.indices =
      DeviceBuffer<std::int64_t>(checked_size(num_samples, selection.width), stream);
  selection.counts = DeviceBuffer<std::int32_t>(static_cast<std::size_t>(num_samples), stream);
  if (num_samples == 0) return selection;
  const SelectionTables tables = selection_tables(spectrum, stream);
  if (k >= 0) {
    const auto table = spectrum.esp_tables.get(
        tables.log_eigenvalues_host.data(), rank, k,
        [stream](std::vector<double>&& host) { return upload_shared(host, stream); });
    launch_select_eigenvectors_k(table->data(), tables.log_eigenvalues, rank, k, num_samples, seed,
                                 sample_offset, selection.indices.data(), selection.counts.data(),
                                 stream);
  } else {
    launch_select_eigenvectors_bernoulli(tables.eigenvalues, rank, num_samples, seed, sample_offset,
                                         selection.indices.data(), selection.counts.data(), stream);
    // The sampling kernels size their shared memory by the largest set actually drawn (DPP
    // samples are usually far smaller than the rank), which the host must know: one read back.
    std::vector<std::int32_t> counts(static_cast<std::size_t>(num_samples));
    CUDA_CHECK(cudaMemcpyAsync(counts.data(), selection.counts.data(),
                               counts.size() * sizeof(std::int32_t), cudaMemcpyDeviceToHost,
                               stream));
    CUDA_CHECK(cudaStreamSynchronize(stream));
    selection.max_count = *std::max_element(counts.begin(), counts.end());
  }
  return selection;
}

}  // namespace ipdpp::cuda

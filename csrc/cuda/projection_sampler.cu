// The CUDA sequential (projection) sampler's host driver: sizes the batch to the device's
// resident blocks and the scratch budget, picks the lane grouping, gathers each chunk of samples'
// eigenvector columns and launches the fused kernel of projection_kernel.cuh, then reports a
// numerical breakdown. Kept apart from the device code so that each file stays one concern.
#include <algorithm>
#include <string>

#include "common/error.h"
#include "cuda/cuda_check.h"
#include "cuda/device_buffer.h"
#include "cuda/launch_config.h"
#include "cuda/projection_kernel.cuh"
#include "cuda/projection_sampler.h"

namespace ipdpp::cuda {
namespace {

// Lanes per row group: enough to cover a row's 16-byte chunks in about two rounds, at least 4
// (the 4 lanes that finish the 4 rows of a quad) and at most a warp.
int lanes_per_row(std::int64_t chunks) {
  int g = 4;
  while (g < 32 && 2 * g < chunks) g *= 2;
  return g;
}

template <class T>
void projection_sample_typed(const DeviceSpectrum& spectrum, const EigenSelection& selection,
                             std::uint64_t seed, std::uint64_t sample_offset, std::int64_t* out,
                             cudaStream_t stream) {
  const std::int64_t n = spectrum.n, m = selection.max_count, S = selection.num_samples;
  if (S == 0) return;
  if (m == 0) {  // every sample is empty: rows are all padding
    CUDA_CHECK(
        cudaMemsetAsync(out, 0xff, checked_size(S, selection.width, sizeof(std::int64_t)), stream));
    return;
  }
  const std::int64_t ld = padded_width<T>(m);
  const std::size_t shared = projection_shared_bytes<T>(m, ld);
  IPDPP_REQUIRE(shared <= projection_shared_limit<T>(),
                "k = " + std::to_string(m) +
                    " is too large for the CUDA sequential sampler (at most " +
                    std::to_string(projection_max_k(spectrum.dtype)) + " for this dtype)");
  // The lane grouping fixes the summation order of every residual, so it must not depend on
  // the batch: from the row width (k, or the rank for a DPP), never from max_count, which for a
  // DPP is the largest sample of this batch. Zero padding up to ld then only adds exact zeros,
  // and a sample is bit for bit the same whichever batch it is drawn in.
  const int G = lanes_per_row(padded_width<T>(selection.width) / Vec<T>::kWidth);
  int per_sm = 0;
  switch (G) {
    case 4: per_sm = max_blocks_per_sm<T, 4>(shared); break;
    case 8: per_sm = max_blocks_per_sm<T, 8>(shared); break;
    case 16: per_sm = max_blocks_per_sm<T, 16>(shared); break;
    default: per_sm = max_blocks_per_sm<T, 32>(shared); break;
  }
  IPDPP_ASSERT(per_sm > 0);
  const std::int64_t resident = static_cast<std::int64_t>(per_sm) * multiprocessor_count();

  // Samples per launch: bounded by the gathered-V_J scratch and by one block per sample.
  const std::int64_t per_sample_bytes =
      static_cast<std::int64_t>(checked_size(n, ld + 1, sizeof(T)));
  const std::int64_t chunk = std::max<std::int64_t>(
      1, std::min({S, resident, kSequentialScratchBytes / per_sample_bytes}));
  // Blocks per sample: all resident blocks, but no block with fewer than two quads per row group
  // (below that the per-step winner reduction over blocks costs more than the rows it saves).
  const std::int64_t quads = (n + 3) / 4;
  const std::int64_t min_quads_per_block = 2 * (kProjectionThreads / G);
  const std::int64_t useful =
      std::max<std::int64_t>(1, (quads + min_quads_per_block - 1) / min_quads_per_block);

  DeviceBuffer<T> VJ(checked_size(chunk, n, ld), stream);
  DeviceBuffer<T> residual(checked_size(chunk, n), stream);
  DeviceBuffer<int> status(1, stream);
  CUDA_CHECK(cudaMemsetAsync(status.data(), 0, sizeof(int), stream));
  const std::int64_t B = std::max<std::int64_t>(1, std::min(resident / chunk, useful));
  DeviceBuffer<unsigned long long> winners(checked_size(3, chunk), stream);

  for (std::int64_t s0 = 0; s0 < S; s0 += chunk) {
    const std::int64_t count = std::min(chunk, S - s0);
    gather_selected_columns<T><<<grid_size(count * n * ld), kThreadsPerBlock, 0, stream>>>(
        spectrum.eigenvectors_as<T>(), n, spectrum.rank,
        selection.indices.data() + s0 * selection.width, selection.width,
        selection.counts.data() + s0, count, ld, VJ.data());
    CUDA_CHECK_LAUNCH("gather_selected_columns");
    CUDA_CHECK(cudaMemsetAsync(winners.data(), 0xff,  // every slot kRaceEmpty
                               checked_size(3, count, sizeof(unsigned long long)), stream));
    ProjectionParams params{VJ.data(),
                            residual.data(),
                            winners.data(),
                            selection.counts.data() + s0,
                            out + s0 * selection.width,
                            status.data(),
                            n,
                            ld,
                            m,
                            selection.width,
                            count,
                            static_cast<int>(B),
                            seed,
                            sample_offset + static_cast<std::uint64_t>(s0)};
    const auto blocks = static_cast<unsigned int>(count * B);
    switch (G) {
      case 4: launch_projection<T, 4>(params, blocks, shared, stream); break;
      case 8: launch_projection<T, 8>(params, blocks, shared, stream); break;
      case 16: launch_projection<T, 16>(params, blocks, shared, stream); break;
      default: launch_projection<T, 32>(params, blocks, shared, stream); break;
    }
  }
  const int host_status = read_value(status.data(), stream);
  if (host_status != 0)
    throw InternalError("projection_kernel: the sequential phase broke down numerically (status " +
                        std::to_string(host_status) +
                        "): the selected eigenvectors are not orthonormal enough in this dtype; "
                        "use float64 or a larger rtol");
}

}  // namespace

std::int64_t projection_max_k(DType dtype) {
  return dispatch_dtype(dtype, [](auto tag) {
    using T = decltype(tag);
    return largest_k_in_shared_memory(projection_shared_limit<T>(), [](std::int64_t k) {
      return projection_shared_bytes<T>(k, padded_width<T>(k));
    });
  });
}

void projection_sample(const DeviceSpectrum& spectrum, const EigenSelection& selection,
                       std::uint64_t seed, std::uint64_t sample_offset, std::int64_t* out,
                       cudaStream_t stream) {
  dispatch_dtype(spectrum.dtype, [&](auto tag) {
    projection_sample_typed<decltype(tag)>(spectrum, selection, seed, sample_offset, out, stream);
  });
}

}  // namespace ipdpp::cuda

// Exact DPP / k-DPP sampling from a DeviceSpectrum (the CPU twin is cpu/spectral_sampler.h):
// eigenvector selection on the device (cuda/select_eigenvectors.h), then the sequential
// (cuda/projection_sampler.h) or rejection (cuda/rejection_sampler.h) projection phase.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "common/sampling_method.h"
#include "cuda/spectrum.h"

namespace ipdpp::cuda {

// The method that `method` stands for (kAuto resolved by the GPU rule of common/
// sampling_method.h) for k-DPP samples of size k, or DPP samples when k < 0.
ProjectionMethod resolve_method(const DeviceSpectrum& spectrum, std::int64_t k,
                                ProjectionMethod method);

// Draws num_samples samples (k >= 0: k-DPP, k < 0: DPP) into `out` (device int64, num_samples x
// k, or num_samples x rank for a DPP): each row holds its items in increasing order followed by
// -1 padding; sample i uses the random streams of sample sample_offset + i. Throws
// std::invalid_argument before any work when k (or, for a DPP, the rank, which bounds every drawn
// size) exceeds what the chosen kernel's shared memory holds on this device, so that whether a
// call fails never depends on the drawn sizes.
void sample(DeviceSpectrum& spectrum, std::int64_t k, std::int64_t num_samples, std::uint64_t seed,
            std::uint64_t sample_offset, ProjectionMethod method, std::int64_t* out,
            cudaStream_t stream);

}  // namespace ipdpp::cuda

// The sequential (projection) phase on the GPU as one fused, cooperative kernel per batch of
// samples.
//
// Per sample the kernel keeps V_J (n x k, the selected eigenvectors, gathered once into scratch),
// the residuals r_i = ||(I - W W^T) V_J,i||^2 and, in every block's shared memory, the orthonormal
// k-space basis W = [w_1..w_t]. A step is ONE pass over V_J: u_i = V_J,i . w_t, r_i -= u_i^2, and
// in the same pass the exponential race of the next step (race.cuh) keeps each block's best
// (E_i / r_i, i). One grid-wide barrier per step; after it every block reduces the per-block
// winners itself, re-derives w_{t+1} by Gram-Schmidt (twice, for orthogonality in float32) in
// shared memory, and goes on: no second barrier, no host round trip, k steps in one launch.
// Several samples share a launch (blocks are split between them), so a batch is a few launches.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "cuda/select_eigenvectors.h"
#include "cuda/spectrum.h"

namespace ipdpp::cuda {

// Draws the items of every sample of `selection` (whose eigenvector sets index `spectrum`'s
// columns) and writes them to `out` (device, num_samples x selection.max_count, int64): row s
// holds the counts[s] items of sample s in increasing order, then -1 padding.
// Synchronises `stream` once at the end to check the kernels' numerical status.
void projection_sample(const DeviceSpectrum& spectrum, const EigenSelection& selection,
                       std::uint64_t seed, std::uint64_t sample_offset, std::int64_t* out,
                       cudaStream_t stream);

// Largest k the fused kernel supports for this dtype on the current device (its per-block
// shared memory holds the k x k basis W).
std::int64_t projection_max_k(DType dtype);

}  // namespace ipdpp::cuda

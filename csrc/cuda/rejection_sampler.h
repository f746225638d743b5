// The rejection sequential phase (Barthelmé, Tremblay & Amblard, AISTATS 2023) on the GPU: one
// thread block per sample, so a batch of samples fills the device and the per-sample cost does
// not grow with n.
//
// Proposals are drawn from the leverage scores l_i = ||V_i||^2 of the FULL eigenbasis (n x rank)
// through an alias table (O(1) per draw) and accepted with probability r_i / l_i, where
// r_i = ||(I - W W^T) V_J,i||^2 is the residual of the sample's own eigenvector set J. Since
// r_i <= ||V_J,i||^2 <= l_i, one table serves every J, and the accepted item has exactly the law
// r_i / sum(r) of the projection chain. Proposal a of a sample uses the uniform pair a of
// RandomStream(seed, sample, kRejection): the first uniform draws the alias column and coin, the
// second the acceptance. The block's warps evaluate consecutive proposals concurrently and the
// first accepted one in proposal order wins; later ones of that round are discarded unused and
// re-evaluated (same uniforms) against the new state, so the result is exactly that of the
// one-at-a-time loop and independent of the number of warps.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "cuda/select_eigenvectors.h"
#include "cuda/spectrum.h"

namespace ipdpp::cuda {

// Builds spectrum.leverage and the alias table if they are not there yet (host-side Vose
// construction from the device-computed leverage scores; synchronises `stream` once).
void prepare_rejection_tables(DeviceSpectrum& spectrum, cudaStream_t stream);

// Same contract as projection_sample (projection_sampler.h). Requires prepare_rejection_tables.
void rejection_sample(const DeviceSpectrum& spectrum, const EigenSelection& selection,
                      std::uint64_t seed, std::uint64_t sample_offset, std::int64_t* out,
                      cudaStream_t stream);

// Largest k the rejection kernel supports for this dtype on the current device.
std::int64_t rejection_max_k(DType dtype);

}  // namespace ipdpp::cuda

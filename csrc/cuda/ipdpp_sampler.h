// The structured IP-DPP k-DPP sampler on the GPU, for many problems of
// different sizes in one launch: one problem per class for balanced_subset, or one problem with
// many samples for sample_k_dpp on an IPDPPKernel. The CPU twin is csrc/cpu/ipdpp_sampler.h:
// the same band of the two tables (kept here in log space, always, and whole in device memory:
// (N + 1) x (min(k, N - k) + 1) doubles per table and problem), the same walk and the same
// random stream, so both draw the same samples up to rounding of the branch probabilities.
//
// Problem c owns positions [offsets[c], offsets[c + 1]) of the grouped arrays; with N_c items,
// k_c = min(k[c], N_c) of them are kept: all of them when N_c <= k[c] (nothing to sample), else
// an exact k-DPP draw of S_c = diag(1 - alpha_c p_i P_c) + alpha_c p p^T (P_c = sum of the
// class's p). Kernel 1 builds every problem's two log tables (a block per problem, rows in
// order, the band of a row spread over threads); kernel 2 walks them (a thread per sample).
// Sample s of problem c draws RandomStream(seed, sample_offset + c * samples_per_problem + s,
// kStructured), one uniform per visited position, as the CPU sampler does.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <vector>

namespace ipdpp::cuda {

struct StructuredProblems {
  // Host metadata (C problems).
  std::vector<std::int64_t> offsets;  // C + 1, into the grouped arrays
  std::vector<std::int64_t> k;        // C, requested sizes (>= 0)
  std::vector<double> alpha;          // C, > 0
};

// Number of output entries: sum_c samples_per_problem * min(k[c], N_c).
std::int64_t structured_output_size(const StructuredProblems& problems,
                                    std::int64_t samples_per_problem);

// p: device float64, grouped (problem by problem), values in [0, 1].
// items: device int64, the original index of each grouped position (nullptr: the position).
// out: device int64 of structured_output_size entries; problem c's samples come one after the
//      other, each min(k[c], N_c) original indices in increasing position order.
// Throws std::invalid_argument for the first problem whose alpha is too large (S_c not PSD) or
// whose kernel has rank below k_c, with the CPU sampler's wording (common/ipdpp_errors.h),
// prefixed by the class (common/class_groups.h) when name_classes. Synchronises `stream` once
// (to read those statuses).
void structured_sample(const double* p, const std::int64_t* items,
                       const StructuredProblems& problems, std::int64_t samples_per_problem,
                       std::uint64_t seed, std::uint64_t sample_offset, bool name_classes,
                       std::int64_t* out, cudaStream_t stream);

}  // namespace ipdpp::cuda

// Mode "exact" of balanced_subset on the GPU (the CPU twin is cpu/balanced_subset.h): from every
// class c keep min(k_c, N_c) items, an exact k-DPP draw of the class's IP-DPP kernel S_c, all
// classes in one launch of the structured sampler (cuda/ipdpp_sampler.h). Class c draws
// RandomStream(seed, c, kStructured), so it keeps the same items as the CPU mode "exact".
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace ipdpp::cuda {

// labels, p: device int64 / float64 [n]; k_per_class: host [num_classes]; out: device int64 with
// room for n entries. Writes the kept indices to out in ascending order and returns their number.
// alpha_c = ipdpp_alpha(alpha_power, alpha_value, N_c) (common/ipdpp_alpha.h). Throws
// std::invalid_argument with the CPU's messages for bad labels, p or k_per_class, and naming the
// class whose kernel cannot supply k_c items. Reads labels and p back to the host (the grouping
// by class is a counting sort there; n values cost little next to the sampling) and synchronises
// `stream`.
std::int64_t balanced_subset(const std::int64_t* labels, const double* p, std::int64_t n,
                             const std::int64_t* k_per_class, std::int64_t num_classes,
                             double alpha_power, double alpha_value, std::uint64_t seed,
                             std::int64_t* out, cudaStream_t stream);

}  // namespace ipdpp::cuda

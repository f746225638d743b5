// Per-class subset selection for stage 2 of Lin & Yuan (NeurIPS 2025): from every class c keep
// min(k_c, N_c) items, all classes in one call, classes spread over threads. Class c draws its
// random numbers from RandomStream(seed, c, purpose), so the result depends neither on the
// thread count nor on the other classes.
#pragma once

#include <cstdint>
#include <vector>

#include "common/dtype.h"

namespace ipdpp {

enum class BalancedMode {
  // Exact k-DPP of the class's IP-DPP kernel S_c (structured O(N_c k) sampler); with features,
  // the exact k-DPP of the quality-diversity kernel instead. Class c's draw equals
  // ipdpp_sample_k(p_c, alpha_c, k_c, 1, seed, /*sample_offset=*/c, ...).
  kExact,
  // The paper's Algorithm 1 as published (eigendecompose S_c, Bernoulli eigenvector selection
  // stopped after k acceptances, greedy argmax projection phase). NOT an exact k-DPP sampler.
  kPaper,
  // Uniform k-subset of the class (random class-balanced undersampling, the baseline).
  kRandom,
  // Greedy MAP of det(S_c, Y) (deterministic); with features, of the quality-diversity kernel.
  kGreedy,
};

struct BalancedOptions {
  BalancedMode mode = BalancedMode::kExact;
  // alpha_c = alpha_value when alpha_value > 0, else 1 / N_c^alpha_power (1: the paper's
  // 1/N_c, 2: the released code's 1/N_c^2).
  double alpha_power = 1.0;
  double alpha_value = 0.0;
  std::uint64_t seed = 0;
  int threads = 0;  // <= 0: hardware concurrency
  // Eigenvalue cut-off of the quality-diversity kernels (ipdpp.EIGENVALUE_RTOL from Python).
  double eigenvalue_rtol = 1e-10;
};

// Optional per-item features for the quality-diversity kernel of mode kExact / kGreedy:
// L_c = diag(q) F̂ F̂^T diag(q) over the class's items, F̂ the rows of `data` scaled to unit norm
// (an all-zero row stays zero) and q_i = sqrt(1 - p_i + kQualityFloor), which favours
// low-confidence (high information content) items as IP-DPP does.
struct FeatureMatrix {
  const void* data = nullptr;  // row-major [n, dim]
  DType dtype = DType::kFloat64;
  std::int64_t dim = 0;
};
// Keeps q_i > 0 when p_i = 1, so confidently classified items stay selectable (with a small
// weight) and the class kernel keeps the rank of its features.
constexpr double kQualityFloor = 1e-3;

// labels [n] in [0, num_classes); p [n] in [0, 1]; k_per_class [num_classes] >= 0. Returns the
// kept indices, ascending. Throws std::invalid_argument naming the class when a class's kernel
// cannot supply k_c items (rank below k_c, or alpha too large for S_c to be PSD).
std::vector<std::int64_t> balanced_subset(const std::int64_t* labels, const double* p,
                                          std::int64_t n, const std::int64_t* k_per_class,
                                          std::int64_t num_classes, const BalancedOptions& options,
                                          const FeatureMatrix* features);

}  // namespace ipdpp

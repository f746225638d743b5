// Eigenvector selection, the first phase of spectral DPP sampling (Kulesza & Taskar 2012), as
// the CPU and the GPU both run it: per sample, from RandomStream(seed, sample, kEigenSelection),
//   - a k-DPP keeps an index set J, |J| = k, with P(J) ∝ prod_{j in J} lambda_j (Algorithm 8,
//     through the log-space ESP table of common/esp.h);
//   - a DPP keeps eigenpair j with probability lambda_j / (1 + lambda_j), independently.
// Header-only and free of the standard library's containers so that CUDA kernels include it.
#pragma once

#include <cmath>
#include <cstdint>

#include "common/host_device.h"
#include "common/philox.h"

namespace ipdpp {

// Draws the index set J of a k-DPP's elementary DPP: P(J) = prod_{j in J} x_j / e_k(x), |J| = k
// (Kulesza & Taskar 2012, Algorithm 8). Walks j = m-1 .. 0 and keeps x_j with probability
// x_j e_{l-1}(x_0..x_{j-1}) / e_l(x_0..x_j), where l is the number still to pick; one uniform per
// visited j. Requires e_k(x) > 0 (at least k positive values; the caller checks k <= rank).
// Writes the k chosen indices to `chosen` in increasing order. Returns the number written
// (always k when the precondition holds).
IPDPP_HD std::int64_t select_k_from_log_esp(const double* table, const double* log_x,
                                            std::int64_t m, std::int64_t k, RandomStream& rng,
                                            std::int64_t* chosen) {
  const std::int64_t stride = k + 1;
  std::int64_t remaining = k;
  for (std::int64_t j = m; j >= 1 && remaining > 0; --j) {
    const double log_keep =
        log_x[j - 1] + table[(j - 1) * stride + remaining - 1] - table[j * stride + remaining];
    // When only `remaining` values are left the keep probability is exactly 1 (see log_add_exp),
    // so the uniform in (0, 1) never skips a forced choice.
    if (rng.uniform() < std::exp(log_keep)) chosen[--remaining] = j - 1;
  }
  return k - remaining;
}

// Draws the eigenpairs of a DPP's elementary DPP: pair j (eigenvalue lambda[j] >= 0) is kept with
// probability lambda_j / (1 + lambda_j), one uniform per pair. Writes the kept indices to
// `chosen` in increasing order (room for `rank` of them) and returns their number.
IPDPP_HD std::int64_t select_bernoulli(const double* lambda, std::int64_t rank, RandomStream& rng,
                                       std::int64_t* chosen) {
  std::int64_t count = 0;
  for (std::int64_t j = 0; j < rank; ++j) {
    if (rng.uniform() * (1.0 + lambda[j]) < lambda[j]) chosen[count++] = j;
  }
  return count;
}

}  // namespace ipdpp

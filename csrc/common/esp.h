// Elementary symmetric polynomials (ESPs) in log space (Kulesza & Taskar 2012, Algorithm 7); the
// k-DPP eigenvector selection that walks them is in common/select_eigenvectors.h.
//
// e_l(x_1..x_j) for eigenvalues between 1e-12 and 1e12, thousands of values and l up to the rank
// overflows (or underflows) a double long before it is needed: e_100 of 256 eigenvalues near
// 1e12 is ~1e1400. Every quantity here is therefore a natural logarithm, and the recurrence
//     e_l(x_1..x_j) = e_l(x_1..x_{j-1}) + x_j e_{l-1}(x_1..x_{j-1})
// becomes a log-add-exp of two terms. Both terms are non-negative, so the recurrence has no
// cancellation and each entry carries a relative error of a few ulps per step. Zero values
// (log = -inf) are allowed; -inf is log 0 throughout.
//
// Header-only and free of std::vector so that CUDA kernels can include it (IPDPP_HD).
#pragma once

#include <cmath>
#include <cstdint>

#include "common/host_device.h"
#include "common/log_space.h"

namespace ipdpp {

// Number of doubles of the table written by log_esp_table.
IPDPP_HD std::int64_t log_esp_table_size(std::int64_t m, std::int64_t k) {
  return (m + 1) * (k + 1);
}

// Fills table[j * (k + 1) + l] = log e_l(x_0..x_{j-1}) for j = 0..m and l = 0..k, given
// log_x[i] = log x_i (x_i >= 0; -inf allowed). Row j only depends on row j - 1, and the backward
// pass reads rows in decreasing j, so the row-major layout is the cache-friendly one.
// O(m k) time and memory.
IPDPP_HD void log_esp_table(const double* log_x, std::int64_t m, std::int64_t k, double* table) {
  const std::int64_t stride = k + 1;
  table[0] = 0.0;  // e_0 of the empty set is 1
  for (std::int64_t l = 1; l <= k; ++l) table[l] = IPDPP_LOG_ZERO;
  for (std::int64_t j = 1; j <= m; ++j) {
    const double* prev = table + (j - 1) * stride;
    double* row = table + j * stride;
    const double lx = log_x[j - 1];
    row[0] = 0.0;
    for (std::int64_t l = 1; l <= k; ++l) row[l] = log_add_exp(prev[l], lx + prev[l - 1]);
  }
}

}  // namespace ipdpp

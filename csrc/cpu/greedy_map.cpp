#include "cpu/greedy_map.h"

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "common/error.h"
#include "cpu/lapack.h"

namespace ipdpp {

void greedy_map(std::int64_t n, std::int64_t k, const double* diagonal, const KernelRowFn& row_of,
                std::int64_t* out) {
  IPDPP_REQUIRE(k >= 0 && k <= n, "k = " + std::to_string(k) + " must lie in [0, n = " +
                                      std::to_string(n) + "]");
  if (k == 0) return;
  // cholesky is row-major [n, k]: row i holds c_i, the coefficients of item i on the
  // orthonormalised selected items.
  std::vector<double> cholesky(checked_size(n, k), 0.0);
  std::vector<double> residual(diagonal, diagonal + n);  // d_i^2
  std::vector<double> row(checked_size(n, 1));
  std::vector<char> selected(checked_size(n, 1), 0);
  bool degenerate = false;
  for (std::int64_t t = 0; t < k; ++t) {
    std::int64_t best = -1;
    double best_gain = -std::numeric_limits<double>::infinity();
    for (std::int64_t i = 0; i < n; ++i) {
      if (!selected[i] && residual[i] > best_gain) {
        best = i;
        best_gain = residual[i];
      }
    }
    IPDPP_ASSERT(best >= 0);
    out[t] = best;
    selected[best] = 1;
    if (t + 1 == k || degenerate) continue;
    if (!(best_gain > 0.0)) {
      degenerate = true;
      continue;
    }
    // e_i = (L_{best,i} - <c_best, c_i>) / d_best, then d_i^2 -= e_i^2 (Chen et al., Alg. 1).
    // A plain loop rather than BLAS: rows of `cholesky` are contiguous, t <= k is small, and
    // balanced_subset calls this from many threads at once on small classes.
    row_of(best, row.data());
    const double* c_best = &cholesky[best * k];
    const double inv_norm = 1.0 / std::sqrt(best_gain);
    for (std::int64_t i = 0; i < n; ++i) {
      if (selected[i]) continue;
      const double* c_i = &cholesky[i * k];
      double dot = 0.0;
      for (std::int64_t s = 0; s < t; ++s) dot += c_best[s] * c_i[s];
      const double e = (row[i] - dot) * inv_norm;
      cholesky[i * k + t] = e;
      residual[i] -= e * e;
    }
  }
}

void greedy_map_dense(const double* L, std::int64_t n, std::int64_t k, std::int64_t* out) {
  std::vector<double> diagonal(checked_size(n, 1));
  for (std::int64_t i = 0; i < n; ++i) diagonal[i] = L[i * n + i];
  greedy_map(n, k, diagonal.data(), [&](std::int64_t j, double* row) {
    for (std::int64_t i = 0; i < n; ++i) row[i] = L[j * n + i];
  }, out);
}

void greedy_map_factor(const double* F, std::int64_t n, std::int64_t r, std::int64_t k,
                       std::int64_t* out) {
  std::vector<double> diagonal(checked_size(n, 1), 0.0);
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t m = 0; m < r; ++m) diagonal[i] += F[i * r + m] * F[i * r + m];
  greedy_map(n, k, diagonal.data(), [&](std::int64_t j, double* row) {
    // Row-major F [n, r] is column-major (r x n); L[j, :] = F F_j^T = (F^T)^T F_j.
    if (r == 0) {
      for (std::int64_t i = 0; i < n; ++i) row[i] = 0.0;
      return;
    }
    lapack::dgemv('T', r, n, 1.0, F, r, F + j * r, 0.0, row);
  }, out);
}

void greedy_map_diag_rank_one(const double* d, const double* u, std::int64_t n, std::int64_t k,
                              std::int64_t* out) {
  std::vector<double> diagonal(checked_size(n, 1));
  for (std::int64_t i = 0; i < n; ++i) diagonal[i] = d[i] + u[i] * u[i];
  greedy_map(n, k, diagonal.data(), [&](std::int64_t j, double* row) {
    for (std::int64_t i = 0; i < n; ++i) row[i] = u[j] * u[i];
    row[j] += d[j];
  }, out);
}

}  // namespace ipdpp

#include "cpu/greedy_map.h"

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "common/dot.h"
#include "common/error.h"
#include "common/interrupt.h"
#include "cpu/lapack.h"

namespace ipdpp {

void greedy_map(std::int64_t n, std::int64_t k, const double* diagonal, const KernelRowFn& row_of,
                std::int64_t* out) {
  IPDPP_REQUIRE(k >= 0 && k <= n,
                "k = " + std::to_string(k) + " must lie in [0, n = " + std::to_string(n) + "]");
  if (k == 0) return;
  // cholesky is row-major [n, k]: row i holds c_i, the coefficients of item i on the
  // orthonormalised selected items.
  std::vector<double> cholesky(checked_size(n, k), 0.0);
  std::vector<double> residual(diagonal, diagonal + n);  // d_i^2
  std::vector<double> row(checked_size(n, 1));
  std::vector<char> selected(checked_size(n, 1), 0);
  bool degenerate = false;
  for (std::int64_t t = 0; t < k; ++t) {
    interruption_point();
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
      const double e = (row[i] - dot(c_best, &cholesky[i * k], t)) * inv_norm;
      cholesky[i * k + t] = e;
      residual[i] -= e * e;
    }
  }
}

void greedy_map_dense(const double* L, std::int64_t n, std::int64_t k, std::int64_t* out) {
  std::vector<double> diagonal(checked_size(n, 1));
  for (std::int64_t i = 0; i < n; ++i) diagonal[i] = L[i * n + i];
  greedy_map(
      n, k, diagonal.data(),
      [&](std::int64_t j, double* row) {
        for (std::int64_t i = 0; i < n; ++i) row[i] = L[j * n + i];
      },
      out);
}

void greedy_map_factor(const double* F, std::int64_t n, std::int64_t r, std::int64_t k,
                       std::int64_t* out) {
  std::vector<double> diagonal(checked_size(n, 1), 0.0);
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t m = 0; m < r; ++m) diagonal[i] += F[i * r + m] * F[i * r + m];
  greedy_map(
      n, k, diagonal.data(),
      [&](std::int64_t j, double* row) {
        // Row-major F [n, r] is column-major (r x n); L[j, :] = F F_j^T = (F^T)^T F_j.
        if (r == 0) {
          for (std::int64_t i = 0; i < n; ++i) row[i] = 0.0;
          return;
        }
        lapack::dgemv('T', r, n, 1.0, F, r, F + j * r, 0.0, row);
      },
      out);
}

void greedy_map_diag_rank_one(const double* d, const double* u, std::int64_t n, std::int64_t k,
                              std::int64_t* out) {
  IPDPP_REQUIRE(k >= 0 && k <= n,
                "k = " + std::to_string(k) + " must lie in [0, n = " + std::to_string(n) + "]");
  // The Schur complement of L_Y in L = diag(d) + u u^T is again diagonal plus rank one:
  // L_R - L_RY L_Y^{-1} L_YR = diag(d_R) + gamma u_R u_R^T with gamma = 1 / (1 + sum_{j in Y}
  // u_j^2 / d_j) (Sherman-Morrison; gamma = 0 once Y holds an item with d_j = 0 < u_j^2). So
  // item i's gain is d_i + gamma u_i^2 and a step costs O(n), not O(n t): the same choices as
  // the incremental Cholesky, which tests/test_greedy.py checks by brute force.
  std::vector<char> selected(checked_size(n, 1), 0);
  double inverse_sum = 0.0;  // sum over Y of u_j^2 / d_j
  double gamma = 1.0;
  bool degenerate = false;
  for (std::int64_t t = 0; t < k; ++t) {
    interruption_point();
    std::int64_t best = -1;
    double best_gain = -std::numeric_limits<double>::infinity();
    for (std::int64_t i = 0; i < n; ++i) {
      const double gain = d[i] + gamma * u[i] * u[i];
      if (!selected[i] && gain > best_gain) {
        best = i;
        best_gain = gain;
      }
    }
    IPDPP_ASSERT(best >= 0);
    out[t] = best;
    selected[best] = 1;
    if (degenerate || !(best_gain > 0.0)) {  // as in greedy_map: no further updates
      degenerate = true;
      continue;
    }
    if (d[best] > 0.0) {
      inverse_sum += u[best] * u[best] / d[best];
      gamma = 1.0 / (1.0 + inverse_sum);
    } else {
      gamma = 0.0;
    }
  }
}

}  // namespace ipdpp

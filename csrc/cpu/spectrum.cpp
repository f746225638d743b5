#include "cpu/spectrum.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "common/error.h"
#include "common/interrupt.h"
#include "common/spectrum_rules.h"
#include "cpu/diagonal_rank_one_eigen.h"
#include "cpu/ipdpp_sampler.h"
#include "cpu/lapack.h"

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace ipdpp {
namespace {

// Rows of B converted to double per block: 1024 rows x d = 256 columns is 2 MiB, large enough for
// BLAS-3 efficiency and small enough to stay in cache next to the output block.
constexpr std::int64_t kRowBlock = 1024;

// Eigendecomposes a symmetric m x m matrix `a` (overwritten) and returns the spectrum whose
// eigenvectors are the kept columns of its eigenvector matrix, as n = m rows of length rank.
Spectrum spectrum_of_symmetric(std::vector<double>& a, std::int64_t m, double rtol,
                               const char* name_for_psd_check, double psd_rtol) {
  std::vector<double> w(checked_size(m, 1));
  lapack::dsyevd(m, a.data(), w.data());
  if (name_for_psd_check != nullptr && m > 0)
    check_positive_semidefinite(w.data(), m, psd_rtol, name_for_psd_check);
  const std::int64_t first = first_kept(w.data(), static_cast<std::int64_t>(w.size()), rtol);
  Spectrum s;
  s.n = m;
  s.rank = m - first;
  s.eigenvalues.assign(w.begin() + first, w.end());
  resize_huge(s.eigenvectors, checked_size(m, s.rank));
  // `a` is column-major: column j (eigenvector j) is a[j*m .. j*m + m). Transpose the kept
  // columns into row-major rows.
  for (std::int64_t c = 0; c < s.rank; ++c) {
    const double* col = a.data() + (first + c) * m;
    for (std::int64_t i = 0; i < m; ++i) s.eigenvectors[i * s.rank + c] = col[i];
  }
  return s;
}

// Writes rows [row0, row0 + rows) of diag(q) B as a column-major d x rows block (that is, the
// same rows, row-major, converted to double and scaled). Returns a pointer to the block, which is
// B itself when no conversion is needed.
template <class T>
const double* scaled_rows(const T* features, std::int64_t row0, std::int64_t rows, std::int64_t d,
                          const double* quality, std::vector<double>& buffer) {
  if constexpr (std::is_same_v<T, double>) {
    if (quality == nullptr) return features + row0 * d;
  }
  for (std::int64_t i = 0; i < rows; ++i) {
    const T* src = features + (row0 + i) * d;
    double* dst = buffer.data() + i * d;
    const double qi = quality == nullptr ? 1.0 : quality[row0 + i];
    for (std::int64_t c = 0; c < d; ++c) dst[c] = qi * static_cast<double>(src[c]);
  }
  return buffer.data();
}

}  // namespace

void advise_huge_pages(const void* data, std::size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr std::uintptr_t kHugePage = std::uintptr_t{1} << 21;  // 2 MiB on x86-64 and arm64
  const auto begin = reinterpret_cast<std::uintptr_t>(data);
  const std::uintptr_t first = (begin + kHugePage - 1) & ~(kHugePage - 1);
  const std::uintptr_t last = (begin + bytes) & ~(kHugePage - 1);
  // Only whole huge pages inside the buffer; failure (THP disabled) just keeps small pages.
  if (last > first) madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);
#else
  (void)data;
  (void)bytes;
#endif
}

template <class T>
Spectrum lowrank_spectrum(const T* features, std::int64_t n, std::int64_t d, const double* quality,
                          double rtol) {
  IPDPP_REQUIRE(n >= 1, "features must have at least one row");
  IPDPP_REQUIRE(d >= 1, "features must have at least one column");
  IPDPP_REQUIRE(rtol >= 0.0 && rtol < 1.0, "rtol must be in [0, 1)");
  const std::int64_t block = std::min(kRowBlock, n);
  std::vector<double> buffer(checked_size(block, d));

  if (n <= d) {
    // More features than items: the primal n x n Gram is the smaller problem, and its eigenvectors
    // are V directly.
    std::vector<double> gram(checked_size(n, n));
    std::vector<double> all(checked_size(n, d));
    for (std::int64_t row0 = 0; row0 < n; row0 += block) {
      const std::int64_t rows = std::min(block, n - row0);
      const double* x = scaled_rows(features, row0, rows, d, quality, buffer);
      std::copy(x, x + rows * d, all.begin() + row0 * d);
    }
    // all is column-major d x n (= X); L = X^T X, lower triangle, which is all dsyevd reads.
    lapack::dsyrk('L', 'T', n, d, 1.0, all.data(), d, 0.0, gram.data(), n);
    for (std::int64_t j = 0; j < n; ++j)
      for (std::int64_t i = j; i < n; ++i)
        IPDPP_REQUIRE(std::isfinite(gram[i + j * n]),
                      "features (times quality) are too large: diag(q) B B^T diag(q) overflows "
                      "float64");
    return spectrum_of_symmetric(gram, n, rtol, nullptr, 0.0);
  }

  // Dual Gram C = X X^T with X = (diag(q) B)^T (column-major d x n), accumulated block by block
  // into the lower triangle.
  std::vector<double> dual(checked_size(d, d), 0.0);
  for (std::int64_t row0 = 0; row0 < n; row0 += block) {
    const std::int64_t rows = std::min(block, n - row0);
    interruption_point();
    const double* x = scaled_rows(features, row0, rows, d, quality, buffer);
    lapack::dsyrk('L', 'N', d, rows, 1.0, x, d, 1.0, dual.data(), d);
  }
  for (std::int64_t j = 0; j < d; ++j)  // the lower triangle dsyrk wrote
    for (std::int64_t i = j; i < d; ++i)
      IPDPP_REQUIRE(std::isfinite(dual[i + j * d]),
                    "features (times quality) are too large: B^T diag(q^2) B overflows float64");
  std::vector<double> w(checked_size(d, 1));
  lapack::dsyevd(d, dual.data(), w.data());  // dual now holds U (column-major)
  const std::int64_t first = first_kept(w.data(), static_cast<std::int64_t>(w.size()), rtol);

  Spectrum s;
  s.n = n;
  s.rank = d - first;
  s.eigenvalues.assign(w.begin() + first, w.end());
  resize_huge(s.eigenvectors, checked_size(n, s.rank));
  if (s.rank == 0) return s;

  // W = U_kept Lambda^{-1/2} (d x rank, column-major), then V^T = W^T X block by block: the
  // row-major n x rank V is the column-major rank x n V^T. An eigenvalue lambda gives a column
  // whose orthonormality error is about eps * lambda_max / lambda <= eps / rtol.
  std::vector<double> scaled_basis(checked_size(d, s.rank));
  for (std::int64_t c = 0; c < s.rank; ++c) {
    const double inv_sqrt = 1.0 / std::sqrt(s.eigenvalues[c]);
    const double* u = dual.data() + (first + c) * d;
    for (std::int64_t i = 0; i < d; ++i) scaled_basis[c * d + i] = u[i] * inv_sqrt;
  }
  for (std::int64_t row0 = 0; row0 < n; row0 += block) {
    const std::int64_t rows = std::min(block, n - row0);
    interruption_point();
    const double* x = scaled_rows(features, row0, rows, d, quality, buffer);
    lapack::dgemm('T', 'N', s.rank, rows, d, 1.0, scaled_basis.data(), d, x, d, 0.0,
                  s.eigenvectors.data() + row0 * s.rank, s.rank);
  }
  return s;
}

template Spectrum lowrank_spectrum<float>(const float*, std::int64_t, std::int64_t, const double*,
                                          double);
template Spectrum lowrank_spectrum<double>(const double*, std::int64_t, std::int64_t, const double*,
                                           double);

Spectrum dense_spectrum(const double* L, std::int64_t n, double rtol, double symmetry_rtol,
                        double psd_rtol) {
  IPDPP_REQUIRE(n >= 1, "L must be a non-empty (n, n) matrix");
  IPDPP_REQUIRE(rtol >= 0.0 && rtol < 1.0, "rtol must be in [0, 1)");
  IPDPP_REQUIRE(symmetry_rtol >= 0.0, "symmetry_rtol must be >= 0");
  if (psd_rtol < 0.0) psd_rtol = rtol;
  double largest = 0.0;
  for (std::int64_t i = 0; i < n * n; ++i) {
    IPDPP_REQUIRE(std::isfinite(L[i]), kNonFiniteKernelMessage);
    largest = std::max(largest, std::abs(L[i]));
  }
  const double sym_tol = symmetry_rtol * largest;
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t j = i + 1; j < n; ++j) {
      const double gap = std::abs(L[i * n + j] - L[j * n + i]);
      if (gap > sym_tol) throw not_symmetric_error(i, j, gap, symmetry_rtol, sym_tol);
    }
  }
  // Row-major symmetric = column-major symmetric; dsyevd reads the lower triangle of the copy.
  std::vector<double> a(L, L + checked_size(n, n));
  return spectrum_of_symmetric(a, n, rtol, "L", psd_rtol);
}

Spectrum ipdpp_spectrum(const double* p, std::int64_t n, double alpha, double rtol) {
  IPDPP_REQUIRE(n >= 1, "p must be non-empty");
  IPDPP_REQUIRE(rtol >= 0.0 && rtol < 1.0, "rtol must be in [0, 1)");
  const DiagonalPlusRankOne s = ipdpp_diagonal_rank_one(p, n, alpha);
  std::vector<double> u(checked_size(n, 1));
  for (std::int64_t i = 0; i < n; ++i) u[i] = std::sqrt(s.a[i]);
  const DiagonalRankOneEigen eig(s.d.data(), u.data(), n);
  const std::vector<double>& w = eig.eigenvalues();
  const std::int64_t first = first_kept(w.data(), n, rtol);
  Spectrum out;
  out.n = n;
  out.rank = n - first;
  out.eigenvalues.assign(eig.eigenvalues().begin() + first, eig.eigenvalues().end());
  resize_huge(out.eigenvectors, checked_size(n, out.rank));
  for (std::int64_t c = 0; c < out.rank; ++c) {
    interruption_point();
    eig.eigenvector(first + c, out.eigenvectors.data() + c, out.rank);
  }
  return out;
}

}  // namespace ipdpp

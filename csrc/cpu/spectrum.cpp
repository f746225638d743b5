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
#include "cpu/feature_products.h"
#include "cpu/ipdpp_sampler.h"
#include "cpu/lapack.h"

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace ipdpp {
namespace {

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
Spectrum lowrank_spectrum_basis(const T* features, std::int64_t n, std::int64_t d,
                                const double* quality, double rtol,
                                std::shared_ptr<const void> owner, int threads) {
  IPDPP_REQUIRE(n >= 1, "features must have at least one row");
  IPDPP_REQUIRE(d >= 1, "features must have at least one column");
  IPDPP_REQUIRE(rtol >= 0.0 && rtol < 1.0, "rtol must be in [0, 1)");
  const std::int64_t block = std::min(kFeatureRowBlock, n);
  std::vector<double> buffer(checked_size(block, d));

  if (n <= d) {
    // More features than items: the primal n x n Gram is the smaller problem, and its eigenvectors
    // are V directly.
    std::vector<double> gram(checked_size(n, n));
    std::vector<double> all(checked_size(n, d));
    for (std::int64_t row0 = 0; row0 < n; row0 += block) {
      const std::int64_t rows = std::min(block, n - row0);
      const double* x = scaled_feature_rows(features, row0, rows, d, quality, buffer.data());
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

  // Dual Gram C = B^T diag(q^2) B = U diag(w) U^T (cpu/feature_products.h).
  std::vector<double> dual, w;
  dual_gram_eigen(features, n, d, quality, threads, dual, w);  // dual holds U (column-major)
  const std::int64_t first = first_kept(w.data(), static_cast<std::int64_t>(w.size()), rtol);

  Spectrum s;
  s.n = n;
  s.rank = d - first;
  s.eigenvalues.assign(w.begin() + first, w.end());
  // W = U_kept Lambda^{-1/2} (d x rank, row-major); row i of V is q_i B_i W. An eigenvalue lambda
  // gives a column of V whose orthonormality error is about eps * lambda_max / lambda <=
  // eps / rtol.
  auto basis = std::make_shared<FeatureBasis>();
  basis->features = features;
  basis->dtype = std::is_same_v<T, float> ? DType::kFloat32 : DType::kFloat64;
  basis->n = n;
  basis->d = d;
  basis->rank = s.rank;
  basis->quality = quality;
  basis->owner = std::move(owner);
  basis->threads = threads;
  basis->w.resize(checked_size(d, s.rank));
  for (std::int64_t c = 0; c < s.rank; ++c) {
    const double inv_sqrt = 1.0 / std::sqrt(s.eigenvalues[c]);
    const double* u = dual.data() + (first + c) * d;
    for (std::int64_t i = 0; i < d; ++i) basis->w[i * s.rank + c] = u[i] * inv_sqrt;
  }
  s.basis = std::move(basis);
  return s;
}

template <class T>
Spectrum lowrank_spectrum(const T* features, std::int64_t n, std::int64_t d, const double* quality,
                          double rtol, int threads) {
  Spectrum s = lowrank_spectrum_basis(features, n, d, quality, rtol, nullptr, threads);
  if (!s.has_eigenvectors()) {
    resize_huge(s.eigenvectors, checked_size(n, s.rank));
    form_eigenvectors(*s.basis, s.eigenvectors.data());
  }
  s.basis.reset();  // it refers to the caller's features, which need not outlive this call
  return s;
}

template Spectrum lowrank_spectrum<float>(const float*, std::int64_t, std::int64_t, const double*,
                                          double, int);
template Spectrum lowrank_spectrum<double>(const double*, std::int64_t, std::int64_t, const double*,
                                           double, int);
template Spectrum lowrank_spectrum_basis<float>(const float*, std::int64_t, std::int64_t,
                                                const double*, double, std::shared_ptr<const void>,
                                                int);
template Spectrum lowrank_spectrum_basis<double>(const double*, std::int64_t, std::int64_t,
                                                 const double*, double, std::shared_ptr<const void>,
                                                 int);

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

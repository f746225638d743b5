// The eigendecomposition of an L-ensemble kernel, truncated to its numerical rank: everything
// the spectral samplers need. Built once per kernel and shared by every sample.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "cpu/row_source.h"

namespace ipdpp {

struct Spectrum {
  std::int64_t n = 0;     // ground set size
  std::int64_t rank = 0;  // number of kept eigenpairs
  // The kept (positive) eigenvalues, ascending, length `rank`.
  std::vector<double> eigenvalues;
  // n x rank, row-major: row i holds item i's coordinates in the eigenbasis, so that a pass of
  // the sampler over the items reads memory contiguously. Columns are orthonormal. Empty while
  // not formed (see `basis`).
  std::vector<double> eigenvectors;
  // Low-rank kernels with more items than features: W and the features, from which any row of
  // the eigenvectors (and all of them, form_eigenvectors) is computed (cpu/row_source.h). Null
  // for the other kernels, whose eigenvectors are always formed.
  std::shared_ptr<const FeatureBasis> basis;

  bool has_eigenvectors() const { return rank == 0 || !eigenvectors.empty(); }
};

// Asks the kernel to back [data, data + bytes) with transparent huge pages where it can (Linux;
// a no-op elsewhere or for small ranges). The samplers read V and the proposal tables at random
// rows, and with 4 KiB pages nearly every such read of a gigabyte-sized V also misses the TLB.
// Call it on untouched memory (after vector::reserve, before resize) so that the first touch
// already faults in huge pages.
void advise_huge_pages(const void* data, std::size_t bytes);

// Resizes an empty vector to `count` elements, huge-page backed when it is large.
template <class T>
void resize_huge(std::vector<T>& v, std::size_t count) {
  v.reserve(count);
  advise_huge_pages(v.data(), count * sizeof(T));
  v.resize(count);
}

// L = diag(q) B B^T diag(q) for B (n x d, row-major, float or double) and q (n, may be null for
// q = 1), through the dual Gram C = B^T diag(q^2) B (d x d): if C = U Lambda U^T then L has the
// nonzero eigenvalues Lambda and eigenvectors V = diag(q) B U Lambda^{-1/2}. B is read in blocks of
// rows, never copied whole; the dual Gram is formed as cpu/feature_products.h describes (float
// products for float B when they are accurate enough, on `threads` threads, <= 0: all hardware
// threads; the result does not depend on the thread count). Eigenvalues <= rtol * max eigenvalue
// are dropped.
template <class T>
Spectrum lowrank_spectrum(const T* features, std::int64_t n, std::int64_t d, const double* quality,
                          double rtol, int threads = 0);

// The same spectrum with its eigenvectors not formed when n > d: `basis` holds W = U_kept
// Lambda^{-1/2} and refers to `features` and `quality`, which `owner` keeps alive and which must
// not change while the spectrum is in use; its later passes over the features (the leverage
// scores) run on `threads` threads too. When n <= d the eigenvectors (n x rank, no larger than
// the features) come formed and `basis` is null.
template <class T>
Spectrum lowrank_spectrum_basis(const T* features, std::int64_t n, std::int64_t d,
                                const double* quality, double rtol,
                                std::shared_ptr<const void> owner, int threads = 0);

// Default symmetry tolerance of dense_spectrum: |L_ij - L_ji| <= kSymmetryRtol * max_ij |L_ij|.
// Kernels assembled in double precision (X X^T, diag(q) S diag(q)) are symmetric to a few ulps of
// their largest entry; 1e-10 accepts those and rejects anything asymmetric on purpose.
constexpr double kSymmetryRtol = 1e-10;

// A dense symmetric positive semidefinite L (n x n, row-major). Throws std::invalid_argument
// (ValueError) naming `L` when |L_ij - L_ji| > symmetry_rtol * max|L| or when the smallest
// eigenvalue is below -psd_rtol * max|eigenvalue| (psd_rtol < 0: use rtol). Callers whose L was
// rounded to a coarser type (float32) pass tolerances of that type's precision.
// Eigenvalues <= rtol * max eigenvalue are dropped.
Spectrum dense_spectrum(const double* L, std::int64_t n, double rtol,
                        double symmetry_rtol = kSymmetryRtol, double psd_rtol = -1.0);

// The IP-DPP kernel S = diag(1 - alpha p_i sum(p)) + alpha p p^T (p [n] in [0, 1]) through its
// diagonal-plus-rank-one structure (cpu/diagonal_rank_one_eigen.h): O(n^2) time instead of
// dense_spectrum's O(n^3), eigenvalues to a few ulps of |S| and eigenvectors orthonormal to
// O(n eps), as LAPACK's are. Eigenvalues <= rtol * max eigenvalue are dropped.
Spectrum ipdpp_spectrum(const double* p, std::int64_t n, double alpha, double rtol);

}  // namespace ipdpp

// The n-sized products of a low-rank kernel's setup, L = diag(q) B B^T diag(q) with features B
// (n x d, row-major, float or double): the dual Gram C = B^T diag(q^2) B by symmetric rank-k
// updates and the leverage scores of the kept eigenspace from B by a triangular product, without
// the n x rank eigenvectors. Float features stay float in these products. Both spread fixed blocks
// of rows over `threads` threads with single-threaded BLAS calls (<= 0: all hardware threads), and
// the partition does not depend on the thread count, so neither do the results, bit for bit.
#pragma once

#include <cstdint>
#include <vector>

namespace ipdpp {

// Unit roundoff of T (2^-24 for float, 2^-53 for double).
template <class T>
constexpr double unit_roundoff() {
  return sizeof(T) == 4 ? 0x1p-24 : 0x1p-53;
}

// gamma_m = m u / (1 - m u): the relative error bound of an m-term dot product in precision u.
inline double rounding_gamma(double m, double u) { return m * u / (1.0 - m * u); }

// The dual Gram matrix and a bound on its rounding error.
struct DualGram {
  std::int64_t d = 0;
  std::vector<double> c;  // d x d, column-major; the lower triangle is computed, the upper is 0
  // An upper bound on ||C_computed - C||_2, hence (Weyl) on the error of every eigenvalue.
  double error_bound = 0.0;
  double trace = 0.0;  // sum of the computed diagonal, >= 0
};

// C = B^T diag(q^2) B (q null: q = 1). With `in_double` false and T = float, every block of
// kFloatGramRows rows is a float ssyrk and the blocks are summed in double: each entry's error is
// then at most gamma_{m+2}(2^-24) (|B|^T |B|)_jk with m = kFloatGramRows (the +2 for rounding q_i
// b_ij to float), plus the double sum's gamma_{n/m}(2^-53) of the same, and since
// || |B|^T |B| ||_2 <= ||B||_F^2 = trace(C), ||dC||_2 <= (gamma_{m+2}(2^-24) +
// gamma_{n/m+1}(2^-53)) trace(C): that is error_bound. Otherwise the rows are widened to double
// (dsyrk) and the bound is gamma_{n+2}(2^-53) trace(C). Rounding errors are independent in
// practice, so the typical error is about sqrt(m) u trace(C) / sqrt(d): some 1e-7 of the largest
// eigenvalue for float, which is as much as rounding B to float in the first place moves it
// (2 u per entry) times a small factor.
template <class T>
DualGram dual_gram(const T* features, std::int64_t n, std::int64_t d, const double* quality,
                   bool in_double, int threads);

// Rows per float ssyrk block of dual_gram: small enough that the float rounding stays near that of
// the features themselves, large enough for BLAS-3 speed.
constexpr std::int64_t kFloatGramRows = 512;

// Whether a float dual Gram is accurate enough to decompose: its smallest eigenvalue (w_min, of
// the computed matrix) exceeds 8 times its error bound. Then every eigenvalue of the exact C is
// positive (so no rank cut-off of the double computation can differ) and within 1/7 of the
// computed one, and the eigenvectors' orthonormality error is below 1/7, in the worst case of
// aligned roundings; in practice the errors are some 1e-8 and 1e-6 (the roundings are
// independent). Otherwise the Gram is recomputed in double. Features whose eigenvalues span
// 1/d .. 1 of the largest pass up to d ~ 500.
bool float_gram_is_accurate(const DualGram& gram, double w_min);

// The eigendecomposition C = U diag(w) U^T of the dual Gram as lowrank_spectrum uses it: for float
// features the float-product Gram when float_gram_is_accurate (or when the float products
// overflow), else the double one; then LAPACK dsyevd. `u` receives U (d x d, column-major), `w`
// the d eigenvalues ascending. Throws std::invalid_argument when C overflows float64.
template <class T>
void dual_gram_eigen(const T* features, std::int64_t n, std::int64_t d, const double* quality,
                     int threads, std::vector<double>& u, std::vector<double>& w);

// Leverage scores of the kept eigenspace, l_i = ||V_i||^2 with V = diag(q) B W, for W = U_kept
// Lambda^{-1/2} (d x rank, row-major; the columns are orthogonal), written to out[0 .. n), without
// forming V: with W^T = Q R (Householder QR: R is rank x d upper trapezoidal, Q orthogonal),
// ||W^T x|| = ||R x||, and R x costs a triangular product plus, when rank < d, a GEMM with the
// trapezoid's tail: about d^2 / 2 multiply-adds per row where B W costs d rank (in the features'
// precision when that is accurate, see below). Rank-deficient kernels need no special case: R is a
// factor of W W^T, the projection onto the kept eigenspace scaled by Lambda^{-1}, whatever its
// rank.
//
// Each score is rounded up by the bound on its rounding error (and on that of computing the row V_i
// itself in double, stored or from the features), so l_i >= ||V_{i,J}||^2 as the samplers compute
// it for every column subset J: the rejection sampler, which accepts a proposal with probability
// residual_i / l_i, stays exact. Per row, sqrt(l_i) grows by (gamma_{d+4}(u) + gamma_{4
// d^2}(2^-53))
// ||W||_F ||x_i|| (u: the unit roundoff of the products), which for a row in the kept eigenspace
// is a relative 2 gamma_{d+4}(u) kappa_W at most in l_i, kappa_W = ||W||_F ||W^+||_2 =
// sqrt(sum_c lambda_max / lambda_c); summed over the items it is far less (a few 1e-4 for
// features whose eigenvalues span 1/d .. 1). The product runs in float, for float and double
// features alike (it only has to bound the scores, and the bound covers rounding the rows to
// float), when gamma_{d+4}(2^-24) kappa_W <= 2^-7 (at most 1.6 % on any score), in double
// otherwise.
template <class T>
void leverage_from_features(const T* features, std::int64_t n, std::int64_t d,
                            const double* quality, const double* w, std::int64_t rank, int threads,
                            double* out);

}  // namespace ipdpp

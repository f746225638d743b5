// Eigendecomposition of a symmetric diagonal-plus-rank-one matrix S = diag(d) + z z^T in O(n^2)
// time and O(n) memory, eigenvectors formed one at a time on request (O(n) each). The IP-DPP
// kernel of paper Eq. 16 has this form (z = sqrt(alpha) p), and so has every matrix the
// divide-and-conquer eigensolvers meet; the method is theirs (Golub 1973; Bunch, Nielsen &
// Sorensen 1978; Gu & Eisenstat 1994), written here for the real-symmetric, rho = 1 case.
//
// 0. S is scaled by an exact power of four so that max|d| + |z|^2 lies in [1/4, 16): the
//    arithmetic below then neither overflows nor underflows, whatever the input's magnitude.
// 1. Deflation (backward stable: every step changes S by at most tol = 8 eps (max|d| + |z|^2)).
//    - An item with |z_i| |z| <= tol is decoupled: (d_i, e_i) is an eigenpair (p_i = 0 exactly).
//    - Items whose sorted d lie within tol of the first of their run form a group G and share that
//      d_G. Inside G only the direction z_G / |z_G| couples to the rest; the |G| - 1 directions
//      orthogonal to z_G are eigenvectors with eigenvalue d_G. They are the columns 2..|G| of the
//      Householder reflector H = I - 2 v v^T / v^T v that maps z_G to a multiple of e_first, so
//      each is formed in O(|G|) from v alone. Equal p_i (hence equal d_i) are the common case.
//    What remains is m "survivors" with poles D_0 < ... < D_{m-1}, separated by more than tol, and
//    weights W_s = |z_G|^2 > tol^2 / |z|^2.
// 2. Eigenvalues: the m roots of the secular equation f(lambda) = 1 + sum_s W_s / (D_s - lambda),
//    one in each (D_j, D_{j+1}) and the last in (D_{m-1}, D_{m-1} + sum W). f increases on each
//    interval, so a root is bracketed and found by a safeguarded iteration: the step solves the
//    osculating two-pole model c + b_l / (D_j - x) + b_r / (D_{j+1} - x) (each side's sum fitted by
//    one pole, value and derivative; quadratic convergence), bisection whenever the step leaves
//    the bracket. The root is stored as tau = lambda - D_K relative to the nearer pole K, so that
//    every difference D_s - lambda = (D_s - D_K) - tau keeps its full relative accuracy (the poles
//    are exact data; only tau carries error); the iteration stops when |f| is at the level of its
//    rounding error.
// 3. Eigenvectors (Gu & Eisenstat): the computed roots are the exact eigenvalues of a nearby
//    D + zhat zhat^T, zhat_s^2 = prod_j (lambda_j - D_s) / prod_{j != s} (D_j - D_s). The vectors
//    (D - lambda_j)^{-1} zhat, normalised, are exact eigenvectors of that matrix up to rounding,
//    hence orthonormal to working precision however close the roots are (the vectors of the
//    uncorrected z lose orthogonality when roots cluster).
// Eigenvalues come back in ascending order (secular roots and deflated pairs merged), as LAPACK's
// dsyevd returns them; within a repeated eigenvalue the order is deterministic but arbitrary.
#pragma once

#include <cstdint>
#include <vector>

namespace ipdpp {

class DiagonalRankOneEigen {
 public:
  // d, z: [n], finite (std::invalid_argument otherwise). O(n^2) time, O(n) memory.
  DiagonalRankOneEigen(const double* d, const double* z, std::int64_t n);

  std::int64_t size() const { return n_; }
  // All n eigenvalues, ascending.
  const std::vector<double>& eigenvalues() const { return eigenvalues_; }
  // Writes the unit eigenvector of eigenvalues()[m] to out[i * stride], i in [0, n). O(n).
  void eigenvector(std::int64_t m, double* out, std::int64_t stride = 1) const;
  // Eigenpairs left to the secular equation after deflation.
  std::int64_t secular_size() const { return m_; }
  // Evaluations of the secular function in all (a diagnostic for tests and benchmarks).
  std::int64_t root_iterations() const { return iterations_; }

 private:
  enum class Kind : std::uint8_t { kRoot, kDecoupled, kGroup };
  struct Pair {
    double value;
    Kind kind;
    std::int64_t index;  // root j, item i, or a position in members_ (not its group's first)
  };

  void solve_root(std::int64_t j);  // origin_[j], tau_[j]
  void correct_weights();           // zhat_ from the computed roots

  std::int64_t n_ = 0, m_ = 0, iterations_ = 0;
  double scale_ = 1.0;                     // S was divided by scale_ (a power of four)
  std::vector<double> z_;                  // [n] scaled copy, for the group directions
  std::vector<std::int64_t> members_;      // items of the survivors' groups, group by group
  std::vector<std::int64_t> group_;        // [m + 1] offsets of each survivor's group in members_
  std::vector<std::int64_t> member_of_;    // [members_.size()] survivor owning each position
  std::vector<double> householder_;        // [members_.size()] v of each group (unused if |G| = 1)
  std::vector<double> householder_norm2_;  // [m] v^T v
  std::vector<double> pole_, weight_;      // [m] D_s and W_s
  std::vector<double> norm_;               // [m] |z_G|
  std::vector<std::int64_t> origin_;       // [m] K_j
  std::vector<double> tau_;                // [m] lambda_j - D_{K_j}
  std::vector<double> zhat_;               // [m] corrected weights' square roots
  std::vector<Pair> pairs_;                // [n] ascending by value
  std::vector<double> eigenvalues_;        // [n], unscaled
};

}  // namespace ipdpp

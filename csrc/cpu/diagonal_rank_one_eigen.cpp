#include "cpu/diagonal_rank_one_eigen.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <tuple>

#include "common/error.h"
#include "common/interrupt.h"
#include "cpu/hot_loop.h"

namespace ipdpp {
namespace {

constexpr double kEps = std::numeric_limits<double>::epsilon();
// Bisection alone halves the bracket to adjacent doubles in < 110 steps; the model steps converge
// quadratically (3-5 evaluations per root in practice).
constexpr int kMaxIterations = 200;
// Deflation threshold in units of eps * (max|d| + |z|^2), as LAPACK's dlaed2 uses.
constexpr double kDeflationUlps = 8.0;
// Poles at least kFarRatio half-gaps from an interval's midpoint enter its root's iteration
// through kFarTerms moments (see far_moments): 32^-11 < 3e-17.
constexpr double kFarRatio = 32.0;
constexpr int kFarTerms = 11;
// Four lanes in a fixed order: vectorises without -ffast-math and gives the same result on every
// call of a clone.
typedef double Lanes4 __attribute__((vector_size(32)));
// Unaligned load of four doubles (no helper function: returning a vector by value changes the
// ABI between the clones).
#define IPDPP_LOAD4(dst, src) std::memcpy(&(dst), (src), sizeof(Lanes4))

// sum_s W_s / t_s and sum_s W_s / t_s^2 with t_s = (D_s - pole) - x, over s in [first, last).
// One division per pole: this loop is the whole cost of the root finder.
IPDPP_HOT void secular_sums(const double* D, const double* W, std::int64_t first, std::int64_t last,
                            double pole, double x, double* sum, double* slope) {
  Lanes4 acc = {0.0, 0.0, 0.0, 0.0}, acc2 = acc, poles, weights;
  const Lanes4 vpole = {pole, pole, pole, pole}, vx = {x, x, x, x};
  std::int64_t s = first;
  for (; s + 4 <= last; s += 4) {
    IPDPP_LOAD4(poles, D + s);
    IPDPP_LOAD4(weights, W + s);
    const Lanes4 inv = 1.0 / ((poles - vpole) - vx);
    const Lanes4 term = weights * inv;
    acc += term;
    acc2 += term * inv;
  }
  double total = (acc[0] + acc[1]) + (acc[2] + acc[3]);
  double total2 = (acc2[0] + acc2[1]) + (acc2[2] + acc2[3]);
  for (; s < last; ++s) {
    const double inv = 1.0 / ((D[s] - pole) - x);
    const double term = W[s] * inv;
    total += term;
    total2 += term * inv;
  }
  *sum = total;
  *slope = total2;
}

// Far-field moments M_k = sum_s W_s / t_s^(k+1), k < kFarTerms, with t_s = (D_s - pole) - half,
// over s in [first, last); added to M. Poles with |t_s| >= kFarRatio * half contribute
// W_s / (t_s - h) = sum_k W_s h^k / t_s^(k+1) for any |h| <= half, and the series truncated after
// kFarTerms terms is off by at most kFarRatio^-kFarTerms < 3e-17 of the terms' size: far below
// the rounding error of f itself. So the poles far from interval j are swept once per root and
// each step of the iteration only visits the near ones.
IPDPP_HOT void far_moments(const double* D, const double* W, std::int64_t first, std::int64_t last,
                           double pole, double half, double* M) {
  static_assert(kFarTerms == 11, "the powers below are written out for 11 terms");
  Lanes4 acc[kFarTerms], poles, weights;
  for (auto& a : acc) a = Lanes4{0.0, 0.0, 0.0, 0.0};
  const Lanes4 vpole = {pole, pole, pole, pole}, vhalf = {half, half, half, half};
  std::int64_t s = first;
  for (; s + 4 <= last; s += 4) {
    IPDPP_LOAD4(poles, D + s);
    IPDPP_LOAD4(weights, W + s);
    // Powers by squaring, not a chain of 10 dependent products (which would stall on latency).
    const Lanes4 inv = 1.0 / ((poles - vpole) - vhalf);
    const Lanes4 inv2 = inv * inv, inv4 = inv2 * inv2, inv8 = inv4 * inv4;
    const Lanes4 t0 = weights * inv, t1 = t0 * inv, t2 = t0 * inv2, t3 = t1 * inv2;
    acc[0] += t0, acc[1] += t1, acc[2] += t2, acc[3] += t3;
    acc[4] += t0 * inv4, acc[5] += t1 * inv4, acc[6] += t2 * inv4, acc[7] += t3 * inv4;
    acc[8] += t0 * inv8, acc[9] += t1 * inv8, acc[10] += t2 * inv8;
  }
  for (int k = 0; k < kFarTerms; ++k) M[k] += (acc[k][0] + acc[k][1]) + (acc[k][2] + acc[k][3]);
  for (; s < last; ++s) {
    const double inv = 1.0 / ((D[s] - pole) - half);
    double term = W[s] * inv;
    for (int k = 0; k < kFarTerms; ++k) {
      M[k] += term;
      term *= inv;
    }
  }
}

// sum_k M_k h^k and its derivative in h (Horner).
inline void far_field(const double* M, double h, double* value, double* slope) {
  double v = M[kFarTerms - 1], dv = 0.0;
  for (int k = kFarTerms - 2; k >= 0; --k) {
    dv = dv * h + v;
    v = v * h + M[k];
  }
  *value = v;
  *slope = dv;
}

// prod_{j in [first, last)} ((R_j - ds) + T_j) / (P_j - ds), every factor in (0, 1). Numerators
// and denominators are multiplied in runs of four per lane and divided once per run: after the
// scaling to max|d| + |z|^2 < 16 each factor lies in [~1e-47, 32] (the smallest root offset the
// deflation allows is about tol^2 / (4 |z|^2) * tol / 16), so four of them stay far from
// underflow and overflow.
IPDPP_HOT double paired_ratio_product(const double* R, const double* T, const double* P,
                                      std::int64_t first, std::int64_t last, double ds) {
  constexpr int kRun = 4;
  const Lanes4 vds = {ds, ds, ds, ds}, one = {1.0, 1.0, 1.0, 1.0};
  Lanes4 acc = one, num = one, den = one, r, t, p;
  int run = 0;
  std::int64_t j = first;
  for (; j + 4 <= last; j += 4) {
    IPDPP_LOAD4(r, R + j);
    IPDPP_LOAD4(t, T + j);
    IPDPP_LOAD4(p, P + j);
    num *= (r - vds) + t;
    den *= p - vds;
    if (++run == kRun) {
      acc *= num / den;
      num = den = one;
      run = 0;
    }
  }
  acc *= num / den;
  double product = (acc[0] * acc[1]) * (acc[2] * acc[3]);
  for (; j < last; ++j) product *= ((R[j] - ds) + T[j]) / (P[j] - ds);
  return product;
}

}  // namespace

void DiagonalRankOneEigen::solve_root(std::int64_t j) {
  const std::int64_t m = m_;
  const double* D = pole_.data();
  const double* W = weight_.data();
  double lo, hi, x;
  std::int64_t K;
  const bool last = j == m - 1;
  // Poles [0, near_lo) and [near_hi, m) are far from the interval and enter through their
  // moments about its midpoint D_j + half; poles in between are summed at every step.
  std::int64_t near_lo = 0, near_hi = m;
  double half = 0.0;
  double below[kFarTerms] = {}, above[kFarTerms] = {};
  // psi: poles <= D_j, phi: poles > D_j (their sums and derivatives at the current x).
  double psi = 0.0, dpsi = 0.0, phi = 0.0, dphi = 0.0;
  if (!last) {
    half = 0.5 * (D[j + 1] - D[j]);
    const double reach = kFarRatio * half;
    // t_s = (D_s - D_j) - half is monotone in s (rounding is monotone), so both cuts are binary
    // searches; poles j and j + 1 (|t| = half) are always near.
    const auto t = [&](std::int64_t s) { return (D[s] - D[j]) - half; };
    std::int64_t a = 0, b = j;  // first s in [0, j] with t_s > -reach
    while (a < b) {
      const std::int64_t c = a + (b - a) / 2;
      if (t(c) > -reach)
        b = c;
      else
        a = c + 1;
    }
    near_lo = a;
    a = j + 1, b = m;  // first s in [j + 1, m) with t_s >= reach
    while (a < b) {
      const std::int64_t c = a + (b - a) / 2;
      if (t(c) >= reach)
        b = c;
      else
        a = c + 1;
    }
    near_hi = a;
    far_moments(D, W, 0, near_lo, D[j], half, below);
    far_moments(D, W, near_hi, m, D[j], half, above);
    // The sign of f at the midpoint tells which pole the root is nearer to; that pole becomes the
    // origin, so that |tau| <= half and every other pole is at least as far from the root.
    secular_sums(D, W, near_lo, j + 1, D[j], half, &psi, &dpsi);
    secular_sums(D, W, j + 1, near_hi, D[j], half, &phi, &dphi);
    psi += below[0], dpsi += below[1];
    phi += above[0], dphi += above[1];
    if (1.0 + psi + phi >= 0.0) {
      K = j, lo = 0.0, hi = half, x = half;
    } else {
      K = j + 1, lo = -half, hi = 0.0, x = -half;
    }
  } else {
    // f(D_{m-1} + W_{m-1}) < 0 <= f(D_{m-1} + sum W) bracket the last root; every pole is near.
    double total = 0.0;
    for (std::int64_t s = 0; s < m; ++s) total += W[s];
    K = j, lo = W[j], hi = total, x = total;
    if (!(lo < hi)) lo = 0.0;  // m = 1 (the root is D + W exactly) or rounding
    secular_sums(D, W, 0, m, D[j], x, &psi, &dpsi);
  }
  const double origin = D[K];
  // Offset of lambda from the midpoint: h = x - half from origin j, x + half from origin j + 1.
  const double midpoint_offset = K == j ? -half : half;
  for (int it = 0;; ++it) {
    ++iterations_;
    const double f = 1.0 + psi + phi;
    // Each term carries a relative error of a few eps (the poles are exact and D_s - lambda is
    // accurate to 3 eps, the origin being the nearer pole), and x itself is known to eps |x|.
    const double error = kEps * (8.0 * (1.0 + phi - psi) + std::abs(x) * (dpsi + dphi));
    if (std::abs(f) <= error || it >= kMaxIterations) break;
    if (f < 0.0) {
      lo = x;
    } else {
      hi = x;
    }
    double y;
    const double left = (D[j] - origin) - x;  // < 0: offset of the pole below
    const double b1 = dpsi * left * left, c1 = psi - dpsi * left;
    if (last) {
      const double c = 1.0 + c1;  // model c + b1 / (left - eta) = 0
      y = c > 0.0 ? x + left + b1 / c : std::numeric_limits<double>::quiet_NaN();
    } else {
      const double right = (D[j + 1] - origin) - x;  // > 0
      const double b2 = dphi * right * right, c2 = phi - dphi * right;
      const double c = 1.0 + c1 + c2;
      // c + b1/(left - eta) + b2/(right - eta) = 0  <=>  c eta^2 - B eta + C = 0, and the root
      // that tends to 0 with f (the one inside the interval) is 2C / (B + sign(B) sqrt(disc)).
      const double B = c * (left + right) + b1 + b2;
      const double C = left * right * f;
      const double disc = std::max(B * B - 4.0 * c * C, 0.0);
      const double denom = B + std::copysign(std::sqrt(disc), B);
      y = denom != 0.0 ? x + 2.0 * C / denom : std::numeric_limits<double>::quiet_NaN();
    }
    if (!(y > lo && y < hi)) y = 0.5 * (lo + hi);
    if (y == x || !(y > lo && y < hi)) break;  // the bracket holds no other double
    x = y;
    secular_sums(D, W, near_lo, j + 1, origin, x, &psi, &dpsi);
    if (last) continue;
    secular_sums(D, W, j + 1, near_hi, origin, x, &phi, &dphi);
    const double h = x + midpoint_offset;
    double value, slope;
    far_field(below, h, &value, &slope);
    psi += value, dpsi += slope;
    far_field(above, h, &value, &slope);
    phi += value, dphi += slope;
  }
  origin_[j] = K;
  tau_[j] = x;
}

void DiagonalRankOneEigen::correct_weights() {
  const std::int64_t m = m_;
  const double* D = pole_.data();
  // lambda_j - D_s = (D_{K_j} - D_s) + tau_j, paired with the pole beside root j on D_s's side:
  // for j < s with D_j - D_s, for j >= s with D_{j+1} - D_s (interlacing D_j < lambda_j <
  // D_{j+1}). Every ratio lies in (0, 1), so the product only decreases towards zhat_s^2.
  std::vector<double> root_origin(checked_size(m, 1));
  for (std::int64_t j = 0; j < m; ++j) root_origin[j] = D[origin_[j]];
  const double* R = root_origin.data();
  const double* T = tau_.data();
  for (std::int64_t s = 0; s < m; ++s) {
    interruption_point();
    const double ds = D[s];
    const double product = ((R[m - 1] - ds) + T[m - 1]) * paired_ratio_product(R, T, D, 0, s, ds) *
                           paired_ratio_product(R, T, D + 1, s, m - 1, ds);
    zhat_[s] = std::sqrt(std::max(product, 0.0));
  }
}

DiagonalRankOneEigen::DiagonalRankOneEigen(const double* d_in, const double* z_in, std::int64_t n)
    : n_(n) {
  IPDPP_REQUIRE(n >= 0, "n must be >= 0");
  double largest_d = 0.0, z_norm2 = 0.0;
  for (std::int64_t i = 0; i < n; ++i) {
    IPDPP_REQUIRE(std::isfinite(d_in[i]) && std::isfinite(z_in[i]), "d and z must be finite");
    largest_d = std::max(largest_d, std::abs(d_in[i]));
  }
  double z_max = 0.0, z_relative2 = 0.0;
  for (std::int64_t i = 0; i < n; ++i) z_max = std::max(z_max, std::abs(z_in[i]));
  if (z_max > 0.0)
    for (std::int64_t i = 0; i < n; ++i) z_relative2 += (z_in[i] / z_max) * (z_in[i] / z_max);
  // Scale by 4^-k (exact): S / 4^k = diag(d / 4^k) + (z / 2^k)(z / 2^k)^T, with 4^k within a
  // factor of 4 of max(max|d|, |z|^2) = max(max|d|, z_max^2 * z_relative2), found from binary
  // exponents since |z|^2 itself may overflow.
  int exponent = std::numeric_limits<int>::min();
  if (largest_d > 0.0) exponent = std::ilogb(largest_d);
  if (z_max > 0.0) exponent = std::max(exponent, 2 * std::ilogb(z_max) + std::ilogb(z_relative2));
  const int k = exponent == std::numeric_limits<int>::min() ? 0 : exponent / 2;
  scale_ = std::ldexp(1.0, 2 * k);
  std::vector<double> d(checked_size(n, 1));
  z_.resize(checked_size(n, 1));
  for (std::int64_t i = 0; i < n; ++i) {
    d[i] = std::ldexp(d_in[i], -2 * k);
    z_[i] = std::ldexp(z_in[i], -k);
    z_norm2 += z_[i] * z_[i];
  }
  const double* z = z_.data();
  largest_d = std::ldexp(largest_d, -2 * k);
  const double z_norm = std::sqrt(z_norm2);
  const double tol = kDeflationUlps * kEps * (largest_d + z_norm2);
  pairs_.reserve(checked_size(n, 1));

  // Sorted by d (ties by index, so that the result is deterministic); negligible z decoupled.
  std::vector<std::int64_t> order(checked_size(n, 1));
  std::iota(order.begin(), order.end(), std::int64_t{0});
  std::sort(order.begin(), order.end(),
            [&](std::int64_t a, std::int64_t b) { return d[a] < d[b] || (d[a] == d[b] && a < b); });
  members_.reserve(order.size());
  for (std::int64_t i : order) {
    if (std::abs(z[i]) * z_norm <= tol)
      pairs_.push_back({d[i], Kind::kDecoupled, i});
    else
      members_.push_back(i);
  }

  // Runs of (nearly) equal d among the coupled items become groups.
  const std::size_t coupled = members_.size();
  member_of_.resize(coupled);
  householder_.assign(coupled, 0.0);
  group_.push_back(0);
  for (std::size_t first = 0; first < coupled;) {
    const double dg = d[members_[first]];
    std::size_t end = first + 1;
    while (end < coupled && d[members_[end]] - dg <= tol) ++end;
    const auto s = static_cast<std::int64_t>(pole_.size());
    double norm2 = 0.0;
    for (std::size_t t = first; t < end; ++t) {
      norm2 += z[members_[t]] * z[members_[t]];
      member_of_[t] = s;
    }
    const double norm = std::sqrt(norm2);
    double v_norm2 = 0.0;
    if (end - first > 1) {
      // v = z_G + sign(z_first) |z_G| e_first: no cancellation in the first entry.
      for (std::size_t t = first; t < end; ++t) householder_[t] = z[members_[t]];
      householder_[first] += std::copysign(norm, z[members_[first]]);
      for (std::size_t t = first; t < end; ++t) v_norm2 += householder_[t] * householder_[t];
      for (std::size_t t = first + 1; t < end; ++t)
        pairs_.push_back({dg, Kind::kGroup, static_cast<std::int64_t>(t)});
    }
    pole_.push_back(dg);
    weight_.push_back(norm2);
    norm_.push_back(norm);
    householder_norm2_.push_back(v_norm2);
    group_.push_back(static_cast<std::int64_t>(end));
    first = end;
  }
  m_ = static_cast<std::int64_t>(pole_.size());

  origin_.resize(checked_size(m_, 1));
  tau_.resize(checked_size(m_, 1));
  zhat_.resize(checked_size(m_, 1));
  for (std::int64_t j = 0; j < m_; ++j) {
    interruption_point();  // a root costs O(m)
    solve_root(j);
  }
  correct_weights();
  for (std::int64_t j = 0; j < m_; ++j)
    pairs_.push_back({pole_[origin_[j]] + tau_[j], Kind::kRoot, j});
  std::sort(pairs_.begin(), pairs_.end(), [](const Pair& a, const Pair& b) {
    return std::tie(a.value, a.kind, a.index) < std::tie(b.value, b.kind, b.index);
  });
  eigenvalues_.resize(pairs_.size());
  for (std::size_t t = 0; t < pairs_.size(); ++t) eigenvalues_[t] = pairs_[t].value * scale_;
}

void DiagonalRankOneEigen::eigenvector(std::int64_t m, double* out, std::int64_t stride) const {
  IPDPP_ASSERT(m >= 0 && m < n_);
  for (std::int64_t i = 0; i < n_; ++i) out[i * stride] = 0.0;
  const Pair& pair = pairs_[m];
  switch (pair.kind) {
    case Kind::kDecoupled: out[pair.index * stride] = 1.0; return;
    case Kind::kGroup: {
      // Column t of the group's Householder reflector: e_t - 2 v v_t / v^T v.
      const std::int64_t t = pair.index, s = member_of_[t];
      const double scale = -2.0 * householder_[t] / householder_norm2_[s];
      for (std::int64_t u = group_[s]; u < group_[s + 1]; ++u)
        out[members_[u] * stride] = scale * householder_[u];
      out[members_[t] * stride] += 1.0;
      return;
    }
    case Kind::kRoot: {
      // (D - lambda_j)^{-1} zhat, spread over each group along z_G / |z_G|.
      const std::int64_t j = pair.index;
      const double origin = pole_[origin_[j]], tau = tau_[j];
      double norm2 = 0.0;
      for (std::int64_t s = 0; s < m_; ++s) {
        const double value = zhat_[s] / ((pole_[s] - origin) - tau);
        norm2 += value * value;
      }
      const double inv_norm = 1.0 / std::sqrt(norm2);
      for (std::int64_t s = 0; s < m_; ++s) {
        const double value = inv_norm * zhat_[s] / ((pole_[s] - origin) - tau) / norm_[s];
        for (std::int64_t u = group_[s]; u < group_[s + 1]; ++u)
          out[members_[u] * stride] = value * z_[members_[u]];
      }
      return;
    }
  }
}

}  // namespace ipdpp

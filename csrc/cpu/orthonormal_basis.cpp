#include "cpu/orthonormal_basis.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "common/error.h"
#include "cpu/hot_loop.h"

namespace ipdpp {
namespace {

// The hot loops work on groups of 8 doubles, AVX-512's width, held as two vectors of 4 (AVX2's
// width, which GCC lowers well on every target): a reduction always adds the same 8 partial sums
// in the same tree, and a coefficient is one FMA chain over the coordinates in increasing order,
// so every clone rounds alike whatever the width of its registers.
constexpr std::int64_t kLanes = 8;
constexpr std::int64_t kHalf = 4;
// Coefficients per early-exit test of residual_exceeds: 4 groups, i.e. 8 vectors of 4, which is
// 8 independent FMA chains, enough to keep two FMA units busy through their latency.
constexpr int kBlockGroups = 4;
constexpr std::int64_t kBlock = kLanes * kBlockGroups;

typedef double Half __attribute__((vector_size(32)));

// The helpers below take and return vectors; always inlined, they never cross a call, so the
// ABI note GCC gives for them (-Wpsabi) does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"
#define IPDPP_INLINE inline __attribute__((always_inline))

std::int64_t round_up(std::int64_t x, std::int64_t multiple) {
  return (x + multiple - 1) / multiple * multiple;
}

IPDPP_INLINE Half load(const double* p) {
  Half v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

IPDPP_INLINE void store(double* p, Half v) { std::memcpy(p, &v, sizeof(v)); }

IPDPP_INLINE Half splat(double x) { return Half{x, x, x, x}; }

// The sum of the 8 lanes (lo, hi), in a fixed tree.
IPDPP_INLINE double sum_lanes(Half lo, Half hi) {
  return ((lo[0] + lo[1]) + (lo[2] + lo[3])) + ((hi[0] + hi[1]) + (hi[2] + hi[3]));
}

// sum_c y[c]^2 with coordinate c in lane c mod 8; y is zero-padded to a multiple of 8 when k is
// not one.
IPDPP_INLINE double sum_squares(const double* y, std::int64_t k) {
  Half lo = {}, hi = {};
  std::int64_t c = 0;
  for (; c + kLanes <= k; c += kLanes) {
    const Half a = load(y + c), b = load(y + c + kHalf);
    lo += a * a;
    hi += b * b;
  }
  if (c < k) {
    double tail[kLanes] = {};
    std::memcpy(tail, y + c, static_cast<std::size_t>(k - c) * sizeof(double));
    const Half a = load(tail), b = load(tail + kHalf);
    lo += a * a;
    hi += b * b;
  }
  return sum_lanes(lo, hi);
}

// coef[0 .. G * kLanes) = sum_c y[c] * bt[c * ld + 0 .. G * kLanes), one FMA chain per
// coefficient in increasing c.
template <int G>
IPDPP_INLINE void block_coefficients(const double* y, std::int64_t k, const double* bt,
                                     std::int64_t ld, double* coef) {
  constexpr int kVectors = 2 * G;
  Half acc[kVectors];
  for (int j = 0; j < kVectors; ++j) acc[j] = Half{};
  for (std::int64_t c = 0; c < k; ++c) {
    const double* p = bt + c * ld;
    const Half yc = splat(y[c]);
    for (int j = 0; j < kVectors; ++j) acc[j] += yc * load(p + j * kHalf);
  }
  for (int j = 0; j < kVectors; ++j) store(coef + j * kHalf, acc[j]);
}

IPDPP_INLINE void coefficients_of_block(const double* y, std::int64_t k, const double* bt,
                                        std::int64_t ld, int groups, double* coef) {
  switch (groups) {
    case 1: block_coefficients<1>(y, k, bt, ld, coef); break;
    case 2: block_coefficients<2>(y, k, bt, ld, coef); break;
    case 3: block_coefficients<3>(y, k, bt, ld, coef); break;
    default: block_coefficients<kBlockGroups>(y, k, bt, ld, coef); break;
  }
}

int block_groups(std::int64_t s0, std::int64_t size) {
  return static_cast<int>(std::min<std::int64_t>(kBlockGroups, (size - s0 + kLanes - 1) / kLanes));
}

// The float32 screen: 8 floats per vector, so a group of 8 coefficients is one vector; the
// coordinates are split in even and odd ones so that a block keeps 8 FMA chains in flight. Its
// rounding is covered by screen_margin whatever the order, so it needs no fixed lane order.
typedef float Floats __attribute__((vector_size(32)));

IPDPP_INLINE Floats load_floats(const float* p) {
  Floats v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

IPDPP_INLINE float sum_floats(Floats v) {
  return ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]));
}

IPDPP_INLINE float sum_squares_floats(const float* y, std::int64_t k) {
  Floats acc = {};
  std::int64_t c = 0;
  for (; c + kLanes <= k; c += kLanes) {
    const Floats v = load_floats(y + c);
    acc += v * v;
  }
  float tail = 0.0f;
  for (; c < k; ++c) tail += y[c] * y[c];
  return sum_floats(acc) + tail;
}

template <int G>
IPDPP_INLINE float block_squares_floats(const float* y, std::int64_t k, const float* bt,
                                        std::int64_t ld) {
  Floats even[G], odd[G];
  for (int j = 0; j < G; ++j) even[j] = odd[j] = Floats{};
  std::int64_t c = 0;
  for (; c + 2 <= k; c += 2) {
    const float* p = bt + c * ld;
    const float y0 = y[c], y1 = y[c + 1];
    const Floats v0 = {y0, y0, y0, y0, y0, y0, y0, y0}, v1 = {y1, y1, y1, y1, y1, y1, y1, y1};
    for (int j = 0; j < G; ++j) even[j] += v0 * load_floats(p + j * kLanes);
    for (int j = 0; j < G; ++j) odd[j] += v1 * load_floats(p + ld + j * kLanes);
  }
  if (c < k) {
    const float y0 = y[c];
    const Floats v0 = {y0, y0, y0, y0, y0, y0, y0, y0};
    for (int j = 0; j < G; ++j) even[j] += v0 * load_floats(bt + c * ld + j * kLanes);
  }
  Floats squares = {};
  for (int j = 0; j < G; ++j) {
    const Floats coef = even[j] + odd[j];
    squares += coef * coef;
  }
  return sum_floats(squares);
}

IPDPP_INLINE float squares_of_block_floats(const float* y, std::int64_t k, const float* bt,
                                           std::int64_t ld, int groups) {
  switch (groups) {
    case 1: return block_squares_floats<1>(y, k, bt, ld);
    case 2: return block_squares_floats<2>(y, k, bt, ld);
    case 3: return block_squares_floats<3>(y, k, bt, ld);
    default: return block_squares_floats<kBlockGroups>(y, k, bt, ld);
  }
}

// gamma_n = n u / (1 - n u) (Higham, Accuracy and Stability of Numerical Algorithms, 3.1): the
// relative error bound of a sum or dot product of n terms in any order; infinite when n u >= 1/2.
double gamma(double n, double u) {
  return n * u < 0.5 ? n * u / (1.0 - n * u) : std::numeric_limits<double>::infinity();
}

// Bound, relative to ||y||^2, on |computed - exact| for ||y||^2 - sum_{s<m} (y . b_s)^2 computed
// with unit roundoff u from y (exact in that precision) and the b_s rounded to it (relative error
// u, |b_s| <= 1): every coefficient is off by at most a ||y||, a = gamma_{k+1} (1 + u) + u (the
// dot product, then the rounding of b_s), so the squares add up to at most
// a (2 sqrt(m) + m a) ||y||^2 of error (Cauchy-Schwarz on sum |c_s|, ||B y|| <= ||y||); the
// squares, the sum and the subtraction add gamma_{k+m+1} of everything summed, at most
// 2.01 (1 + sqrt(m) a)^2 ||y||^2.
double rounding_bound(double k, double m, double u) {
  const double a = gamma(k + 1.0, u) * (1.0 + u) + u;
  const double spread = 1.0 + std::sqrt(m) * a;
  return a * (2.0001 * std::sqrt(m) + m * a) + 2.01 * gamma(k + m + 1.0, u) * spread * spread;
}

}  // namespace

// The hot loops, one clone per instruction set (cpu/hot_loop.h). Directions s >= size of the
// transposed basis are zero, so a block may run past size: its extra coefficients are zero.
namespace basis_kernels {

IPDPP_HOT bool residual_exceeds(const double* y, std::int64_t k, const double* transposed,
                                std::int64_t ld, std::int64_t size, double threshold,
                                double relative, double* coef) {
  double left = sum_squares(y, k);
  threshold += relative * left;
  if (!(left > threshold)) return false;
  for (std::int64_t s0 = 0; s0 < size; s0 += kBlock) {
    const int groups = block_groups(s0, size);
    coefficients_of_block(y, k, transposed + s0, ld, groups, coef + s0);
    Half lo = {}, hi = {};
    for (int j = 0; j < groups; ++j) {
      const Half a = load(coef + s0 + j * kLanes), b = load(coef + s0 + j * kLanes + kHalf);
      lo += a * a;
      hi += b * b;
    }
    left -= sum_lanes(lo, hi);
    if (!(left > threshold)) return false;
  }
  return true;
}

IPDPP_HOT void all_coefficients(const double* y, std::int64_t k, const double* transposed,
                                std::int64_t ld, std::int64_t size, double* coef) {
  for (std::int64_t s0 = 0; s0 < size; s0 += kBlock)
    coefficients_of_block(y, k, transposed + s0, ld, block_groups(s0, size), coef + s0);
}

// `relative` is screen_margin(k, size) and `norm_factor` turns the computed ||y_hat||^2 into an
// upper bound on ||y||^2, `lower_factor` into a lower bound on residual_exceeds' computed ||y||^2
// (scaling the threshold's part proportional to it); the absolute 1e-30 covers the subnormal
// range, where the relative bounds do not hold (absolute errors there are below 1e-36).
IPDPP_HOT bool screen_may_exceed(const float* y, std::int64_t k, const float* transposed,
                                 std::int64_t ld, std::int64_t size, double threshold,
                                 double relative, double norm_factor, double lower_factor) {
  const float norm = sum_squares_floats(y, k);
  threshold += lower_factor * static_cast<double>(norm);
  const double margin = relative * norm_factor * static_cast<double>(norm) + 1e-30;
  if (static_cast<double>(norm) + margin <= threshold) return false;
  float left = norm;
  for (std::int64_t s0 = 0; s0 < size; s0 += kBlock) {
    left -= squares_of_block_floats(y, k, transposed + s0, ld, block_groups(s0, size));
    if (static_cast<double>(left) + margin <= threshold) return false;
  }
  return true;
}

// dst[0 .. stride) -= sum_s coef[s] * rows[s * stride ..], s < size, in increasing s for every
// coordinate; returns ||dst||^2. A group of 8 coordinates stays in registers through all s.
IPDPP_HOT double subtract_span(const double* coef, const double* rows, std::int64_t size,
                               std::int64_t stride, double* dst) {
  for (std::int64_t i = 0; i < stride; i += kLanes) {
    Half lo = load(dst + i), hi = load(dst + i + kHalf);
    const double* row = rows + i;
    for (std::int64_t s = 0; s < size; ++s, row += stride) {
      const Half c = splat(coef[s]);
      lo -= c * load(row);
      hi -= c * load(row + kHalf);
    }
    store(dst + i, lo);
    store(dst + i + kHalf, hi);
  }
  return sum_squares(dst, stride);
}

}  // namespace basis_kernels

OrthonormalBasis::OrthonormalBasis(std::int64_t k, std::int64_t capacity)
    : k_(k),
      capacity_(capacity),
      stride_(round_up(std::max<std::int64_t>(k, 1), kLanes)),
      ld_(round_up(std::max<std::int64_t>(capacity, 1), kLanes)),
      rows_(checked_size(capacity_, stride_), 0.0),
      transposed_(checked_size(k_, ld_), 0.0),
      transposed32_(checked_size(k_, ld_), 0.0f),
      scratch_(static_cast<std::size_t>(stride_ + ld_), 0.0),
      screen_margin_(screen_margin(k, 0)) {}

namespace {

// The screen reads y rounded to bfloat16 (from float64 through float32, both to nearest):
// |y_hat - y| <= e |y| elementwise.
const double kScreenRounding = std::ldexp(1.0, -8) + std::ldexp(1.0, -24) + std::ldexp(1.0, -32);
constexpr double kUnit32 = std::numeric_limits<float>::epsilon() / 2;
constexpr double kUnit64 = std::numeric_limits<double>::epsilon() / 2;

}  // namespace

double OrthonormalBasis::screen_margin(std::int64_t k, std::int64_t m) {
  const auto kd = static_cast<double>(k), md = static_cast<double>(m);
  const double e = kScreenRounding;
  // The squared residual is a squared distance to a subspace, so it moves by at most
  // (2 e + e^2) ||y||^2 from y to y_hat; the float32 arithmetic on y_hat adds
  // rounding_bound(u32) ||y_hat||^2, and the float64 test's own value is within
  // rounding_bound(u64) ||y||^2 of the exact one, which the screen's verdict must also cover.
  // Twice the sum: the bound assumed an exactly orthonormal basis, which holds to ~1e-14.
  return 2.0 * ((2.0 * e + e * e) + (1.0 + e) * (1.0 + e) * rounding_bound(kd, md, kUnit32) +
                rounding_bound(kd, md, kUnit64));
}

bool OrthonormalBasis::screen_may_exceed(const float* y_hat, double threshold,
                                         double relative) const {
  // ||y_hat||^2 is computed to within gamma_k of itself, and ||y|| <= ||y_hat|| / (1 - e): an
  // upper bound on ||y||^2; the lower one, on the value residual_exceeds computes, has
  // ||y|| >= ||y_hat|| / (1 + e) and that value's own gamma_k. Rows too long for the bound
  // (k u32 >= 1/2, far beyond where screening pays) pass.
  const double e = kScreenRounding, kd = static_cast<double>(k_);
  if (!(screen_margin_ < 1.0)) return true;
  const double norm_factor = 1.0 / ((1.0 - gamma(kd, kUnit32)) * (1.0 - e) * (1.0 - e));
  const double lower_factor =
      (1.0 - gamma(kd, kUnit64)) / ((1.0 + gamma(kd, kUnit32)) * (1.0 + e) * (1.0 + e));
  return basis_kernels::screen_may_exceed(y_hat, k_, transposed32_.data(), ld_, size_, threshold,
                                          screen_margin_, norm_factor, relative * lower_factor);
}

bool OrthonormalBasis::residual_exceeds(const double* y, double threshold, double relative,
                                        double* coef) const {
  return basis_kernels::residual_exceeds(y, k_, transposed_.data(), ld_, size_, threshold, relative,
                                         coef);
}

void OrthonormalBasis::append(const double* y, const double* coef) {
  IPDPP_ASSERT(size_ < capacity_);
  double* dst = scratch_.data();
  double* second = scratch_.data() + stride_;
  std::copy(y, y + k_, dst);  // dst[k, stride) stays zero
  const double before = sum_squares(dst, stride_);
  if (coef == nullptr) {
    basis_kernels::all_coefficients(dst, k_, transposed_.data(), ld_, size_, second);
    coef = second;
  }
  double after = basis_kernels::subtract_span(coef, rows_.data(), size_, stride_, dst);
  if (after < 0.5 * before) {
    basis_kernels::all_coefficients(dst, k_, transposed_.data(), ld_, size_, second);
    after = basis_kernels::subtract_span(second, rows_.data(), size_, stride_, dst);
  }
  IPDPP_ASSERT(after > 0.0);
  const double inv_norm = 1.0 / std::sqrt(after);
  double* row = rows_.data() + size_ * stride_;
  for (std::int64_t c = 0; c < k_; ++c) {
    row[c] = dst[c] * inv_norm;
    transposed_[static_cast<std::size_t>(c * ld_ + size_)] = row[c];
    transposed32_[static_cast<std::size_t>(c * ld_ + size_)] = static_cast<float>(row[c]);
  }
  ++size_;
  screen_margin_ = screen_margin(k_, size_);
}

}  // namespace ipdpp

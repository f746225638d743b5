#include "cpu/orthonormal_basis.h"

#include <algorithm>
#include <cmath>
#include <cstring>

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

}  // namespace

// The hot loops, one clone per instruction set (cpu/hot_loop.h). Directions s >= size of the
// transposed basis are zero, so a block may run past size: its extra coefficients are zero.
namespace basis_kernels {

IPDPP_HOT bool residual_exceeds(const double* y, std::int64_t k, const double* transposed,
                                std::int64_t ld, std::int64_t size, double threshold,
                                double* coef) {
  double left = sum_squares(y, k);
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

// dst[0 .. stride) -= sum_s coef[s] * rows[s * stride ..], s < size; returns ||dst||^2.
IPDPP_HOT double subtract_span(const double* coef, const double* rows, std::int64_t size,
                               std::int64_t stride, double* dst) {
  for (std::int64_t s = 0; s < size; ++s) {
    const Half c = splat(coef[s]);
    const double* row = rows + s * stride;
    for (std::int64_t i = 0; i < stride; i += kHalf)
      store(dst + i, load(dst + i) - c * load(row + i));
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
      scratch_(static_cast<std::size_t>(stride_ + ld_), 0.0) {}

bool OrthonormalBasis::residual_exceeds(const double* y, double threshold, double* coef) const {
  return basis_kernels::residual_exceeds(y, k_, transposed_.data(), ld_, size_, threshold, coef);
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
  }
  ++size_;
}

}  // namespace ipdpp

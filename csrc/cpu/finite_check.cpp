#include "cpu/finite_check.h"

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "common/interrupt.h"
#include "cpu/hot_loop.h"

namespace ipdpp {
namespace {

// Values per block between interruption points (4 MiB of float).
constexpr std::int64_t kBlock = std::int64_t{1} << 20;

// A value is NaN or +-Inf exactly when its exponent bits are all ones. Branch-free, so that the
// loop vectorises: the largest masked exponent for 32-bit lanes, OR-ed equality flags for 64-bit
// ones (AVX2 has no 64-bit unsigned max; either form is the faster for its width).
template <class T, class Bits>
[[gnu::always_inline]] inline bool block_finite(const T* x, std::int64_t n) {
  static_assert(sizeof(T) == sizeof(Bits));
  constexpr Bits exponent =
      static_cast<Bits>(std::is_same_v<T, float> ? 0x7f800000u : 0x7ff0000000000000u);
  Bits seen = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    Bits b;
    std::memcpy(&b, x + i, sizeof b);
    if constexpr (sizeof(Bits) == 4)
      seen = std::max<Bits>(seen, b & exponent);
    else
      seen |= static_cast<Bits>((b & exponent) == exponent);
  }
  return sizeof(Bits) == 4 ? seen != exponent : seen == 0;
}

IPDPP_HOT bool block_finite_float(const float* x, std::int64_t n) {
  return block_finite<float, std::uint32_t>(x, n);
}

IPDPP_HOT bool block_finite_double(const double* x, std::int64_t n) {
  return block_finite<double, std::uint64_t>(x, n);
}

template <class T, class F>
bool all_finite_in_blocks(const T* x, std::int64_t n, F&& block) {
  for (std::int64_t i = 0; i < n; i += kBlock) {
    interruption_point();
    if (!block(x + i, std::min(kBlock, n - i))) return false;
  }
  return true;
}

}  // namespace

bool all_finite(const float* x, std::int64_t n) {
  return all_finite_in_blocks(x, n, block_finite_float);
}

bool all_finite(const double* x, std::int64_t n) {
  return all_finite_in_blocks(x, n, block_finite_double);
}

}  // namespace ipdpp

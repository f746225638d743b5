// The exponential race of the sequential phase: at step t, item i wins with
// probability r_i / sum(r) when every item draws E_{t,i} ~ Exp(1) and the smallest E_{t,i} / r_i
// wins. Selection and the residual update then share one pass over V.
//
// E_{t,i} is a pure function of (seed, sample, t, i): one Philox4x32-10 block per 4 consecutive
// items. Counter words: {sample_lo, sample_hi ^ purpose << 24, i / 4, 0x80000000 | t}. Word 3 of a
// RandomStream counter is always 0x1D99 < 2^31, so this counter space never overlaps any
// RandomStream of any purpose (common/philox.h), and t < 2^31, i < 2^34.
#pragma once

#include <cstdint>

#include "common/philox.h"
#include "cuda/block_reduce.cuh"

namespace ipdpp::cuda {

// The Exp(1) variate of item 4q + word (word < 4) at step t: word `word` of one Philox block per
// 4 consecutive items. Uniforms take 24 random bits each, ((bits >> 8) + 0.5) * 2^-24, which a
// float represents exactly and which is never 0 or 1 (so E is finite and positive: no item can
// win a race with zero weight or by a rounding accident). Only the lane that finishes an item
// calls it, so each lane takes one logarithm instead of four.
__device__ __forceinline__ float race_exponential(std::uint64_t seed, std::uint64_t sample,
                                                  std::uint32_t step, std::uint64_t quad,
                                                  int word) {
  const Philox4x32 ctr{{static_cast<std::uint32_t>(sample),
                        static_cast<std::uint32_t>(sample >> 32) ^
                            (static_cast<std::uint32_t>(RandomPurpose::kSequential) << 24),
                        static_cast<std::uint32_t>(quad), 0x80000000u | step}};
  const Philox4x32 r =
      philox4x32_10(ctr, static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32));
  // Constant indices only (a run-time index would move r to local memory).
  const std::uint32_t bits = word == 0 ? r.v[0] : word == 1 ? r.v[1] : word == 2 ? r.v[2] : r.v[3];
  const float u = (static_cast<float>(bits >> 8) + 0.5f) * 5.9604644775390625e-8f;  // 2^-24
  return -logf(u);
}

// The race key of an item with Exp(1) variate e and residual r > 0: a strictly increasing
// function h of e / r, as a float (packed into the 64-bit race entries with the item index).
//   h(x) = x                                     for x <= 2^64,
//   h(x) = 2^64 (1 + (log2(x) - 64) / 1024)      above (log2 x < 1079 for any positive double r).
// Below 2^64 the key is e / r computed in the sample's precision T and rounded once to float, so
// the race has float's relative precision whatever r is; the compressed branch keeps residuals
// far below float's range (fp64 residuals down to the smallest subnormal) finite, positive and in
// order, where a float e / r would overflow to +inf (an unselectable item) or a float r round to
// 0. Items on that branch win with probability below 2^-60.
template <class T>
__device__ __forceinline__ float race_key(float e, T r) {
  constexpr T kDirect = T(1.0 / 1152921504606846976.0);  // 2^-60: e / r <= 17 * 2^60 below it
  if (r >= kDirect) {
    const T x = static_cast<T>(e) / r;
    if (x <= T(18446744073709551616.0)) return static_cast<float>(x);  // 2^64
  }
  const double log_x = log2(static_cast<double>(e)) - log2(static_cast<double>(r));
  if (log_x <= 64.0) return static_cast<float>(static_cast<double>(e) / static_cast<double>(r));
  return static_cast<float>(18446744073709551616.0 * (1.0 + (log_x - 64.0) / 1024.0));
}

// A new basis direction w = (I - W W^T) v of the Gram-Schmidt step (two passes, in precision T)
// is numerical noise when ||w||^2 < kBreakdownUlps * k * eps_T^2 * ||v||^2: two passes leave a
// vector of the span with about sqrt(k) eps_T ||v|| of rounding, so such a row was already in the
// span and only won through rounding of its residual. A genuine row that small is drawn with
// probability below that fraction times k per step (1e-10 in float32 at k = 100), so the samplers
// report a breakdown instead of writing a noise direction.
constexpr double kBreakdownUlps = 64.0;
template <class T>
__device__ __forceinline__ bool gram_schmidt_broke_down(T norm2_after, T norm2_before,
                                                        std::int64_t k) {
  constexpr double eps = sizeof(T) == 4 ? 1.1920928955078125e-7 : 2.220446049250313e-16;
  return !(static_cast<double>(norm2_after) >
           kBreakdownUlps * static_cast<double>(k) * eps * eps * static_cast<double>(norm2_before));
}

// A race entry packed for a single 64-bit min: a non-negative float's bit pattern orders like
// its value, so the minimum picks the smallest key and, among equal keys, the smallest index.
__device__ __forceinline__ unsigned long long pack_race_key(float key, std::uint32_t item) {
  return (static_cast<unsigned long long>(__float_as_uint(key)) << 32) | item;
}
__device__ __forceinline__ std::uint32_t race_item(unsigned long long packed) {
  return static_cast<std::uint32_t>(packed & 0xffffffffull);
}
__device__ __forceinline__ bool race_is_empty(unsigned long long packed) {
  // +inf key (no item with positive residual) or the initial all-ones value.
  return (packed >> 32) >= 0x7f800000ull;
}

}  // namespace ipdpp::cuda

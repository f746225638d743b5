// The exponential race of the sequential phase (DESIGN.md section 2): at step t, item i wins with
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

// The 4 Exp(1) variates of items 4q .. 4q+3 at step t. Uniforms take 24 random bits each,
// ((bits >> 8) + 0.5) * 2^-24, which a float represents exactly and which is never 0 or 1 (so
// E is finite and positive: no item can win a race with zero weight or by a rounding accident).
__device__ __forceinline__ void race_exponentials(std::uint64_t seed, std::uint64_t sample,
                                                  std::uint32_t step, std::uint64_t quad,
                                                  float e[4]) {
  const Philox4x32 ctr{{static_cast<std::uint32_t>(sample),
                        static_cast<std::uint32_t>(sample >> 32) ^
                            (static_cast<std::uint32_t>(RandomPurpose::kSequential) << 24),
                        static_cast<std::uint32_t>(quad), 0x80000000u | step}};
  const Philox4x32 r =
      philox4x32_10(ctr, static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32));
#pragma unroll
  for (int w = 0; w < 4; ++w) {
    const float u = (static_cast<float>(r.v[w] >> 8) + 0.5f) * 5.9604644775390625e-8f;  // 2^-24
    e[w] = -logf(u);
  }
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

// Dot product shared by the CPU samplers and greedy MAP.
#pragma once

#include <cstdint>
#include <cstring>

namespace ipdpp {

// Four independent accumulators in a fixed order: without -ffast-math the compiler keeps a single
// sum's dependency chain (one add latency per term); four lanes vectorise and pipeline, and the
// fixed order gives the same result on every call.
#if defined(__GNUC__)
typedef double Lanes4 __attribute__((vector_size(32)));
inline double dot(const double* a, const double* b, std::int64_t k) {
  Lanes4 acc = {0.0, 0.0, 0.0, 0.0};
  std::int64_t c = 0;
  for (; c + 4 <= k; c += 4) {
    Lanes4 x, y;
    std::memcpy(&x, a + c, sizeof(x));  // unaligned loads
    std::memcpy(&y, b + c, sizeof(y));
    acc += x * y;
  }
  double s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
  for (; c < k; ++c) s += a[c] * b[c];
  return s;
}
#else
inline double dot(const double* a, const double* b, std::int64_t k) {
  double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
  std::int64_t c = 0;
  for (; c + 4 <= k; c += 4) {
    s0 += a[c] * b[c];
    s1 += a[c + 1] * b[c + 1];
    s2 += a[c + 2] * b[c + 2];
    s3 += a[c + 3] * b[c + 3];
  }
  double s = (s0 + s1) + (s2 + s3);
  for (; c < k; ++c) s += a[c] * b[c];
  return s;
}
#endif

}  // namespace ipdpp

// Walker/Vose alias table: O(n) build on the host, O(1) draws from weights w_i / sum(w). The
// rejection samplers of both backends propose items from the leverage scores through it; the
// GPU keeps 32-bit alias indices (Index = int32), the CPU 64-bit ones.
#pragma once

#include <cstdint>
#include <vector>

#include "common/error.h"
#include "common/philox.h"

namespace ipdpp {

// Fills keep[0..n) (probability of keeping the bucket's own item) and alias[0..n) (the bucket's
// other item) for weights w[0..n) >= 0 with a positive sum. Vose's method: scaled weights
// average 1; each under-full bucket is paired with an over-full item.
template <class Index>
void build_alias_table(const double* weights, std::int64_t n, double* keep, Index* alias) {
  IPDPP_ASSERT(n > 0);
  double total = 0.0;
  for (std::int64_t i = 0; i < n; ++i) total += weights[i];
  IPDPP_REQUIRE(total > 0.0, "the kernel has no positive leverage score (rank 0)");
  std::vector<double> scaled(static_cast<std::size_t>(n));
  std::vector<Index> small, large;
  small.reserve(static_cast<std::size_t>(n));
  large.reserve(static_cast<std::size_t>(n));
  const double factor = static_cast<double>(n) / total;
  for (std::int64_t i = 0; i < n; ++i) {
    scaled[i] = weights[i] * factor;
    (scaled[i] < 1.0 ? small : large).push_back(static_cast<Index>(i));
  }
  while (!small.empty() && !large.empty()) {
    const Index s = small.back(), l = large.back();
    small.pop_back();
    keep[s] = scaled[s];
    alias[s] = l;
    scaled[l] = (scaled[l] + scaled[s]) - 1.0;
    if (scaled[l] < 1.0) {
      large.pop_back();
      small.push_back(l);
    }
  }
  // Leftovers are full buckets up to rounding. A zero-weight leftover would be proposed with
  // probability 1/n; the rejection samplers reject it (its acceptance ratio is 0), so exactness
  // holds and only time is lost.
  for (Index i : large) keep[i] = 1.0, alias[i] = i;
  for (Index i : small) keep[i] = 1.0, alias[i] = i;
}

// Bucket floor(u_bucket * n) for a uniform in [0, 1), clamped: u * n can round up to n.
IPDPP_HD std::int64_t alias_bucket(std::int64_t n, double u_bucket) {
  const auto bucket = static_cast<std::int64_t>(u_bucket * static_cast<double>(n));
  return bucket >= n ? n - 1 : bucket;
}

// The item of bucket alias_bucket(n, u_bucket) for the coin u_coin, both uniforms in [0, 1).
template <class Index>
IPDPP_HD std::int64_t alias_draw(const double* keep, const Index* alias, std::int64_t n,
                                 double u_bucket, double u_coin) {
  const std::int64_t bucket = alias_bucket(n, u_bucket);
  return u_coin < keep[bucket] ? bucket : static_cast<std::int64_t>(alias[bucket]);
}

}  // namespace ipdpp

#include "cpu/projection_sampler.h"

#include <algorithm>
#include <vector>

#include "common/dot.h"
#include "common/error.h"
#include "common/interrupt.h"
#include "cpu/hot_loop.h"
#include "cpu/orthonormal_basis.h"

namespace ipdpp {
namespace {

// Items per partial sum of the sequential phase's residuals: picking an item by inverse CDF then
// scans n / 256 block sums and at most 256 residuals instead of all n.
constexpr std::int64_t kPickBlock = 256;

// Index i with probability w_i / sum(w) given target = u * sum(w), u uniform in (0, 1), using the
// block sums of w. Never returns an item of weight zero, even when rounding puts the target past
// the last partial sum.
std::int64_t pick_by_cdf(const std::vector<double>& w, const std::vector<double>& block_sum,
                         double target) {
  const std::int64_t blocks = static_cast<std::int64_t>(block_sum.size());
  std::int64_t b = 0, last_positive_block = -1;
  double before = 0.0;
  for (; b < blocks; ++b) {
    if (block_sum[b] <= 0.0) continue;
    last_positive_block = b;
    if (before + block_sum[b] > target) break;
    before += block_sum[b];
  }
  IPDPP_ASSERT(last_positive_block >= 0);
  if (b == blocks) {  // rounding put the target at the very end: take the last positive item
    b = last_positive_block;
    before -= block_sum[b];
  }
  const std::int64_t begin = b * kPickBlock;
  const std::int64_t end =
      std::min<std::int64_t>(begin + kPickBlock, static_cast<std::int64_t>(w.size()));
  std::int64_t last_positive = -1;
  double acc = before;
  for (std::int64_t i = begin; i < end; ++i) {
    if (w[i] <= 0.0) continue;
    last_positive = i;
    acc += w[i];
    if (acc > target) return i;
  }
  IPDPP_ASSERT(last_positive >= 0);
  return last_positive;
}

}  // namespace

IPDPP_HOT void project_sequential(const Spectrum& spectrum, const std::int64_t* cols,
                                  std::int64_t k, RandomStream& rng, std::int64_t* out) {
  if (k == 0) return;
  const std::int64_t n = spectrum.n, r = spectrum.rank;
  const double* V = spectrum.eigenvectors.data();
  // Gather the k selected columns once into a contiguous n x k array: every step then streams
  // exactly n k doubles instead of n rank.
  std::vector<double> y(checked_size(n, k));
  std::vector<double> residual(static_cast<std::size_t>(n));
  const std::int64_t blocks = (n + kPickBlock - 1) / kPickBlock;
  std::vector<double> block_sum(static_cast<std::size_t>(blocks), 0.0);
  for (std::int64_t i = 0; i < n; ++i) {
    const double* row = V + i * r;
    double* yi = y.data() + i * k;
    for (std::int64_t c = 0; c < k; ++c) yi[c] = row[cols[c]];
    residual[i] = dot(yi, yi, k);
    block_sum[i / kPickBlock] += residual[i];
  }
  OrthonormalBasis basis(k, k - 1);
  for (std::int64_t t = 0;; ++t) {
    interruption_point();  // a step streams n k doubles
    double total = 0.0;
    for (double s : block_sum) total += s;
    IPDPP_ASSERT(total > 0.0);
    const std::int64_t j = pick_by_cdf(residual, block_sum, rng.uniform() * total);
    out[t] = j;
    if (t + 1 == k) return;
    basis.append(y.data() + j * k, nullptr);
    const double* w = basis.direction(t);
    // r_i <- r_i - (y_i . w)^2: the squared distance of y_i to the span of the chosen rows.
    for (std::int64_t b = 0; b < blocks; ++b) {
      const std::int64_t end = std::min(n, (b + 1) * kPickBlock);
      double sum = 0.0;
      for (std::int64_t i = b * kPickBlock; i < end; ++i) {
        const double c = dot(y.data() + i * k, w, k);
        const double left = residual[i] - c * c;
        residual[i] = left > 0.0 ? left : 0.0;
        sum += residual[i];
      }
      block_sum[b] = sum;
    }
    // The chosen row is in the span now; force its rounding residue to exactly zero.
    block_sum[j / kPickBlock] -= residual[j];
    residual[j] = 0.0;
  }
}

}  // namespace ipdpp

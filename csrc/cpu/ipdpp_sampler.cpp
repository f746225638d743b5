#include "cpu/ipdpp_sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>

#include "common/error.h"
#include "common/interrupt.h"
#include "common/ipdpp_errors.h"
#include "common/ipdpp_walk.h"
#include "common/parallel.h"

namespace ipdpp {
namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();
// Rows of the tables (O(k) work each) between two interruption points of a build or a walk.
constexpr std::int64_t kRowsPerInterruptionPoint = 1024;

// The arithmetic shared with the GPU sampler (csrc/cuda/ipdpp_sampler.cu).
using ipdpp_walk::choose_branch;

// log(exp(x) + exp(y) + exp(z)).
inline double log_add3(double x, double y, double z) { return log_add_exp(log_add_exp(x, y), z); }

}  // namespace

DiagonalPlusRankOne ipdpp_diagonal_rank_one(const double* p, std::int64_t n, double alpha) {
  IPDPP_REQUIRE(alpha > 0.0 && std::isfinite(alpha), "alpha must be a finite number > 0");
  double total = 0.0;
  for (std::int64_t i = 0; i < n; ++i) {
    IPDPP_REQUIRE(p[i] >= 0.0 && p[i] <= 1.0, "p must lie in [0, 1]");
    total += p[i];
  }
  DiagonalPlusRankOne s;
  s.d.resize(checked_size(n, 1));
  s.a.resize(checked_size(n, 1));
  for (std::int64_t i = 0; i < n; ++i) {
    double d = 0.0;
    if (!ipdpp_walk::diagonal_entry(p[i], alpha, total, &d)) {
      double reach = 0.0;  // the largest alpha p_j sum(p), for the message
      for (std::int64_t j = 0; j < n; ++j) reach = std::max(reach, alpha * p[j] * total);
      throw std::invalid_argument(alpha_too_large_message(alpha, reach));
    }
    s.d[i] = d;
    s.a[i] = alpha * p[i] * p[i];
  }
  return s;
}

StructuredKDPP::StructuredKDPP(const double* d, const double* a, std::int64_t n, std::int64_t k,
                               std::int64_t table_entries_limit)
    : n_(n), k_(k) {
  IPDPP_REQUIRE(n >= 0 && k >= 0, "n and k must be nonnegative");
  IPDPP_REQUIRE(
      k <= n, "k = " + std::to_string(k) + " exceeds the ground set size n = " + std::to_string(n));
  width_ = std::min(k, n - k) + 1;
  if (table_entries_limit <= 0) table_entries_limit = kDefaultTableEntries;
  const auto rows = static_cast<double>(n + 1);
  stride_ = rows * static_cast<double>(width_) <= static_cast<double>(table_entries_limit)
                ? 1
                : static_cast<std::int64_t>(std::ceil(std::sqrt(rows)));
  // Scaling S by c multiplies every det(S_A), |A| = k, by c^k: the k-DPP is unchanged. A power
  // of two is exact; max(d, a) <= 1 bounds the growth of a table row to a factor 3 (2 bits).
  double top = 0.0;
  for (std::int64_t i = 0; i < n; ++i) {
    IPDPP_REQUIRE(d[i] >= 0.0 && a[i] >= 0.0 && std::isfinite(d[i]) && std::isfinite(a[i]),
                  "the diagonal and rank-one weights must be finite and nonnegative");
    top = std::max(top, std::max(d[i], a[i]));
  }
  const int shift = top > 1.0 ? -std::ilogb(top) - 1 : 0;
  d_.resize(checked_size(n, 1));
  a_.resize(checked_size(n, 1));
  positive_d_.assign(checked_size(n + 1, 1), 0);
  extra_h_.assign(checked_size(n + 1, 1), 0);
  for (std::int64_t i = 0; i < n; ++i) {
    d_[i] = std::ldexp(d[i], shift);
    a_[i] = std::ldexp(a[i], shift);
    positive_d_[i + 1] = positive_d_[i] + (d_[i] > 0.0);
    extra_h_[i + 1] = extra_h_[i] || (d_[i] == 0.0 && a_[i] > 0.0);
  }
  if (!build(/*log_space=*/false)) build(/*log_space=*/true);
  IPDPP_REQUIRE(log_normalizer_ > kNegInf, rank_below_k_message(k));
}

int StructuredKDPP::scaled_row(std::int64_t i, const double* prev_e, const double* prev_h,
                               double* e_row, double* h_row) const {
  // Row maxima are kept in [2^kLowExponent, 2^kHighExponent + 2] (a row grows by at most a
  // factor 3 = 1 + max d + max a); structurally positive entries must stay >= 2^kMinExponent,
  // far above the subnormal range (2^-1022), so that a subnormal product d_i * x, whose error
  // is absolute (2^-1075), perturbs a sum of size >= 2^-960 by less than 2^-115 relatively.
  constexpr int kHighExponent = 1000, kLowExponent = 900, kTargetExponent = 960;
  constexpr int kMinExponent = -960;
  const double di = d_[i - 1], ai = a_[i - 1];
  const std::int64_t prev_lo = lo(i - 1), prev_hi = hi(i - 1);
  const std::int64_t row_lo = lo(i), row_hi = hi(i);
  double row_max = 0.0;
  for (std::int64_t l = row_lo; l <= row_hi; ++l) {
    // lo(i - 1) <= lo(i) <= l and l - 1 <= hi(i - 1): only these two bounds can cut.
    const bool has_skip = l <= prev_hi, has_take = l - 1 >= prev_lo;
    const double e_skip = has_skip ? prev_e[l - prev_lo] : 0.0;
    const double h_skip = has_skip ? prev_h[l - prev_lo] : 0.0;
    const double e_take = has_take ? prev_e[l - 1 - prev_lo] : 0.0;
    const double h_take = has_take ? prev_h[l - 1 - prev_lo] : 0.0;
    e_row[l - row_lo] = e_skip + di * e_take;
    const double h = h_skip + di * h_take + ai * e_take;
    h_row[l - row_lo] = h;
    row_max = std::max(row_max, h);  // H >= E entrywise
  }
  int exponent = 0;
  if (row_max > 0.0) {
    const int top = std::ilogb(row_max);
    if (top > kHighExponent || top < kLowExponent) {
      const double factor = std::ldexp(1.0, kTargetExponent - top);
      for (std::int64_t l = 0; l <= row_hi - row_lo; ++l) {
        e_row[l] *= factor;
        h_row[l] *= factor;
      }
      exponent = top - kTargetExponent;
    }
  }
  const double min_positive = std::ldexp(1.0, kMinExponent);
  const std::int64_t e_last = std::min(row_hi, positive_d_[i]);
  const std::int64_t h_last = std::min(row_hi, positive_d_[i] + extra_h_[i]);
  for (std::int64_t l = row_lo; l <= h_last; ++l) {
    if (h_row[l - row_lo] < min_positive) return kOutOfRange;
    if (l <= e_last && e_row[l - row_lo] < min_positive) return kOutOfRange;
  }
  return exponent;
}

void StructuredKDPP::log_row(std::int64_t i, const double* prev_e, const double* prev_h,
                             double* e_row, double* h_row) const {
  const double ld = std::log(d_[i - 1]), la = std::log(a_[i - 1]);  // log(0) = -inf
  const std::int64_t row_lo = lo(i), row_hi = hi(i);
  for (std::int64_t l = row_lo; l <= row_hi; ++l) {
    const double e_take = entry(prev_e, i - 1, l - 1, kNegInf);
    e_row[l - row_lo] = log_add_exp(entry(prev_e, i - 1, l, kNegInf), ld + e_take);
    h_row[l - row_lo] = log_add3(entry(prev_h, i - 1, l, kNegInf),
                                 ld + entry(prev_h, i - 1, l - 1, kNegInf), la + e_take);
  }
}

bool StructuredKDPP::build(bool log_space) {
  log_space_ = log_space;
  const double zero = log_space ? kNegInf : 0.0, one = log_space ? 0.0 : 1.0;
  const std::int64_t kept_rows = n_ / stride_ + 1;
  e_.assign(checked_size(kept_rows, width_), zero);
  h_.assign(checked_size(kept_rows, width_), zero);
  // Rows between kept ones alternate between two scratch rows.
  std::vector<double> scratch_e(stride_ > 1 ? checked_size(2, width_) : 0, zero);
  std::vector<double> scratch_h(scratch_e.size(), zero);
  auto row = [&](std::vector<double>& kept, std::vector<double>& scratch, std::int64_t i) {
    return i % stride_ == 0 ? &kept[static_cast<std::size_t>(i / stride_) * width_]
                            : &scratch[static_cast<std::size_t>(i & 1) * width_];
  };
  e_[0] = one;                // E[0][0] = e_0() = 1
  h_[0] = one;                // H[0][0] = det(S_{}) = 1
  std::int64_t exponent = 0;  // scaled form: true row i = stored row i * 2^exponent
  for (std::int64_t i = 1; i <= n_; ++i) {
    if (i % kRowsPerInterruptionPoint == 0) interruption_point();
    const double *prev_e = row(e_, scratch_e, i - 1), *prev_h = row(h_, scratch_h, i - 1);
    double *e_row = row(e_, scratch_e, i), *h_row = row(h_, scratch_h, i);
    if (log_space) {
      log_row(i, prev_e, prev_h, e_row, h_row);
    } else {
      const int shift = scaled_row(i, prev_e, prev_h, e_row, h_row);
      if (shift == kOutOfRange) return false;
      exponent += shift;
    }
  }
  const double last = entry(row(h_, scratch_h, n_), n_, k_, zero);
  if (log_space)
    log_normalizer_ = last;
  else
    log_normalizer_ =
        last > 0.0 ? std::log(last) + static_cast<double>(exponent) * std::log(2.0) : kNegInf;
  return true;
}

void StructuredKDPP::recompute_block(std::int64_t first, std::int64_t count, double* e,
                                     double* h) const {
  std::copy_n(&e_[static_cast<std::size_t>(first / stride_) * width_], width_, e);
  std::copy_n(&h_[static_cast<std::size_t>(first / stride_) * width_], width_, h);
  for (std::int64_t t = 1; t < count; ++t) {
    const std::size_t prev = static_cast<std::size_t>(t - 1) * width_;
    const std::size_t cur = static_cast<std::size_t>(t) * width_;
    if (log_space_) {
      log_row(first + t, e + prev, h + prev, e + cur, h + cur);
    } else {
      // The same arithmetic as in build(), which stayed in range.
      const int shift = scaled_row(first + t, e + prev, h + prev, e + cur, h + cur);
      IPDPP_ASSERT(shift != kOutOfRange);
    }
  }
}

void StructuredKDPP::sample(RandomStream& rng, std::int64_t* out) const {
  const double zero = log_space_ ? kNegInf : 0.0;
  std::vector<double> block_e, block_h;  // checkpointed tables: the block the walk is in
  std::int64_t block_first = -1;
  if (stride_ > 1) {
    block_e.resize(checked_size(stride_, width_));
    block_h.resize(checked_size(stride_, width_));
  }
  std::int64_t l = k_, written = 0;
  bool special_pending = true;  // state H: the item weighted by a_j is still to come
  // The branch weights are the terms of H[i][l] (or E[i][l]); all come from row i - 1, so they
  // share one scale and need no normalisation by the row-i entry.
  for (std::int64_t i = n_; i >= 1 && l > 0; --i) {
    if (i % kRowsPerInterruptionPoint == 0) interruption_point();
    const std::int64_t r = i - 1;
    const double *e_row, *h_row;
    if (stride_ == 1) {
      e_row = &e_[static_cast<std::size_t>(r) * width_];
      h_row = &h_[static_cast<std::size_t>(r) * width_];
    } else {
      const std::int64_t first = r - r % stride_;
      if (first != block_first) {
        recompute_block(first, std::min(stride_, n_ - first + 1), block_e.data(), block_h.data());
        block_first = first;
      }
      e_row = &block_e[static_cast<std::size_t>(r - first) * width_];
      h_row = &block_h[static_cast<std::size_t>(r - first) * width_];
    }
    const double* stay = special_pending ? h_row : e_row;
    const int branches = special_pending ? 3 : 2;
    const double di = d_[r], ai = a_[r];
    double w[3];
    if (!log_space_) {
      w[0] = entry(stay, r, l, zero);
      w[1] = di * entry(stay, r, l - 1, zero);
      w[2] = ai * entry(e_row, r, l - 1, zero);
    } else {
      w[0] = entry(stay, r, l, zero);
      w[1] = std::log(di) + entry(stay, r, l - 1, zero);
      w[2] = std::log(ai) + entry(e_row, r, l - 1, zero);
      const double top = std::max(std::max(w[0], w[1]), branches == 3 ? w[2] : kNegInf);
      for (int b = 0; b < branches; ++b) w[b] = std::exp(w[b] - top);
    }
    const int branch = choose_branch(rng.uniform(), w, branches);
    if (branch == 0) continue;
    out[written++] = r;
    --l;
    if (branch == 2) special_pending = false;
  }
  IPDPP_ASSERT(l == 0 && written == k_);
  std::reverse(out, out + k_);
}

void ipdpp_sample_k(const double* p, std::int64_t n, double alpha, std::int64_t k,
                    std::int64_t num_samples, std::uint64_t seed, std::uint64_t sample_offset,
                    int threads, std::int64_t* out, std::int64_t table_entries_limit) {
  IPDPP_REQUIRE(num_samples >= 0, "num_samples must be >= 0");
  const DiagonalPlusRankOne s = ipdpp_diagonal_rank_one(p, n, alpha);
  const StructuredKDPP sampler(s.d.data(), s.a.data(), n, k, table_entries_limit);
  parallel_for(num_samples, threads, [&](std::int64_t row) {
    RandomStream rng(seed, sample_offset + static_cast<std::uint64_t>(row),
                     RandomPurpose::kStructured);
    sampler.sample(rng, out + row * k);
  });
}

}  // namespace ipdpp

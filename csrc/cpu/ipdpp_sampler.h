// Exact k-DPP sampling for the IP-DPP kernel S = diag(d) + alpha p p^T in
// O(N k) time with no eigendecomposition.
//
// With a_i = alpha p_i^2 the matrix determinant lemma gives (also when some d_i = 0, through
// the adjugate) det(S_A) = prod_A d + sum_{j in A} a_j prod_{A \ j} d: a mixture of the
// elementary-symmetric (product) measure on d and the same measure with one "special" item j
// weighted by a_j instead of d_j. Two dynamic-programming tables over prefixes 1..i,
//   E[i][l] = e_l(d_1..d_i)                       = E[i-1][l] + d_i E[i-1][l-1]
//   H[i][l] = sum_{|A|=l, A ⊆ 1..i} det(S_A)      = H[i-1][l] + d_i H[i-1][l-1] + a_i E[i-1][l-1]
// have only nonnegative terms (no cancellation). A sample walks i = N..1 from (l = k, state H):
// in state H, i is skipped / taken (stay in H) / taken as the special item (switch to E) with
// probabilities proportional to the three terms of H[i][l]; in state E, skipped / taken ∝ the
// two terms of E[i][l]. Every complete walk has probability det(S_A) / H[N][k], i.e. the k-DPP.
//
// Range. e_l(d) reaches ~C(N, l) — C(5000, 500) ~ 1e700 overflows double — and a row of the
// tables can span more than 600 decades, so no single scale per row fits every case. The tables
// are therefore built in one of two representations:
//   - scaled (fast path, plain multiply-adds): row i is stored multiplied by 2^-s_i, with s_i
//     chosen so that the row's largest entry sits near 2^960. The build checks that every entry
//     that is structurally positive (known exactly from the count of positive d_i and of a_j > 0
//     with d_j = 0) stays >= 2^-960, i.e. a normal double with full relative precision; every
//     rounding error is then relative, as in exact arithmetic with 53-bit mantissas. Rows whose
//     range exceeds ~1900 binary orders of magnitude (about 1e570) fail the check.
//   - log space (fallback when the check fails): natural logarithms and log-sum-exp of the
//     nonnegative terms; any finite input works, at the cost of exp/log1p per entry.
// Both give the same probabilities up to rounding; which one ran is visible through
// uses_log_space().
//
// Only the band of states a walk from (N, k) can reach is kept: row i needs l in
// [max(0, k - (N - i)), min(i, k)], at most W = min(k, N - k) + 1 entries, so building costs
// O(N W) time. Memory: while (N + 1) W <= table_entries_limit (default kDefaultTableEntries,
// 2^23 entries = 128 MiB for the two tables; e.g. N = 8,000 with k = 1,000) every row is kept
// and a sample costs O(N). Beyond that only every B-th row is kept (B = ceil(sqrt(N + 1)),
// checkpoints), and a sample recomputes each block of B rows from its checkpoint when its walk
// enters the block: O(sqrt(N) W) memory, O(N W) time per sample — the same arithmetic, so the
// same samples as with the full table.
#pragma once

#include <cstdint>
#include <limits>
#include <vector>

#include "common/philox.h"

namespace ipdpp {

// d_i and a_i of S = diag(d) + alpha p p^T for the IP-DPP kernel of paper Eq. 16:
// d_i = 1 - alpha p_i sum(p), a_i = alpha p_i^2. A d_i that is negative by rounding only (p_i =
// 1, sum(p) = N, alpha = 1/N) is set to 0; a clearly negative d_i means S is not PSD (alpha too
// large) and throws std::invalid_argument.
struct DiagonalPlusRankOne {
  std::vector<double> d;  // [n]
  std::vector<double> a;  // [n]
};
DiagonalPlusRankOne ipdpp_diagonal_rank_one(const double* p, std::int64_t n, double alpha);

// Table entries (per table; 8 bytes each) kept in memory by default, see above.
constexpr std::int64_t kDefaultTableEntries = std::int64_t{1} << 23;

// The tables for one (d, a, k); built once, then shared read-only by every sample.
class StructuredKDPP {
 public:
  // d, a: [n], nonnegative and finite. Throws std::invalid_argument when k > n or when every
  // k-subset has det(S_A) = 0 (k exceeds the rank of S). table_entries_limit <= 0 means
  // kDefaultTableEntries.
  StructuredKDPP(const double* d, const double* a, std::int64_t n, std::int64_t k,
                 std::int64_t table_entries_limit = 0);

  std::int64_t n() const { return n_; }
  std::int64_t k() const { return k_; }
  // Whether the scaled fast path was out of range and the log-space tables were built.
  bool uses_log_space() const { return log_space_; }
  // Rows between kept rows: 1 with the full table, B with checkpoints.
  std::int64_t checkpoint_stride() const { return stride_; }
  // log of sum_{|A| = k} det(S_A) for the (power-of-two normalised) d and a.
  double log_normalizer() const { return log_normalizer_; }

  // Writes one exact k-DPP sample, ascending, to out[0..k). Uses one uniform per position i
  // visited (at most n).
  void sample(RandomStream& rng, std::int64_t* out) const;

 private:
  std::int64_t lo(std::int64_t i) const { return i + k_ > n_ ? i + k_ - n_ : 0; }
  std::int64_t hi(std::int64_t i) const { return i < k_ ? i : k_; }
  // Entry l of row i stored band-relative at `row`; `zero` (0 or -inf) outside the band.
  double entry(const double* row, std::int64_t i, std::int64_t l, double zero) const {
    return l < lo(i) || l > hi(i) ? zero : row[l - lo(i)];
  }
  // Row i of E and H from row i - 1 in the current representation. The scaled form returns
  // the power of two it divided the row by, or kOutOfRange when a positive entry left the
  // safe range.
  int scaled_row(std::int64_t i, const double* prev_e, const double* prev_h, double* e_row,
                 double* h_row) const;
  void log_row(std::int64_t i, const double* prev_e, const double* prev_h, double* e_row,
               double* h_row) const;
  bool build(bool log_space);  // false when the scaled form is out of range
  // Rows first .. first + count - 1 recomputed from the kept row `first` into e/h [count * W].
  void recompute_block(std::int64_t first, std::int64_t count, double* e, double* h) const;

  static constexpr int kOutOfRange = std::numeric_limits<int>::min();

  std::int64_t n_, k_, width_, stride_;
  bool log_space_ = false;
  double log_normalizer_ = 0.0;
  std::vector<double> d_, a_;  // [n], scaled by a common power of two so that max <= 1
  // E[i][l] > 0 exactly when l <= positive_d_[i] (the number of d_j > 0, j <= i); H[i][l] > 0
  // also for l = positive_d_[i] + 1 when extra_h_[i] (some j <= i has d_j = 0 < a_j).
  std::vector<std::int64_t> positive_d_;
  std::vector<char> extra_h_;
  std::vector<double> e_, h_;  // kept rows 0, B, 2B, ...: [(n / B + 1) * W], band-relative
};

// Draws num_samples k-DPP samples of the IP-DPP kernel with parameter p [n] and alpha into out
// [num_samples * k], row s from RandomStream(seed, sample_offset + s, kStructured); the tables
// are built once and the samples spread over `threads` threads (results independent of it).
// table_entries_limit as for StructuredKDPP (0: the default).
void ipdpp_sample_k(const double* p, std::int64_t n, double alpha, std::int64_t k,
                    std::int64_t num_samples, std::uint64_t seed, std::uint64_t sample_offset,
                    int threads, std::int64_t* out, std::int64_t table_entries_limit = 0);

}  // namespace ipdpp

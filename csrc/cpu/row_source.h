// Rows of a low-rank kernel's eigenvectors computed from its features instead of read from a
// stored n x rank matrix. For L = diag(q) B B^T diag(q) with dual Gram B^T diag(q^2) B = U Lambda
// U^T, row i of V is V_i = q_i B_i W with W = U_kept Lambda^{-1/2} (d x rank), so the features and
// W determine every row: a kernel whose eigenvectors do not fit in memory keeps only W (and reads
// B, which may be a memory-mapped file). The rejection sampler reads rows through the two row
// sources below, a template parameter of its inner loop, so the stored path pays nothing for the
// other one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "common/dtype.h"

namespace ipdpp {

// What determines the rows of V without V: the caller's features and quality (not copied; `owner`
// keeps them alive) and W. The features must not change while the spectrum is in use.
struct FeatureBasis {
  const void* features = nullptr;  // B, n x d row-major, `dtype`
  DType dtype = DType::kFloat64;
  std::int64_t n = 0, d = 0, rank = 0;
  const double* quality = nullptr;  // q (n), or null for q = 1
  std::vector<double> w;            // W, d x rank row-major
  std::shared_ptr<const void> owner;
  int threads = 0;  // for the passes over B (the setup's thread count; <= 0: all hardware threads)
};

// Rows per block of the passes over B: 1024 rows of d = 256 doubles is 2 MiB, large enough for
// BLAS-3 efficiency and small enough to stay in cache next to the output block.
constexpr std::int64_t kFeatureRowBlock = 1024;

// Rows [row0, row0 + rows) of diag(q) B as doubles, row-major `rows` x d (a column-major d x rows
// block for BLAS). Returns `features + row0 * d` itself when no conversion is needed, else fills
// `buffer` (at least rows * d) and returns it.
template <class T>
const double* scaled_feature_rows(const T* features, std::int64_t row0, std::int64_t rows,
                                  std::int64_t d, const double* quality, double* buffer);

// V = diag(q) B W, n x rank row-major, into `out`, block by block (one BLAS-3 pass over B).
void form_eigenvectors(const FeatureBasis& basis, double* out);

// While it lives, tells the OS that the features are read at random rows (madvise MADV_RANDOM on
// Linux; nothing elsewhere), then restores the default. A sampler reading rows of a memory-mapped
// file larger than memory otherwise faults in a whole read-ahead window (up to megabytes) around
// every row it reads; in memory (or for a file in the page cache) the hint changes nothing.
class RandomRowsHint {
 public:
  explicit RandomRowsHint(const FeatureBasis* basis);  // null: no hint
  RandomRowsHint(const RandomRowsHint&) = delete;
  RandomRowsHint& operator=(const RandomRowsHint&) = delete;
  ~RandomRowsHint();

 private:
  void* begin_ = nullptr;
  std::size_t bytes_ = 0;
};

// Leverage scores l_i = ||V_i||^2 of every item from one blocked pass over B without V, on
// basis.threads threads: cpu/feature_products.h's leverage_from_features (a triangular product,
// half the multiply-adds of forming V), each score rounded up by its rounding-error bound so that
// it bounds ||V_{i,J}||^2 of the stored and of the computed rows alike.
std::vector<double> leverage_scores(const FeatureBasis& basis);

// sum_j weights_j V_ij^2 for every item (weights: rank values), from one blocked pass over B: the
// diagonal of V diag(weights) V^T, e.g. a DPP's inclusion probabilities.
std::vector<double> weighted_leverage_scores(const FeatureBasis& basis, const double* weights);

// The rows `items` (m of them, in [0, n)) of V = diag(q) B W into out (m x rank, row-major).
void compute_eigenvector_rows(const FeatureBasis& basis, const std::int64_t* items, std::int64_t m,
                              double* out);

// Stored rows: y = V_{i,J} read from the n x rank matrix V, in place when J is every column in
// order, else gathered.
class StoredRows {
 public:
  // One prefetch per gathered element (not per line of the row's span) keeps the memory traffic
  // at what the gather needs when k is much smaller than the rank.
  StoredRows(const double* eigenvectors, std::int64_t rank, const std::int64_t* cols,
             std::int64_t k);
  void prefetch(std::int64_t i) const {
    const double* row = v_ + i * rank_;
    for (std::int64_t c = 0; c < k_; ++c) __builtin_prefetch(row + cols_[c]);
  }
  // Doubles of workspace row() needs.
  std::int64_t scratch_size() const { return k_; }
  // Row i's k coordinates, in `scratch` or in place.
  const double* row(std::int64_t i, double* scratch) const {
    const double* row = v_ + i * rank_;
    if (identity_) return row;
    for (std::int64_t c = 0; c < k_; ++c) scratch[c] = row[cols_[c]];
    return scratch;
  }

 private:
  const double* v_;
  std::int64_t rank_;
  const std::int64_t* cols_;
  std::int64_t k_;
  bool identity_;
};

// Computed rows: y = q_i B_i W_J with the d x k block W_J of the selected columns gathered once per
// sample: d k multiply-adds and one read of B_i (d values) per row. A matrix-vector product is
// bound by reading W_J, so rows are computed kRowBatch at a time, each W_J load serving all of
// them: row(i) for the oldest prefetched item computes it together with the next prefetched ones
// (which the loop reads next; they are proposals of the same fixed stream). Every row gets the
// same arithmetic alone or in a batch, so the batching never changes a value.
// Both row sources provide prefetch(i) (a hint: start loading row i) and row(i, scratch) (y_i, k
// doubles, in `scratch`, which has room for scratch_size() <= k of them, or in place).
constexpr int kRowBatch = 4;

template <class T>
class ComputedRows {
 public:
  ComputedRows(const FeatureBasis& basis, const std::int64_t* cols, std::int64_t k);
  void prefetch(std::int64_t i) const;
  std::int64_t scratch_size() const { return k_; }
  // Row i's k coordinates, in `scratch`. Not thread-safe: one instance per sample.
  const double* row(std::int64_t i, double* scratch) const;

 private:
  static constexpr int kQueue = 64;  // prefetched items not yet computed (the loops keep ~8)
  void compute(int count) const;     // the `count` oldest queued items into batch_

  const T* features_;
  const double* quality_;
  std::int64_t d_, k_;
  std::vector<double> wj_;  // d x k row-major
  mutable std::int64_t queue_[kQueue];
  mutable int queue_head_ = 0, queue_size_ = 0;
  mutable std::int64_t batch_items_[kRowBatch];
  mutable int batch_next_ = 0, batch_count_ = 0;
  mutable std::vector<double> batch_x_, batch_y_;  // kRowBatch x d (B rows), kRowBatch x k
};

}  // namespace ipdpp

#include "cpu/row_source.h"

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "common/dot.h"
#include "common/error.h"
#include "common/interrupt.h"
#include "cpu/feature_products.h"
#include "cpu/hot_loop.h"
#include "cpu/lapack.h"
#include "cpu/spectrum.h"

#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#endif

namespace ipdpp {
namespace {

// The BLAS-3 pass shared by form_eigenvectors and leverage_scores: for each block of rows,
// out_block = X_block W (rows x rank, row-major, leading dimension rank), handed to `use`.
// `out` is the whole n x rank V (the block is written in place) or null (a per-block workspace).
template <class Use>
void for_each_eigenvector_block(const FeatureBasis& basis, double* out, Use&& use) {
  const std::int64_t n = basis.n, d = basis.d, r = basis.rank;
  const std::int64_t block = std::min(kFeatureRowBlock, n);
  std::vector<double> buffer(checked_size(block, d));
  std::vector<double> workspace(out == nullptr ? checked_size(block, r) : 0);
  // W^T as the column-major d x rank matrix BLAS reads: row-major d x rank W is column-major
  // rank x d, i.e. op(A) = A^T.
  dispatch_dtype(basis.dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* features = static_cast<const T*>(basis.features);
    for (std::int64_t row0 = 0; row0 < n; row0 += block) {
      const std::int64_t rows = std::min(block, n - row0);
      interruption_point();
      const double* x = scaled_feature_rows(features, row0, rows, d, basis.quality, buffer.data());
      double* dst = out == nullptr ? workspace.data() : out + row0 * r;
      // V_block^T (rank x rows, column-major) = W^T (rank x d) X_block (d x rows).
      lapack::dgemm('N', 'N', r, rows, d, 1.0, basis.w.data(), r, x, d, 0.0, dst, r);
      use(row0, rows, static_cast<const double*>(dst));
    }
  });
}

// y = x W_J for the R rows of x (R x d) and W_J (d x k), both row-major, into y (R x k). Each
// element is one sum over j in order, whichever column block holds it and whatever R is, so a row
// computed alone and in a batch are the same to the last bit. Per j, two vector loads of W_J serve
// 2 R multiply-adds, with 2 R accumulators in registers.
template <int R>
[[gnu::always_inline]] inline void rows_times_basis(const double* x, const double* wj,
                                                    std::int64_t d, std::int64_t k, double* y) {
  std::int64_t c0 = 0;
#if defined(__GNUC__)
  typedef double Lanes __attribute__((vector_size(32)));
  for (; c0 + 8 <= k; c0 += 8) {
    Lanes a[R][2];
    for (int r = 0; r < R; ++r) a[r][0] = a[r][1] = Lanes{0, 0, 0, 0};
    for (std::int64_t j = 0; j < d; ++j) {
      Lanes w0, w1;
      std::memcpy(&w0, wj + j * k + c0, sizeof(w0));
      std::memcpy(&w1, wj + j * k + c0 + 4, sizeof(w1));
      for (int r = 0; r < R; ++r) {
        const double xj = x[r * d + j];
        const Lanes s = {xj, xj, xj, xj};
        a[r][0] += s * w0;
        a[r][1] += s * w1;
      }
    }
    for (int r = 0; r < R; ++r) {
      std::memcpy(y + r * k + c0, &a[r][0], sizeof(Lanes));
      std::memcpy(y + r * k + c0 + 4, &a[r][1], sizeof(Lanes));
    }
  }
#endif
  for (; c0 < k; ++c0) {
    double a[R];
    for (int r = 0; r < R; ++r) a[r] = 0.0;
    for (std::int64_t j = 0; j < d; ++j)
      for (int r = 0; r < R; ++r) a[r] += x[r * d + j] * wj[j * k + c0];
    for (int r = 0; r < R; ++r) y[r * k + c0] = a[r];
  }
}

IPDPP_HOT void compute_row_batch(const double* x, const double* wj, std::int64_t d, std::int64_t k,
                                 double* y) {
  rows_times_basis<kRowBatch>(x, wj, d, k, y);
}

IPDPP_HOT void compute_one_row(const double* x, const double* wj, std::int64_t d, std::int64_t k,
                               double* y) {
  rows_times_basis<1>(x, wj, d, k, y);
}

}  // namespace

template <class T>
const double* scaled_feature_rows(const T* features, std::int64_t row0, std::int64_t rows,
                                  std::int64_t d, const double* quality, double* buffer) {
  if constexpr (std::is_same_v<T, double>) {
    if (quality == nullptr) return features + row0 * d;
  }
  for (std::int64_t i = 0; i < rows; ++i) {
    const T* src = features + (row0 + i) * d;
    double* dst = buffer + i * d;
    const double qi = quality == nullptr ? 1.0 : quality[row0 + i];
    for (std::int64_t c = 0; c < d; ++c) dst[c] = qi * static_cast<double>(src[c]);
  }
  return buffer;
}

template const double* scaled_feature_rows<float>(const float*, std::int64_t, std::int64_t,
                                                  std::int64_t, const double*, double*);
template const double* scaled_feature_rows<double>(const double*, std::int64_t, std::int64_t,
                                                   std::int64_t, const double*, double*);

void form_eigenvectors(const FeatureBasis& basis, double* out) {
  if (basis.rank == 0) return;
  for_each_eigenvector_block(basis, out, [](std::int64_t, std::int64_t, const double*) {});
}

std::vector<double> leverage_scores(const FeatureBasis& basis) {
  std::vector<double> leverage;
  resize_huge(leverage, static_cast<std::size_t>(basis.n));  // read at random items
  dispatch_dtype(basis.dtype, [&](auto tag) {
    using T = decltype(tag);
    leverage_from_features(static_cast<const T*>(basis.features), basis.n, basis.d, basis.quality,
                           basis.w.data(), basis.rank, basis.threads, leverage.data());
  });
  return leverage;
}

RandomRowsHint::RandomRowsHint(const FeatureBasis* basis) {
#if defined(__linux__) && defined(MADV_RANDOM)
  const long page = sysconf(_SC_PAGESIZE);
  if (page <= 0 || basis == nullptr || basis->features == nullptr) return;
  const auto start = reinterpret_cast<std::uintptr_t>(basis->features);
  const std::uintptr_t end = start + static_cast<std::uintptr_t>(basis->n) *
                                         static_cast<std::uintptr_t>(basis->d) *
                                         dtype_size(basis->dtype);
  const std::uintptr_t first = start & ~(static_cast<std::uintptr_t>(page) - 1);
  begin_ = reinterpret_cast<void*>(first);
  bytes_ = end - first;
  // A failure (memory the hint does not apply to) only leaves the default read-ahead.
  if (madvise(begin_, bytes_, MADV_RANDOM) != 0) bytes_ = 0;
#else
  (void)basis;
#endif
}

RandomRowsHint::~RandomRowsHint() {
#if defined(__linux__) && defined(MADV_NORMAL)
  if (bytes_ != 0) madvise(begin_, bytes_, MADV_NORMAL);
#endif
}

std::vector<double> weighted_leverage_scores(const FeatureBasis& basis, const double* weights) {
  std::vector<double> out(static_cast<std::size_t>(basis.n));
  const std::int64_t r = basis.rank;
  for_each_eigenvector_block(basis, nullptr,
                             [&](std::int64_t row0, std::int64_t rows, const double* block) {
                               for (std::int64_t i = 0; i < rows; ++i) {
                                 const double* v = block + i * r;
                                 double sum = 0.0;
                                 for (std::int64_t c = 0; c < r; ++c)
                                   sum += weights[c] * v[c] * v[c];
                                 out[row0 + i] = sum;
                               }
                             });
  return out;
}

void compute_eigenvector_rows(const FeatureBasis& basis, const std::int64_t* items, std::int64_t m,
                              double* out) {
  const std::int64_t d = basis.d, r = basis.rank;
  std::vector<double> x(static_cast<std::size_t>(d));
  dispatch_dtype(basis.dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* features = static_cast<const T*>(basis.features);
    for (std::int64_t s = 0; s < m; ++s) {
      const std::int64_t i = items[s];
      IPDPP_ASSERT(i >= 0 && i < basis.n);
      for (std::int64_t j = 0; j < d; ++j) x[j] = static_cast<double>(features[i * d + j]);
      double* y = out + s * r;
      compute_one_row(x.data(), basis.w.data(), d, r, y);
      const double qi = basis.quality == nullptr ? 1.0 : basis.quality[i];
      for (std::int64_t c = 0; c < r; ++c) y[c] *= qi;
    }
  });
}

StoredRows::StoredRows(const double* eigenvectors, std::int64_t rank, const std::int64_t* cols,
                       std::int64_t k)
    : v_(eigenvectors), rank_(rank), cols_(cols), k_(k), identity_(k == rank) {
  for (std::int64_t c = 0; identity_ && c < k; ++c) identity_ = (cols[c] == c);
}

template <class T>
ComputedRows<T>::ComputedRows(const FeatureBasis& basis, const std::int64_t* cols, std::int64_t k)
    : features_(static_cast<const T*>(basis.features)),
      quality_(basis.quality),
      d_(basis.d),
      k_(k),
      wj_(checked_size(basis.d, k)),
      batch_x_(checked_size(kRowBatch, basis.d)),
      batch_y_(checked_size(kRowBatch, k)) {
  IPDPP_ASSERT(basis.features != nullptr &&
               basis.dtype == (std::is_same_v<T, float> ? DType::kFloat32 : DType::kFloat64));
  for (std::int64_t j = 0; j < d_; ++j)
    for (std::int64_t c = 0; c < k; ++c) wj_[j * k + c] = basis.w[j * basis.rank + cols[c]];
}

template <class T>
void ComputedRows<T>::prefetch(std::int64_t i) const {
  const T* row = features_ + i * d_;
  for (std::int64_t j = 0; j < d_; j += 64 / static_cast<std::int64_t>(sizeof(T)))
    __builtin_prefetch(row + j);
  if (queue_size_ == kQueue) return;  // not the loops' pattern; row() then computes alone
  queue_[(queue_head_ + queue_size_) % kQueue] = i;
  ++queue_size_;
}

template <class T>
void ComputedRows<T>::compute(int count) const {
  for (int r = 0; r < count; ++r) {
    const std::int64_t item = queue_[queue_head_];
    queue_head_ = (queue_head_ + 1) % kQueue;
    --queue_size_;
    batch_items_[r] = item;
    const T* b = features_ + item * d_;
    for (std::int64_t j = 0; j < d_; ++j) batch_x_[r * d_ + j] = static_cast<double>(b[j]);
  }
  if (count == kRowBatch) {
    compute_row_batch(batch_x_.data(), wj_.data(), d_, k_, batch_y_.data());
  } else {
    for (int r = 0; r < count; ++r)
      compute_one_row(batch_x_.data() + r * d_, wj_.data(), d_, k_, batch_y_.data() + r * k_);
  }
  if (quality_ != nullptr) {
    for (int r = 0; r < count; ++r) {
      const double qi = quality_[batch_items_[r]];
      for (std::int64_t c = 0; c < k_; ++c) batch_y_[r * k_ + c] *= qi;
    }
  }
  batch_next_ = 0;
  batch_count_ = count;
}

template <class T>
const double* ComputedRows<T>::row(std::int64_t i, double* scratch) const {
  if (batch_next_ == batch_count_ && queue_size_ > 0 && queue_[queue_head_] == i)
    compute(queue_size_ < kRowBatch ? queue_size_ : kRowBatch);
  if (batch_next_ == batch_count_ || batch_items_[batch_next_] != i) {
    // Read out of the prefetched order: forget the queue, compute the row alone.
    queue_size_ = 0;
    queue_[queue_head_] = i;
    queue_size_ = 1;
    compute(1);
  }
  const double* y = batch_y_.data() + batch_next_ * k_;
  std::copy(y, y + k_, scratch);
  ++batch_next_;
  return scratch;
}

template class ComputedRows<float>;
template class ComputedRows<double>;

}  // namespace ipdpp

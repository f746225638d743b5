#include "cpu/row_source.h"

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "common/dot.h"
#include "common/error.h"
#include "common/interrupt.h"
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

// y = x W_J for x (d) and W_J (d x k row-major): four-lane accumulators over 16 columns at a time
// stay in registers while the d rows of W_J stream past (the product is bound by reading W_J).
IPDPP_HOT void row_times_basis(const double* x, const double* wj, std::int64_t d, std::int64_t k,
                               double* y) {
#if defined(__GNUC__)
  typedef double Lanes __attribute__((vector_size(32)));
  std::int64_t c0 = 0;
  for (; c0 + 16 <= k; c0 += 16) {
    Lanes a0 = {0, 0, 0, 0}, a1 = a0, a2 = a0, a3 = a0;
    for (std::int64_t j = 0; j < d; ++j) {
      const double xj = x[j];
      const Lanes s = {xj, xj, xj, xj};
      const double* w = wj + j * k + c0;
      Lanes w0, w1, w2, w3;
      std::memcpy(&w0, w, sizeof(w0));
      std::memcpy(&w1, w + 4, sizeof(w1));
      std::memcpy(&w2, w + 8, sizeof(w2));
      std::memcpy(&w3, w + 12, sizeof(w3));
      a0 += s * w0;
      a1 += s * w1;
      a2 += s * w2;
      a3 += s * w3;
    }
    std::memcpy(y + c0, &a0, sizeof(a0));
    std::memcpy(y + c0 + 4, &a1, sizeof(a1));
    std::memcpy(y + c0 + 8, &a2, sizeof(a2));
    std::memcpy(y + c0 + 12, &a3, sizeof(a3));
  }
#else
  std::int64_t c0 = 0;
#endif
  if (c0 == k) return;
  std::fill(y + c0, y + k, 0.0);
  for (std::int64_t j = 0; j < d; ++j) {
    const double xj = x[j];
    const double* w = wj + j * k;
    for (std::int64_t c = c0; c < k; ++c) y[c] += xj * w[c];
  }
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
  const std::int64_t r = basis.rank;
  for_each_eigenvector_block(basis, nullptr,
                             [&](std::int64_t row0, std::int64_t rows, const double* block) {
                               for (std::int64_t i = 0; i < rows; ++i)
                                 leverage[row0 + i] = dot(block + i * r, block + i * r, r);
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
      x_(static_cast<std::size_t>(basis.d)) {
  IPDPP_ASSERT(basis.features != nullptr &&
               basis.dtype == (std::is_same_v<T, float> ? DType::kFloat32 : DType::kFloat64));
  for (std::int64_t j = 0; j < d_; ++j)
    for (std::int64_t c = 0; c < k; ++c) wj_[j * k + c] = basis.w[j * basis.rank + cols[c]];
}

template <class T>
const double* ComputedRows<T>::row(std::int64_t i, double* scratch) const {
  double* x = x_.data();
  const T* b = features_ + i * d_;
  for (std::int64_t j = 0; j < d_; ++j) x[j] = static_cast<double>(b[j]);
  row_times_basis(x, wj_.data(), d_, k_, scratch);
  if (quality_ != nullptr) {
    const double qi = quality_[i];
    for (std::int64_t c = 0; c < k_; ++c) scratch[c] *= qi;
  }
  return scratch;
}

template class ComputedRows<float>;
template class ComputedRows<double>;

}  // namespace ipdpp

#include "cpu/feature_products.h"

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "common/error.h"
#include "common/interrupt.h"
#include "common/parallel.h"
#include "cpu/hot_loop.h"
#include "cpu/lapack.h"

namespace ipdpp {
namespace {

// Rows per task of the Gram's passes: one partial Gram per stripe, summed in stripe order.
constexpr std::int64_t kGramStripeRows = 16384;
// Memory for the partial Grams of the stripes that run at once (their number must not depend on
// the thread count): 16 stripes at d = 256, fewer for larger d.
constexpr std::int64_t kPartialGramBytes = std::int64_t{64} << 20;
// Rows widened to double per dsyrk call when B is float or scaled by q.
constexpr std::int64_t kDoubleGramRows = 1024;
// Rows per triangular product of the leverage pass (1 MiB of float at d = 256), and blocks per
// task.
constexpr std::int64_t kLeverageRows = 1024;
constexpr std::int64_t kLeverageBlocksPerTask = 8;

// Rows [row0, row0 + rows) of diag(q) B in precision U, row-major (a column-major d x rows block).
template <class U, class T>
void scale_rows(const T* features, std::int64_t row0, std::int64_t rows, std::int64_t d,
                const double* quality, U* out) {
  for (std::int64_t i = 0; i < rows; ++i) {
    const T* src = features + (row0 + i) * d;
    U* dst = out + i * d;
    if (quality == nullptr) {
      for (std::int64_t c = 0; c < d; ++c) dst[c] = static_cast<U>(src[c]);
    } else {
      const double qi = quality[row0 + i];
      for (std::int64_t c = 0; c < d; ++c)
        dst[c] = static_cast<U>(qi * static_cast<double>(src[c]));
    }
  }
}

// sum_c x_c^2 in double with 32 independent accumulators in a fixed order: a single sum would
// wait one add latency per term (without -ffast-math the compiler keeps its order); 32 fill
// eight chains of four-double registers.
template <class U>
[[gnu::always_inline]] inline double squared_norm(const U* x, std::int64_t k) {
  constexpr int kLanes = 32;
  double s[kLanes] = {};
  std::int64_t c = 0;
  for (; c + kLanes <= k; c += kLanes)
    for (int l = 0; l < kLanes; ++l)
      s[l] += static_cast<double>(x[c + l]) * static_cast<double>(x[c + l]);
  for (int width = kLanes / 2; width >= 1; width /= 2)  // a fixed pairwise order
    for (int l = 0; l < width; ++l) s[l] += s[l + width];
  double total = s[0];
  for (; c < k; ++c) total += static_cast<double>(x[c]) * static_cast<double>(x[c]);
  return total;
}

// norms[i] = squared_norm of the first k entries of row i of x (leading dimension ld), i < rows.
// Vectorised (IPDPP_HOT): compiled for the baseline ISA alone, the leverage pass's two norm
// passes took about half as long as its triangular product.
IPDPP_HOT void row_squared_norms(const float* x, std::int64_t rows, std::int64_t ld, std::int64_t k,
                                 double* norms) {
  for (std::int64_t i = 0; i < rows; ++i) norms[i] = squared_norm(x + i * ld, k);
}

IPDPP_HOT void row_squared_norms(const double* x, std::int64_t rows, std::int64_t ld,
                                 std::int64_t k, double* norms) {
  for (std::int64_t i = 0; i < rows; ++i) norms[i] = squared_norm(x + i * ld, k);
}

// Lower triangle of B_s^T diag(q^2) B_s for the rows of one stripe, into `partial` (d x d).
template <class T>
void stripe_gram(const T* features, std::int64_t row0, std::int64_t row1, std::int64_t d,
                 const double* quality, bool float_products, double* partial) {
  std::fill(partial, partial + d * d, 0.0);
  if (float_products) {
    if constexpr (std::is_same_v<T, float>) {
      std::vector<float> block(checked_size(d, d));
      std::vector<float> scaled(quality ? checked_size(kFloatGramRows, d) : 0);
      for (std::int64_t r = row0; r < row1; r += kFloatGramRows) {
        const std::int64_t rows = std::min(kFloatGramRows, row1 - r);
        interruption_point();
        const float* x = features + r * d;
        if (quality != nullptr) {
          scale_rows(features, r, rows, d, quality, scaled.data());
          x = scaled.data();
        }
        lapack::ssyrk('L', 'N', d, rows, 1.0f, x, d, 0.0f, block.data(), d);
        for (std::int64_t j = 0; j < d; ++j)
          for (std::int64_t i = j; i < d; ++i) partial[i + j * d] += block[i + j * d];
      }
      return;
    }
  }
  // Double features without q are read in place; either way the same dsyrk calls on the same
  // blocks, so that q folded into the features gives the same bits as q passed separately.
  const bool convert = !std::is_same_v<T, double> || quality != nullptr;
  std::vector<double> widened(convert ? checked_size(std::min(kDoubleGramRows, row1 - row0), d)
                                      : 0);
  for (std::int64_t r = row0; r < row1; r += kDoubleGramRows) {
    const std::int64_t rows = std::min(kDoubleGramRows, row1 - r);
    interruption_point();
    const double* x = widened.data();
    if constexpr (std::is_same_v<T, double>) {
      if (!convert) x = features + r * d;
    }
    if (convert) scale_rows(features, r, rows, d, quality, widened.data());
    lapack::dsyrk('L', 'N', d, rows, 1.0, x, d, 1.0, partial, d);
  }
}

// The rows [row0, row1) of the leverage pass in precision U; r is the rank x d trapezoid R.
template <class U, class T>
void leverage_rows(const T* features, std::int64_t row0, std::int64_t row1, std::int64_t d,
                   const double* quality, const U* r, std::int64_t rank, double margin,
                   double* out) {
  const std::int64_t block = std::min(kLeverageRows, row1 - row0);
  constexpr bool in_place = std::is_same_v<T, U>;
  std::vector<U> converted(in_place && quality == nullptr ? 0 : checked_size(block, d));
  std::vector<U> product(checked_size(block, d));
  std::vector<double> x2(checked_size(block, 1)), norm2(checked_size(block, 1));
  const double grow = 1.0 + 4.0 * unit_roundoff<double>();  // the squaring and sums below
  for (std::int64_t r0 = row0; r0 < row1; r0 += block) {
    const std::int64_t rows = std::min(block, row1 - r0);
    interruption_point();
    const U* x = nullptr;
    if constexpr (in_place) {
      if (quality == nullptr) x = features + r0 * d;
    }
    if (x == nullptr) {
      scale_rows(features, r0, rows, d, quality, converted.data());
      x = converted.data();
    }
    // Y = R X: the triangle on a copy of X's first `rank` rows, then the tail's GEMM reading X.
    // The norms of the features' rows (without q) from the copy while it is in the cache, when
    // it is a copy of them.
    std::copy(x, x + rows * d, product.data());
    if (in_place && quality == nullptr)
      row_squared_norms(product.data(), rows, d, d, x2.data());
    else
      row_squared_norms(features + r0 * d, rows, d, d, x2.data());
    lapack::trmm('L', 'U', 'N', 'N', rank, rows, U{1}, r, rank, product.data(), d);
    if (rank < d)
      lapack::gemm('N', 'N', rank, rows, d - rank, U{1}, r + rank * rank, rank, x + rank, d, U{1},
                   product.data(), d);
    row_squared_norms(product.data(), rows, d, rank, norm2.data());
    for (std::int64_t i = 0; i < rows; ++i) {
      const double qi = quality == nullptr ? 1.0 : std::abs(quality[r0 + i]);
      const double root = std::sqrt(norm2[i]) + margin * qi * std::sqrt(x2[i]);
      out[r0 + i] = root * root * grow;
    }
  }
}

}  // namespace

template <class T>
DualGram dual_gram(const T* features, std::int64_t n, std::int64_t d, const double* quality,
                   bool in_double, int threads) {
  IPDPP_ASSERT(n >= 1 && d >= 1);
  const bool float_products = std::is_same_v<T, float> && !in_double;
  DualGram g;
  g.d = d;
  g.c.assign(checked_size(d, d), 0.0);
  const std::int64_t stripes = (n + kGramStripeRows - 1) / kGramStripeRows;
  const std::int64_t per_round = std::clamp<std::int64_t>(
      kPartialGramBytes / static_cast<std::int64_t>(checked_size(d, d, sizeof(double))), 1, 16);
  std::vector<std::vector<double>> partial(static_cast<std::size_t>(std::min(per_round, stripes)));
  for (auto& p : partial) p.resize(checked_size(d, d));
  lapack::SingleThreadedBlas single_threaded;
  for (std::int64_t first = 0; first < stripes; first += per_round) {
    const std::int64_t count = std::min(per_round, stripes - first);
    parallel_for(count, threads, [&](std::int64_t s) {
      const std::int64_t row0 = (first + s) * kGramStripeRows;
      const std::int64_t row1 = std::min(n, row0 + kGramStripeRows);
      stripe_gram(features, row0, row1, d, quality, float_products, partial[s].data());
    });
    for (std::int64_t s = 0; s < count; ++s)  // in stripe order: the sum is thread-independent
      for (std::int64_t j = 0; j < d; ++j)
        for (std::int64_t i = j; i < d; ++i) g.c[i + j * d] += partial[s][i + j * d];
  }
  for (std::int64_t j = 0; j < d; ++j) g.trace += g.c[j + j * d];
  const double u64 = unit_roundoff<double>();
  if (float_products) {
    const double blocks = static_cast<double>((n + kFloatGramRows - 1) / kFloatGramRows);
    g.error_bound = (rounding_gamma(kFloatGramRows + 2, unit_roundoff<float>()) +
                     rounding_gamma(blocks + 1, u64)) *
                    g.trace * (1.0 + 4.0 * u64);
  } else {
    g.error_bound = rounding_gamma(static_cast<double>(n) + 2, u64) * g.trace;
  }
  return g;
}

bool float_gram_is_accurate(const DualGram& gram, double w_min) {
  return w_min > 8.0 * gram.error_bound;
}

template <class T>
void dual_gram_eigen(const T* features, std::int64_t n, std::int64_t d, const double* quality,
                     int threads, std::vector<double>& u, std::vector<double>& w) {
  w.assign(checked_size(d, 1), 0.0);
  for (bool in_double = !std::is_same_v<T, float>;; in_double = true) {
    DualGram gram = dual_gram(features, n, d, quality, in_double, threads);
    bool finite = true;
    for (std::int64_t j = 0; j < d; ++j)  // the lower triangle, which is all dsyevd reads
      for (std::int64_t i = j; i < d; ++i) finite = finite && std::isfinite(gram.c[i + j * d]);
    if (finite) {
      lapack::dsyevd(d, gram.c.data(), w.data());  // gram.c now holds U
      if (in_double || float_gram_is_accurate(gram, w[0])) {
        u = std::move(gram.c);
        return;
      }
    } else {
      // Float products overflow before double ones do: retry in double before giving up.
      IPDPP_REQUIRE(!in_double,
                    "features (times quality) are too large: B^T diag(q^2) B overflows float64");
    }
  }
}

template <class T>
void leverage_from_features(const T* features, std::int64_t n, std::int64_t d,
                            const double* quality, const double* w, std::int64_t rank, int threads,
                            double* out) {
  IPDPP_ASSERT(n >= 0 && d >= 1 && rank >= 0 && rank <= d);
  if (rank == 0) {
    std::fill(out, out + n, 0.0);
    return;
  }
  // W (d x rank, row-major) is W^T column-major (rank x d, leading dimension rank).
  std::vector<double> r(w, w + checked_size(d, rank));
  double w_frobenius2 = 0.0, min_column2 = 0.0;
  for (std::int64_t c = 0; c < rank; ++c) {
    double column2 = 0.0;
    for (std::int64_t i = 0; i < d; ++i) column2 += w[i * rank + c] * w[i * rank + c];
    w_frobenius2 += column2;
    min_column2 = c == 0 ? column2 : std::min(min_column2, column2);
  }
  lapack::dgeqrf(rank, d, r.data());
  for (std::int64_t j = 0; j < rank; ++j)  // below the diagonal: reflectors, not R
    for (std::int64_t i = j + 1; i < rank; ++i) r[i + j * rank] = 0.0;
  // The columns of W are orthogonal, so ||W^+||_2 is 1 / (its shortest column).
  const double kappa = std::sqrt(w_frobenius2 / min_column2);
  const bool in_float = rounding_gamma(d + 4, unit_roundoff<float>()) * kappa <= 0x1p-7;
  const double u = in_float ? unit_roundoff<float>() : unit_roundoff<double>();
  const double margin =
      (rounding_gamma(d + 4, u) + rounding_gamma(4.0 * d * d, unit_roundoff<double>())) *
      std::sqrt(w_frobenius2);

  auto run = [&](auto precision) {
    using U = decltype(precision);
    std::vector<U> factor(r.begin(), r.end());
    const std::int64_t task_rows = kLeverageRows * kLeverageBlocksPerTask;
    const std::int64_t tasks = (n + task_rows - 1) / task_rows;
    lapack::SingleThreadedBlas single_threaded;
    parallel_for(tasks, threads, [&](std::int64_t t) {
      const std::int64_t row0 = t * task_rows;
      leverage_rows<U>(features, row0, std::min(n, row0 + task_rows), d, quality, factor.data(),
                       rank, margin, out);
    });
  };
  if (in_float)
    run(float{});
  else
    run(double{});
}

template DualGram dual_gram<float>(const float*, std::int64_t, std::int64_t, const double*, bool,
                                   int);
template DualGram dual_gram<double>(const double*, std::int64_t, std::int64_t, const double*, bool,
                                    int);
template void dual_gram_eigen<float>(const float*, std::int64_t, std::int64_t, const double*, int,
                                     std::vector<double>&, std::vector<double>&);
template void dual_gram_eigen<double>(const double*, std::int64_t, std::int64_t, const double*, int,
                                      std::vector<double>&, std::vector<double>&);
template void leverage_from_features<float>(const float*, std::int64_t, std::int64_t, const double*,
                                            const double*, std::int64_t, int, double*);
template void leverage_from_features<double>(const double*, std::int64_t, std::int64_t,
                                             const double*, const double*, std::int64_t, int,
                                             double*);

}  // namespace ipdpp

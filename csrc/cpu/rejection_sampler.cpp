#include "cpu/rejection_sampler.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "common/alias_table.h"
#include "common/dot.h"
#include "common/error.h"
#include "common/parallel.h"
#include "cpu/hot_loop.h"
#include "cpu/rejection_loop.h"
#include "cpu/row_source.h"

namespace ipdpp {
namespace {

// x rounded to float32, then to bfloat16 (the top 16 bits of a float32), both to nearest even;
// |result - x| <= (2^-8 + 2^-24 + 2^-32) |x| (OrthonormalBasis::screen_margin). |x| <= 1 here.
std::uint16_t to_bfloat16(double x) {
  const float f = static_cast<float>(x);
  std::uint32_t bits;
  std::memcpy(&bits, &f, sizeof(bits));
  bits += 0x7FFFu + ((bits >> 16) & 1u);
  return static_cast<std::uint16_t>(bits >> 16);
}

float from_bfloat16(std::uint16_t h) {
  const std::uint32_t bits = static_cast<std::uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

}  // namespace

LeverageProposal build_leverage_proposal(const Spectrum& spectrum) {
  IPDPP_ASSERT(spectrum.rank > 0);
  LeverageProposal p;
  // From the features when the spectrum has them (whether or not V is stored, so that both
  // storages propose alike), else from the rows of V.
  if (spectrum.basis != nullptr) {
    p.leverage = leverage_scores(*spectrum.basis);
  } else {
    resize_huge(p.leverage, static_cast<std::size_t>(spectrum.n));
    const std::int64_t r = spectrum.rank;
    for (std::int64_t i = 0; i < spectrum.n; ++i) {
      const double* row = spectrum.eigenvectors.data() + i * r;
      p.leverage[i] = dot(row, row, r);
    }
  }
  // Read at random buckets, like V.
  resize_huge(p.keep, static_cast<std::size_t>(spectrum.n));
  resize_huge(p.alias, static_cast<std::size_t>(spectrum.n));
  build_alias_table(p.leverage.data(), spectrum.n, p.keep.data(), p.alias.data());
  return p;
}

std::vector<std::uint16_t> round_eigenvectors_to_bfloat16(const Spectrum& spectrum) {
  IPDPP_ASSERT(spectrum.has_eigenvectors());
  std::vector<std::uint16_t> v16;  // read at random rows, like V
  resize_huge(v16, checked_size(spectrum.n, spectrum.rank));
  const double* v = spectrum.eigenvectors.data();
  for (std::size_t j = 0, size = v16.size(); j < size; ++j) v16[j] = to_bfloat16(v[j]);
  return v16;
}

ColumnProposal build_column_proposal(const Spectrum& spectrum, int threads) {
  IPDPP_ASSERT(spectrum.has_eigenvectors() && spectrum.rank > 0);
  IPDPP_REQUIRE(spectrum.n < (std::int64_t{1} << 32),
                "method='columns' supports kernels of fewer than 2^32 items; got n = " +
                    std::to_string(spectrum.n));
  const std::int64_t n = spectrum.n, rank = spectrum.rank;
  ColumnProposal p;
  p.n = n;
  resize_huge(p.keep, checked_size(rank, n));  // read at random slots, like V
  resize_huge(p.alias, checked_size(rank, n));
  // Columns in blocks of 8, so that one pass over the rows of V reads each of its lines once.
  constexpr std::int64_t kBlock = 8;
  const double* v = spectrum.eigenvectors.data();
  parallel_for((rank + kBlock - 1) / kBlock, threads, [&](std::int64_t block) {
    const std::int64_t j0 = block * kBlock, width = std::min(kBlock, rank - j0);
    std::vector<double> weights(checked_size(width, n));
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t c = 0; c < width; ++c) {
        const double x = v[i * rank + j0 + c];
        weights[static_cast<std::size_t>(c * n + i)] = x * x;
      }
    for (std::int64_t c = 0; c < width; ++c) {
      const std::size_t at = static_cast<std::size_t>((j0 + c) * n);
      build_alias_table(weights.data() + c * n, n, p.keep.data() + at, p.alias.data() + at);
    }
  });
  return p;
}

namespace {

// The screen gives up when its margin is this large a fraction of a leverage score (k in the
// tens of thousands): it would then reject almost nothing.
constexpr double kMaxScreenMargin = 0.05;

// Stored rows with their bfloat16 rounding read first (LeverageProposal::eigenvectors_bf16).
class ScreenedRows {
 public:
  ScreenedRows(const Spectrum& spectrum, const std::uint16_t* eigenvectors_bf16,
               const std::int64_t* cols, std::int64_t k)
      : stored_(spectrum.eigenvectors.data(), spectrum.rank, cols, k),
        v16_(eigenvectors_bf16),
        rank_(spectrum.rank),
        cols_(cols),
        k_(k) {}

  // One prefetch per gathered element, as StoredRows: measured faster than one per distinct
  // cache line, though both name the same lines (the repeated touches seem to help the
  // hardware prefetchers follow the row).
  void prefetch(std::int64_t i) const {
    const std::uint16_t* row = v16_ + i * rank_;
    for (std::int64_t c = 0; c < k_; ++c) __builtin_prefetch(row + cols_[c]);
  }
  std::int64_t scratch_size() const { return stored_.scratch_size(); }
  // Row i's k coordinates rounded to bfloat16, widened to float32 into `scratch` [k].
  const float* screen_row(std::int64_t i, float* scratch) const {
    const std::uint16_t* row = v16_ + i * rank_;
    for (std::int64_t c = 0; c < k_; ++c) scratch[c] = from_bfloat16(row[cols_[c]]);
    return scratch;
  }
  // The float64 row, read only for the proposals the screen lets through.
  const double* row(std::int64_t i, double* scratch) const { return stored_.row(i, scratch); }

 private:
  StoredRows stored_;
  const std::uint16_t* v16_;
  std::int64_t rank_;
  const std::int64_t* cols_;
  std::int64_t k_;
};

// Distinct 64-byte lines holding elements `cols` of the first row of `rows`.
std::size_t lines_read(const void* rows, std::size_t element_bytes, const std::int64_t* cols,
                       std::int64_t k) {
  std::size_t count = 0, last = ~std::size_t{0};
  const auto base = reinterpret_cast<std::uintptr_t>(rows);
  for (std::int64_t c = 0; c < k; ++c) {
    const std::size_t line = (base + static_cast<std::size_t>(cols[c]) * element_bytes) / 64;
    count += line != last;
    last = line;
  }
  return count;
}

// Whether the screen pays: the proposals it lets through read their float64 row without a
// prefetch, so its rows must at least halve the lines a proposal reads, which holds when the
// gather touches most lines of a row (k = 100 of 256 columns: 9 lines instead of 32) and not for
// sparse ones (k = 10 of 256: about 8 instead of 9); and its margin must be small enough to reject.
bool screen_pays(const Spectrum& spectrum, const std::uint16_t* screen, const std::int64_t* cols,
                 std::int64_t k) {
  if (screen == nullptr) return false;
  if (OrthonormalBasis::screen_margin(k, k) > kMaxScreenMargin) return false;
  const std::size_t lines64 = lines_read(spectrum.eigenvectors.data(), sizeof(double), cols, k);
  const std::size_t lines16 = lines_read(screen, sizeof(std::uint16_t), cols, k);
  return 2 * lines16 <= lines64;
}

// The loops, one clone per instruction set (cpu/hot_loop.h) and per proposal.
template <class Proposer>
void rejection_from_stored(const Spectrum& spectrum, const std::uint16_t* screen,
                           const Proposer& proposer, const std::int64_t* cols, std::int64_t k,
                           RandomStream& rng, std::int64_t* out) {
  if (screen_pays(spectrum, screen, cols, k)) {
    const ScreenedRows rows(spectrum, screen, cols, k);
    return project_rejection_rows(rows, proposer, spectrum.rank, k, rng, out);
  }
  const StoredRows rows(spectrum.eigenvectors.data(), spectrum.rank, cols, k);
  project_rejection_rows(rows, proposer, spectrum.rank, k, rng, out);
}

IPDPP_HOT void rejection_leverage(const Spectrum& spectrum, const std::uint16_t* screen,
                                  const LeverageProposer& proposer, const std::int64_t* cols,
                                  std::int64_t k, RandomStream& rng, std::int64_t* out) {
  rejection_from_stored(spectrum, screen, proposer, cols, k, rng, out);
}

IPDPP_HOT void rejection_columns(const Spectrum& spectrum, const std::uint16_t* screen,
                                 const ColumnProposer& proposer, const std::int64_t* cols,
                                 std::int64_t k, RandomStream& rng, std::int64_t* out) {
  rejection_from_stored(spectrum, screen, proposer, cols, k, rng, out);
}

template <class T>
void rejection_computed(const Spectrum& spectrum, const LeverageProposal& proposal,
                        const std::int64_t* cols, std::int64_t k, RandomStream& rng,
                        std::int64_t* out) {
  const ComputedRows<T> rows(*spectrum.basis, cols, k);
  project_rejection_rows(rows, LeverageProposer(proposal), spectrum.rank, k, rng, out);
}

}  // namespace

void project_rejection(const Spectrum& spectrum, const RejectionTables& tables,
                       const std::int64_t* cols, std::int64_t k, RandomStream& rng,
                       std::int64_t* out) {
  if (k == 0) return;
  if (tables.columns != nullptr) {
    IPDPP_ASSERT(spectrum.has_eigenvectors());
    const ColumnProposer proposer(*tables.columns, cols, k);
    return rejection_columns(spectrum, tables.screen, proposer, cols, k, rng, out);
  }
  IPDPP_ASSERT(tables.leverage != nullptr);
  if (spectrum.has_eigenvectors()) {
    const LeverageProposer proposer(*tables.leverage);
    return rejection_leverage(spectrum, tables.screen, proposer, cols, k, rng, out);
  }
  IPDPP_ASSERT(spectrum.basis != nullptr);
  dispatch_dtype(spectrum.basis->dtype, [&](auto tag) {
    rejection_computed<decltype(tag)>(spectrum, *tables.leverage, cols, k, rng, out);
  });
}

}  // namespace ipdpp

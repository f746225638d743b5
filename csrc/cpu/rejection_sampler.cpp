#include "cpu/rejection_sampler.h"

#include <vector>

#include "common/alias_table.h"
#include "common/dot.h"
#include "common/error.h"
#include "cpu/hot_loop.h"
#include "cpu/rejection_loop.h"
#include "cpu/row_source.h"

namespace ipdpp {

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

namespace {

IPDPP_HOT void rejection_stored(const Spectrum& spectrum, const LeverageProposal& proposal,
                                const std::int64_t* cols, std::int64_t k, RandomStream& rng,
                                std::int64_t* out) {
  const StoredRows rows(spectrum.eigenvectors.data(), spectrum.rank, cols, k);
  project_rejection_rows(rows, proposal, spectrum.rank, k, rng, out);
}

template <class T>
void rejection_computed(const Spectrum& spectrum, const LeverageProposal& proposal,
                        const std::int64_t* cols, std::int64_t k, RandomStream& rng,
                        std::int64_t* out) {
  const ComputedRows<T> rows(*spectrum.basis, cols, k);
  project_rejection_rows(rows, proposal, spectrum.rank, k, rng, out);
}

}  // namespace

void project_rejection(const Spectrum& spectrum, const LeverageProposal& proposal,
                       const std::int64_t* cols, std::int64_t k, RandomStream& rng,
                       std::int64_t* out) {
  if (k == 0) return;
  if (spectrum.has_eigenvectors()) return rejection_stored(spectrum, proposal, cols, k, rng, out);
  IPDPP_ASSERT(spectrum.basis != nullptr);
  dispatch_dtype(spectrum.basis->dtype, [&](auto tag) {
    rejection_computed<decltype(tag)>(spectrum, proposal, cols, k, rng, out);
  });
}

}  // namespace ipdpp

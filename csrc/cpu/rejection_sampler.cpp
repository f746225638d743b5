#include "cpu/rejection_sampler.h"

#include <vector>

#include "common/alias_table.h"
#include "common/dot.h"
#include "common/error.h"
#include "common/interrupt.h"
#include "common/rejection_bound.h"
#include "cpu/hot_loop.h"
#include "cpu/projection_sampler.h"
#include "cpu/row_source.h"

namespace ipdpp {
namespace {

// Proposals of the rejection phase drawn ahead of use, so that their rows are prefetched in
// time: a gather costs ~100 ns of work, a DRAM miss about as much, 8 in flight hide it.
constexpr int kLookahead = 8;

}  // namespace

LeverageProposal build_leverage_proposal(const Spectrum& spectrum) {
  IPDPP_ASSERT(spectrum.rank > 0);
  LeverageProposal p;
  if (spectrum.has_eigenvectors()) {
    resize_huge(p.leverage, static_cast<std::size_t>(spectrum.n));
    const std::int64_t r = spectrum.rank;
    for (std::int64_t i = 0; i < spectrum.n; ++i) {
      const double* row = spectrum.eigenvectors.data() + i * r;
      p.leverage[i] = dot(row, row, r);
    }
  } else {
    p.leverage = leverage_scores(*spectrum.basis);
  }
  // Read at random buckets, like V.
  resize_huge(p.keep, static_cast<std::size_t>(spectrum.n));
  resize_huge(p.alias, static_cast<std::size_t>(spectrum.n));
  build_alias_table(p.leverage.data(), spectrum.n, p.keep.data(), p.alias.data());
  return p;
}

namespace {

// The rejection phase reading the rows V_{i,J} through `rows` (cpu/row_source.h): stored rows of V,
// or rows computed from the features. Inlined into one instantiation per row source.
template <class Rows>
[[gnu::always_inline]] inline void rejection_phase(const Rows& rows, std::int64_t n, std::int64_t r,
                                                   const LeverageProposal& proposal, std::int64_t k,
                                                   RandomStream& rng, std::int64_t* out) {
  const double* leverage = proposal.leverage.data();
  std::vector<double> basis(checked_size(k, k)), coef(static_cast<std::size_t>(k)),
      scratch(static_cast<std::size_t>(rows.scratch_size()));

  // Proposals form a fixed stream (three uniforms each) whatever gets accepted, so they are drawn
  // kLookahead ahead of use and the cache lines their row reads are prefetched (Rows::prefetch):
  // V (or B) is usually far larger than the caches, and reads from random rows otherwise wait on
  // DRAM.
  struct Pending {
    std::int64_t item;
    double u_accept;
  };
  Pending pending[kLookahead];
  auto draw = [&]() {
    const double u_bucket = rng.uniform();
    const double u_coin = rng.uniform();
    const std::int64_t i =
        alias_draw(proposal.keep.data(), proposal.alias.data(), n, u_bucket, u_coin);
    rows.prefetch(i);
    __builtin_prefetch(leverage + i);
    return Pending{i, rng.uniform()};
  };
  for (auto& p : pending) p = draw();
  int head = 0;

  for (std::int64_t t = 0; t < k; ++t) {
    interruption_point();
    std::int64_t item = -1;
    const double* y = nullptr;
    const std::int64_t max_proposals = max_step_proposals(r, k, t);
    for (std::int64_t proposals = 0; item < 0; ++proposals) {
      IPDPP_ASSERT(proposals < max_proposals);
      const Pending p = pending[head];
      pending[head] = draw();
      head = head + 1 == kLookahead ? 0 : head + 1;
      const std::int64_t i = p.item;
      // Accept with probability residual_i / leverage_i using one uniform: u * leverage_i must
      // fall below the residual. The residual only shrinks as directions are projected out, so
      // each partial value is an upper bound and the test can reject as soon as one falls below.
      const double threshold = p.u_accept * leverage[i];
      y = rows.row(i, scratch.data());
      double left = dot(y, y, k);  // ||V_{i,J}||^2 <= leverage_i: the first, O(k) test
      bool accepted = left > threshold;
      for (std::int64_t s = 0; accepted && s < t; ++s) {
        coef[s] = dot(y, basis.data() + s * k, k);
        left -= coef[s] * coef[s];
        accepted = left > threshold;
      }
      // A chosen item's residual is zero in exact arithmetic; rounding may leave ~1e-16 of it.
      for (std::int64_t s = 0; accepted && s < t; ++s) accepted = (out[s] != i);
      if (accepted) item = i;
    }
    out[t] = item;
    if (t + 1 < k) orthonormal_direction(y, coef.data(), basis.data(), t, k, basis.data() + t * k);
  }
}

IPDPP_HOT void rejection_stored(const Spectrum& spectrum, const LeverageProposal& proposal,
                                const std::int64_t* cols, std::int64_t k, RandomStream& rng,
                                std::int64_t* out) {
  const StoredRows rows(spectrum.eigenvectors.data(), spectrum.rank, cols, k);
  rejection_phase(rows, spectrum.n, spectrum.rank, proposal, k, rng, out);
}

template <class T>
void rejection_computed(const Spectrum& spectrum, const LeverageProposal& proposal,
                        const std::int64_t* cols, std::int64_t k, RandomStream& rng,
                        std::int64_t* out) {
  const ComputedRows<T> rows(*spectrum.basis, cols, k);
  rejection_phase(rows, spectrum.n, spectrum.rank, proposal, k, rng, out);
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

// The rejection projection phase's loop over proposals, for any source of the rows
// y_i = V_{i,J} it reads at random: the stored eigenvectors or rows computed from the features
// (cpu/row_source.h: prefetch(i), scratch_size(), row(i, scratch)). cpu/rejection_sampler.h has
// the phase's contract.
#pragma once

#include <cstdint>
#include <type_traits>
#include <vector>

#include "common/alias_table.h"
#include "common/error.h"
#include "common/interrupt.h"
#include "common/philox.h"
#include "common/rejection_bound.h"
#include "cpu/orthonormal_basis.h"
#include "cpu/rejection_sampler.h"

namespace ipdpp {

// Row sources that also give each row rounded to bfloat16 and widened to float32
// (screen_row(i, float* scratch), room for k floats) have most proposals rejected from that row by
// OrthonormalBasis::screen_may_exceed, with exactly the float64 test's decisions; their
// prefetch(i) loads the rounded row, and the float64 row is read only when the screen passes.
template <class Rows, class = void>
struct HasScreenRows : std::false_type {};
template <class Rows>
struct HasScreenRows<Rows, std::void_t<decltype(&Rows::screen_row)>> : std::true_type {};

// Proposals are drawn ahead of use in two stages, so that each random read is prefetched in
// time: a proposal's alias bucket kBucketAhead + kRowAhead proposals before it is tested, its
// row kRowAhead before. A gather costs ~100 ns of work, a DRAM miss about as much: 8 in flight
// hide it.
constexpr int kRowAhead = 8;
constexpr int kBucketAhead = 8;

template <class Rows>
void project_rejection_rows(const Rows& rows, const LeverageProposal& proposal, std::int64_t rank,
                            std::int64_t k, RandomStream& rng, std::int64_t* out) {
  if (k == 0) return;
  const auto n = static_cast<std::int64_t>(proposal.leverage.size());
  const double* leverage = proposal.leverage.data();
  const double* keep = proposal.keep.data();
  const std::int64_t* alias = proposal.alias.data();
  OrthonormalBasis basis(k, k - 1);
  std::vector<double> scratch(static_cast<std::size_t>(rows.scratch_size())),
      coef(static_cast<std::size_t>(basis.coefficient_capacity()));
  std::vector<float> scratch32(HasScreenRows<Rows>::value ? static_cast<std::size_t>(k) : 0);

  // Proposals form a fixed stream (three uniforms each: bucket, coin, acceptance) whatever gets
  // accepted; ring[head ..] holds the next kAhead of them in order, the first kRowAhead with
  // their item resolved and its row prefetched, the others with their bucket prefetched.
  constexpr int kAhead = kRowAhead + kBucketAhead;
  struct Pending {
    std::int64_t bucket, item;
    double u_coin, u_accept;
  };
  Pending ring[kAhead];
  auto draw = [&](Pending& p) {
    const double u_bucket = rng.uniform();
    p.u_coin = rng.uniform();
    p.u_accept = rng.uniform();
    p.bucket = alias_bucket(n, u_bucket);
    __builtin_prefetch(keep + p.bucket);
    __builtin_prefetch(alias + p.bucket);
  };
  auto resolve = [&](Pending& p) {
    p.item = p.u_coin < keep[p.bucket] ? p.bucket : alias[p.bucket];
    rows.prefetch(p.item);
    __builtin_prefetch(leverage + p.item);
  };
  for (auto& p : ring) draw(p);
  for (int j = 0; j < kRowAhead; ++j) resolve(ring[j]);
  int head = 0;

  for (std::int64_t t = 0; t < k; ++t) {
    interruption_point();
    std::int64_t item = -1;
    const double* y = nullptr;
    const std::int64_t max_proposals = max_step_proposals(rank, k, t);
    for (std::int64_t proposals = 0; item < 0; ++proposals) {
      IPDPP_ASSERT(proposals < max_proposals);
      const Pending p = ring[head];
      draw(ring[head]);
      head = head + 1 == kAhead ? 0 : head + 1;
      resolve(ring[(head + kRowAhead - 1) % kAhead]);
      const std::int64_t i = p.item;
      // Accept with probability residual_i / leverage_i using one uniform: u * leverage_i must
      // fall below the squared residual of y_i against the chosen rows' span.
      const double threshold = p.u_accept * leverage[i];
      if constexpr (HasScreenRows<Rows>::value) {
        const float* y_hat = rows.screen_row(i, scratch32.data());
        if (!basis.screen_may_exceed(y_hat, threshold)) continue;
      }
      y = rows.row(i, scratch.data());
      bool accepted = basis.residual_exceeds(y, threshold, coef.data());
      // A chosen item's residual is zero in exact arithmetic; rounding may leave ~1e-16 of it.
      for (std::int64_t s = 0; accepted && s < t; ++s) accepted = (out[s] != i);
      if (accepted) item = i;
    }
    out[t] = item;
    if (t + 1 < k) basis.append(y, coef.data());
  }
}

}  // namespace ipdpp

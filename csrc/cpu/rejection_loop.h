// The rejection projection phase's loop over proposals, for any source of the rows
// y_i = V_{i,J} it reads at random (the stored eigenvectors or rows computed from the features:
// cpu/row_source.h, prefetch(i), scratch_size(), row(i, scratch)) and either proposal
// (cpu/rejection_sampler.h has the phase's contract).
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

// A proposal drawn ahead of its test: its alias-table slot, then its item; the uniforms of its
// acceptance test.
struct PendingProposal {
  std::int64_t slot, offset, item, column;
  double u_coin, u_accept;
};

// Items with probability l_i / rank from the leverage scores' alias table; the acceptance
// threshold of item i is u l_i. Three uniforms a proposal: bucket, coin, acceptance.
class LeverageProposer {
 public:
  explicit LeverageProposer(const LeverageProposal& p)
      : n_(static_cast<std::int64_t>(p.leverage.size())),
        leverage_(p.leverage.data()),
        keep_(p.keep.data()),
        alias_(p.alias.data()) {}
  void draw(PendingProposal& p, RandomStream& rng) const {
    p.slot = alias_bucket(n_, rng.uniform());
    p.offset = p.column = 0;
    p.u_coin = rng.uniform();
    p.u_accept = rng.uniform();
    __builtin_prefetch(keep_ + p.slot);
    __builtin_prefetch(alias_ + p.slot);
  }
  void resolve(PendingProposal& p) const {
    p.item = p.u_coin < keep_[p.slot] ? p.slot : alias_[p.slot];
    __builtin_prefetch(leverage_ + p.item);
  }
  // The test is residual_i > absolute + relative ||y_i||^2.
  double absolute(const PendingProposal& p) const { return p.u_accept * leverage_[p.item]; }
  static double relative(const PendingProposal&) { return 0.0; }
  // Whether the proposal stands, given its row y: always.
  static bool stands(const PendingProposal&, const double*) { return true; }

 private:
  std::int64_t n_;
  const double *leverage_, *keep_;
  const std::int64_t* alias_;
};

// Items with probability ||V_{i,J}||^2 / k: a uniform column of J, then its table; the threshold
// of item i is u ||y_i||^2. Four uniforms a proposal: column, bucket, coin, acceptance.
class ColumnProposer {
 public:
  ColumnProposer(const ColumnProposal& p, const std::int64_t* cols, std::int64_t k)
      : n_(p.n), k_(k), cols_(cols), keep_(p.keep.data()), alias_(p.alias.data()) {}
  void draw(PendingProposal& p, RandomStream& rng) const {
    p.column = alias_bucket(k_, rng.uniform());
    p.offset = cols_[p.column] * n_;
    p.slot = p.offset + alias_bucket(n_, rng.uniform());
    p.u_coin = rng.uniform();
    p.u_accept = rng.uniform();
    __builtin_prefetch(keep_ + p.slot);
    __builtin_prefetch(alias_ + p.slot);
  }
  void resolve(PendingProposal& p) const {
    p.item = p.u_coin < keep_[p.slot] ? p.slot - p.offset : alias_[p.slot];
  }
  static double absolute(const PendingProposal&) { return 0.0; }
  static double relative(const PendingProposal& p) { return p.u_accept; }
  // A column's table may propose an item of zero weight V_ij^2 (a leftover bucket of Vose's
  // method, kept by rounding): such a proposal is dropped, since its item's acceptance ratio
  // counts the other columns' weights. The weights are the products of the same stored values.
  static bool stands(const PendingProposal& p, const double* y) {
    return y[p.column] * y[p.column] != 0.0;
  }

 private:
  std::int64_t n_, k_;
  const std::int64_t* cols_;
  const double* keep_;
  const std::uint32_t* alias_;
};

// Proposals are drawn ahead of use in two stages, so that each random read is prefetched in
// time: a proposal's alias slot kBucketAhead + kRowAhead proposals before it is tested, its
// row kRowAhead before. A gather costs ~100 ns of work, a DRAM miss about as much: 8 in flight
// hide it.
constexpr int kRowAhead = 8;
constexpr int kBucketAhead = 8;

template <class Rows, class Proposer>
void project_rejection_rows(const Rows& rows, const Proposer& proposer, std::int64_t rank,
                            std::int64_t k, RandomStream& rng, std::int64_t* out) {
  if (k == 0) return;
  OrthonormalBasis basis(k, k - 1);
  std::vector<double> scratch(static_cast<std::size_t>(rows.scratch_size())),
      coef(static_cast<std::size_t>(basis.coefficient_capacity()));
  std::vector<float> scratch32(HasScreenRows<Rows>::value ? static_cast<std::size_t>(k) : 0);

  // Proposals form a fixed stream (the proposer's uniforms) whatever gets accepted;
  // ring[head ..] holds the next kAhead of them in order, the first kRowAhead with their item
  // resolved and its row prefetched, the others with their slot prefetched.
  constexpr int kAhead = kRowAhead + kBucketAhead;
  PendingProposal ring[kAhead];
  auto resolve = [&](PendingProposal& p) {
    proposer.resolve(p);
    rows.prefetch(p.item);
  };
  for (auto& p : ring) proposer.draw(p, rng);
  for (int j = 0; j < kRowAhead; ++j) resolve(ring[j]);
  int head = 0;

  for (std::int64_t t = 0; t < k; ++t) {
    interruption_point();
    std::int64_t item = -1;
    const double* y = nullptr;
    const std::int64_t max_proposals = max_step_proposals(rank, k, t);
    for (std::int64_t proposals = 0; item < 0; ++proposals) {
      IPDPP_ASSERT(proposals < max_proposals);
      const PendingProposal p = ring[head];
      proposer.draw(ring[head], rng);
      head = head + 1 == kAhead ? 0 : head + 1;
      resolve(ring[(head + kRowAhead - 1) % kAhead]);
      const std::int64_t i = p.item;
      // Accept with probability residual_i / weight_i using one uniform: u * weight_i must fall
      // below the squared residual of y_i against the chosen rows' span.
      const double absolute = proposer.absolute(p), relative = proposer.relative(p);
      if constexpr (HasScreenRows<Rows>::value) {
        const float* y_hat = rows.screen_row(i, scratch32.data());
        if (!basis.screen_may_exceed(y_hat, absolute, relative)) continue;
      }
      y = rows.row(i, scratch.data());
      if (!proposer.stands(p, y)) continue;
      bool accepted = basis.residual_exceeds(y, absolute, relative, coef.data());
      // A chosen item's residual is zero in exact arithmetic; rounding may leave ~1e-16 of it.
      for (std::int64_t s = 0; accepted && s < t; ++s) accepted = (out[s] != i);
      if (accepted) item = i;
    }
    out[t] = item;
    if (t + 1 < k) basis.append(y, coef.data());
  }
}

}  // namespace ipdpp

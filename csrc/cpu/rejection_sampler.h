// The rejection projection phase on the CPU (Barthelmé, Tremblay & Amblard, AISTATS 2023; the GPU
// twin is cuda/rejection_sampler.cu): propose items from a distribution that dominates every
// step's (the leverage scores of the full eigenbasis, or the norms of the rows of the selected
// columns), accept with the ratio of the item's current residual to its proposal weight;
// per-sample cost independent of n.
#pragma once

#include <cstdint>
#include <vector>

#include "common/philox.h"
#include "cpu/spectrum.h"

namespace ipdpp {

// Proposal of method "rejection": leverage scores l_i = ||V_i||^2 of the full eigenbasis (they
// sum to the rank) and their alias table (common/alias_table.h). One table serves every
// eigenvector subset J, because ||V_{i,J}||^2 <= l_i; step t of a k-sample then takes
// rank / (k - t) proposals on average.
struct LeverageProposal {
  std::vector<double> leverage;
  std::vector<double> keep;
  std::vector<std::int64_t> alias;
};
LeverageProposal build_leverage_proposal(const Spectrum& spectrum);

// Proposal of method "columns": one alias table per eigenvector column j over the weights V_ij^2
// (which sum to 1). A sample on the columns J proposes a uniform column of J, then an item from
// its table: item i with probability ||V_{i,J}||^2 / k, accepted with residual_i /
// ||V_{i,J}||^2, so that step t takes k / (k - t) proposals on average, rank / k times fewer
// than from the leverage scores, for 12 n rank bytes of tables. Needs the stored eigenvectors.
struct ColumnProposal {
  std::int64_t n = 0;
  std::vector<double> keep;          // rank x n: column j's table at j * n
  std::vector<std::uint32_t> alias;  // rank x n
};
// Throws std::invalid_argument when n >= 2^32 (the tables' 32-bit aliases).
ColumnProposal build_column_proposal(const Spectrum& spectrum, int threads);

// V rounded to bfloat16 (n x rank bit patterns, a quarter of V's memory), which the phase reads
// first when the eigenvectors are stored: most proposals are rejected from it with a rigorous
// rounding margin (OrthonormalBasis::screen_may_exceed) and only the others read their float64
// row, so the random reads, V's cost once it is larger than the caches, move a quarter of the
// bytes while every decision stays the float64 one.
std::vector<std::uint16_t> round_eigenvectors_to_bfloat16(const Spectrum& spectrum);

// What a rejection call proposes from and screens with: `columns` when not null, else `leverage`;
// `screen` (V in bfloat16) may be null.
struct RejectionTables {
  const LeverageProposal* leverage = nullptr;
  const ColumnProposal* columns = nullptr;
  const std::uint16_t* screen = nullptr;
};

// Rejection projection phase on the columns `cols` of V; writes the k sampled items to `out` in
// selection order. Throws InternalError when the acceptance bound (common/rejection_bound.h) is
// exceeded: V's columns are then not orthonormal.
void project_rejection(const Spectrum& spectrum, const RejectionTables& tables,
                       const std::int64_t* cols, std::int64_t k, RandomStream& rng,
                       std::int64_t* out);

}  // namespace ipdpp

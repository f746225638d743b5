// The rejection projection phase on the CPU (Barthelmé, Tremblay & Amblard, AISTATS 2023; the GPU
// twin is cuda/rejection_sampler.cu): propose items from the leverage scores of the full
// eigenbasis with an alias table built once per spectrum, accept with the ratio of the item's
// current residual to its leverage; per-sample cost independent of n.
#pragma once

#include <cstdint>
#include <vector>

#include "common/philox.h"
#include "cpu/spectrum.h"

namespace ipdpp {

// Proposal of the rejection phase: leverage scores l_i = ||V_i||^2 of the full eigenbasis (they
// sum to the rank) and their alias table (common/alias_table.h). One table serves every
// eigenvector subset J, because ||V_{i,J}||^2 <= l_i.
// With stored eigenvectors it also keeps V rounded to bfloat16 (n x rank, a quarter of V's
// memory), which the phase reads first: most proposals are rejected from it with a rigorous
// rounding margin (OrthonormalBasis::screen_may_exceed) and only the others read their float64
// row, so the random reads, V's cost once it is larger than the caches, move a quarter of the
// bytes while every decision stays the float64 one.
struct LeverageProposal {
  std::vector<double> leverage;
  std::vector<double> keep;
  std::vector<std::int64_t> alias;
  std::vector<std::uint16_t> eigenvectors_bf16;  // n x rank bit patterns; empty: V not stored
};
LeverageProposal build_leverage_proposal(const Spectrum& spectrum);

// Rejection projection phase on the columns `cols` of V, proposing from `proposal` (built from the
// same spectrum); writes the k sampled items to `out` in selection order. Throws InternalError
// when the acceptance bound (common/rejection_bound.h) is exceeded: V's columns are then not
// orthonormal.
void project_rejection(const Spectrum& spectrum, const LeverageProposal& proposal,
                       const std::int64_t* cols, std::int64_t k, RandomStream& rng,
                       std::int64_t* out);

}  // namespace ipdpp

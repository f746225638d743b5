// When the rejection phase gives up (both backends). At step t of a sample with k selected
// eigenvectors out of `rank`, a proposal drawn from the leverage scores (which sum to the rank)
// is accepted with probability exactly sum_i r_i / rank = (k - t) / rank, since the residuals of
// an orthonormal V_J sum to k - t. The number of proposals of the step is geometric, so more than
// m = kRejectionBoundFactor * ceil(rank / (k - t)) of them has probability (1 - p)^m <= e^-64
// (about 1e-28): reaching the bound means the residuals are numerically zero (V without
// orthonormal columns), never bad luck. Summed over the steps the bound is a small multiple of
// the expected rank * H_k proposals.
#pragma once

#include <cstdint>

#include "common/host_device.h"

namespace ipdpp {

constexpr std::int64_t kRejectionBoundFactor = 64;

// Most proposals step t (0 <= t < k <= rank) may take before the sampler reports a breakdown.
IPDPP_HD std::int64_t max_step_proposals(std::int64_t rank, std::int64_t k, std::int64_t t) {
  const std::int64_t left = k - t;
  return kRejectionBoundFactor * ((rank + left - 1) / left);
}

}  // namespace ipdpp

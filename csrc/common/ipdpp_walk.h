// The per-item arithmetic of the structured IP-DPP k-DPP sampler that the CPU
// (csrc/cpu/ipdpp_sampler.cpp) and the GPU (csrc/cuda/ipdpp_sampler.cu) share, so that both
// compute the same table entries and take the same branch for the same uniform.
//
// Header-only and free of the standard library's containers and algorithms so that CUDA kernels
// can include it (IPDPP_HD).
#pragma once

#include <cmath>
#include <cstdint>

#include "common/log_space.h"
#include "common/philox.h"

namespace ipdpp::ipdpp_walk {

// alpha p_i P is computed to a few ulps; a diagonal entry d_i = 1 - alpha p_i P below zero by
// less than this many ulps of alpha p_i P is rounding of an exact zero (p_i = 1 and P = N with
// alpha = 1/N); anything more means S is not PSD.
constexpr double kRoundingUlps = 64.0;
constexpr double kDoubleEpsilon = 2.220446049250313e-16;  // std::numeric_limits<double>::epsilon

// Index of the branch chosen by u in [0, 1) among weights w[0..count) (not all zero); never
// returns a branch of weight zero, even when rounding puts u * sum at the very end.
IPDPP_HD int choose_branch(double u, const double* w, int count) {
  double total = 0.0;
  for (int b = 0; b < count; ++b) total += w[b];
  const double target = u * total;
  double running = 0.0;
  int last_positive = 0;
  for (int b = 0; b < count; ++b) {
    if (w[b] <= 0.0) continue;
    last_positive = b;
    running += w[b];
    if (target < running) return b;
  }
  return last_positive;
}

// The diagonal entry d_i = 1 - alpha p_i P of S = diag(d) + alpha p p^T (P = sum of p), clamped
// at 0 when it is negative by rounding only. Returns false when it is negative beyond rounding
// (alpha too large for S to be PSD); *d is then 0 as well.
IPDPP_HD bool diagonal_entry(double p_i, double alpha, double total, double* d) {
  const double off = alpha * p_i * total;
  const double value = 1.0 - off;
  *d = value < 0.0 ? 0.0 : value;
  return !(value < 0.0 && -value > kRoundingUlps * kDoubleEpsilon * off);
}

}  // namespace ipdpp::ipdpp_walk

// Arithmetic on natural logarithms of non-negative numbers, shared by the ESP tables
// (common/esp.h) and the structured IP-DPP sampler (common/ipdpp_walk.h). -inf is log 0.
#pragma once

#include <cmath>

#include "common/host_device.h"

namespace ipdpp {

// log 0. A macro constant rather than std::numeric_limits so that device code needs no
// relaxed-constexpr flag.
#define IPDPP_LOG_ZERO (-HUGE_VAL)

// exp(-40) ~ 4e-18 is below half an ulp of 1, so a term that far below the largest one cannot
// change a double sum; skipping its exp() saves time without changing any result.
constexpr double kNegligibleLogRatio = -40.0;

// log(exp(x) + exp(y)) for x, y in [-inf, inf). Exact when either side is log 0 (or negligible):
// it returns the other one bit for bit, which the ESP backward pass relies on to make forced
// choices have probability exactly 1.
IPDPP_HD double log_add_exp(double x, double y) {
  if (x < y) {
    const double t = x;
    x = y;
    y = t;
  }
  const double diff = y - x;  // NaN only when both are -inf
  if (!(diff > kNegligibleLogRatio)) return x;
  return x + std::log1p(std::exp(diff));
}

}  // namespace ipdpp

// The IP-DPP kernel's alpha for a ground set (or class) of n items, the one rule every caller
// uses: alpha = alpha_value when alpha_value > 0, else n^-alpha_power (power 1: the paper's 1/N,
// 2: the released code's 1/N^2).
#pragma once

#include <cmath>
#include <cstdint>
#include <string>

#include "common/error.h"

namespace ipdpp {

// Throws std::invalid_argument when neither parameter is positive or n < 1.
inline double ipdpp_alpha(double alpha_power, double alpha_value, std::int64_t n) {
  IPDPP_REQUIRE(alpha_value > 0.0 || alpha_power > 0.0,
                "alpha must be 'paper', 'code' or a float > 0");
  if (alpha_value > 0.0) {
    IPDPP_REQUIRE(std::isfinite(alpha_value), "alpha must be a finite number > 0");
    return alpha_value;
  }
  IPDPP_REQUIRE(std::isfinite(alpha_power), "alpha_power must be finite");
  IPDPP_REQUIRE(n >= 1, "the IP-DPP alpha needs n >= 1 items; got n = " + std::to_string(n));
  return std::pow(static_cast<double>(n), -alpha_power);
}

}  // namespace ipdpp

// The two reasons an IP-DPP kernel S = diag(1 - alpha p_i sum(p)) + alpha p p^T cannot give a
// k-DPP sample, worded once for both backends (std::invalid_argument, i.e. ValueError).
#pragma once

#include <cstdint>
#include <sstream>
#include <string>

namespace ipdpp {

// alpha * p_i * sum(p) exceeds 1 beyond rounding for some i: S is not PSD. `reach` is the largest
// alpha * p_i * sum(p).
inline std::string alpha_too_large_message(double alpha, double reach) {
  std::ostringstream message;
  message << "alpha = " << alpha << " is too large: the IP-DPP kernel needs alpha * p_i * "
          << "sum(p) <= 1 for every i (S = diag(1 - alpha p_i sum(p)) + alpha p p^T must "
          << "be PSD); here it reaches " << reach;
  return message.str();
}

// Every k-subset has det(S_A) = 0.
inline std::string rank_below_k_message(std::int64_t k) {
  return "k = " + std::to_string(k) +
         " exceeds the rank of the IP-DPP kernel (every k-subset has det(S_A) = 0; p_i = 1 for "
         "every item makes S rank one with alpha = 1/N: clip p below 1, e.g. to 1 - 1e-6)";
}

}  // namespace ipdpp

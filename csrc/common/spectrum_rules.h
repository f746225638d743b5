// The rules both backends apply to a computed eigendecomposition (host side, on the eigenvalues
// in ascending order): the PSD check of a dense kernel and the relative rank cut-off.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <sstream>
#include <stdexcept>

namespace ipdpp {

// Index of the first eigenvalue of w[0..m) (ascending) that is kept: those > rtol * max are;
// none when the largest is not positive (a zero kernel).
inline std::int64_t first_kept(const double* w, std::int64_t m, double rtol) {
  if (m == 0 || !(w[m - 1] > 0.0)) return m;
  const double cutoff = rtol * w[m - 1];
  return static_cast<std::int64_t>(std::upper_bound(w, w + m, cutoff) - w);
}

// A PSD matrix's computed eigenvalues are >= -c m eps max|lambda|; by default the relative
// tolerance that decides the rank separates that rounding from a negative eigenvalue. Throws
// std::invalid_argument naming `name` when w[0] < -psd_rtol * max|w| (w ascending, m >= 1).
inline void check_positive_semidefinite(const double* w, std::int64_t m, double psd_rtol,
                                        const char* name) {
  const double scale = std::max(std::abs(w[0]), std::abs(w[m - 1]));
  if (w[0] < -psd_rtol * scale) {
    std::ostringstream msg;
    msg << name << " must be positive semidefinite; its smallest eigenvalue is " << w[0]
        << " (tolerance " << psd_rtol << " * max |eigenvalue| = " << psd_rtol * scale << ")";
    throw std::invalid_argument(msg.str());
  }
}

// The symmetry rule of a dense kernel L (n x n): |L_ij - L_ji| <= symmetry_rtol * max |L| for
// every pair. Both backends look for the first pair (i < j, row-major order) that breaks it and
// report it with this message.
inline std::invalid_argument not_symmetric_error(std::int64_t i, std::int64_t j, double gap,
                                                 double symmetry_rtol, double tolerance) {
  std::ostringstream msg;
  msg << "L must be symmetric; |L[" << i << ", " << j << "] - L[" << j << ", " << i
      << "]| = " << gap << " exceeds " << symmetry_rtol << " * max |L| = " << tolerance;
  return std::invalid_argument(msg.str());
}

constexpr const char* kNonFiniteKernelMessage = "L must not contain NaN or Inf";

}  // namespace ipdpp

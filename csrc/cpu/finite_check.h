// Whether an array holds no NaN or +-Inf, in one pass over its bits: the input check of the
// features, which at n = 1e6, d = 256 (1 GB of float) costs as much as a few percent of the
// setup when numpy's min and max each read them.
#pragma once

#include <cstdint>

namespace ipdpp {

// Whether none of x[0 .. n) is NaN or +-Inf. Interruptible between blocks of rows.
bool all_finite(const float* x, std::int64_t n);
bool all_finite(const double* x, std::int64_t n);

}  // namespace ipdpp

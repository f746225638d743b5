// The sequential projection phase of spectral DPP / k-DPP sampling on the CPU (the GPU twin is
// cuda/projection_sampler.cu): one pass over the selected columns of V per step, O(n k^2) per
// sample. The rejection alternative is cpu/rejection_sampler.h; cpu/spectral_sampler.h ties
// selection and projection together.
#pragma once

#include <cstdint>

#include "common/philox.h"
#include "cpu/spectrum.h"

namespace ipdpp {

// Sequential projection phase on the columns `cols` (k of them, any order) of V: writes the k
// sampled items to `out` in selection order.
void project_sequential(const Spectrum& spectrum, const std::int64_t* cols, std::int64_t k,
                        RandomStream& rng, std::int64_t* out);

}  // namespace ipdpp

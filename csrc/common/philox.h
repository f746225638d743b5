// Philox4x32-10 (Salmon et al., SC'11): a counter-based generator, so the random numbers of
// sample s, purpose p, draw i are a pure function of (seed, s, p, i). Results therefore do not
// depend on thread count or on the order in which samples are processed, and the CUDA kernels
// draw the very same stream.
#pragma once

#include <cmath>
#include <cstdint>

#include "common/host_device.h"

namespace ipdpp {

struct Philox4x32 {
  std::uint32_t v[4];
};

IPDPP_HD Philox4x32 philox4x32_10(Philox4x32 ctr, std::uint32_t k0, std::uint32_t k1) {
  constexpr std::uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr std::uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    const std::uint64_t p0 = static_cast<std::uint64_t>(kM0) * ctr.v[0];
    const std::uint64_t p1 = static_cast<std::uint64_t>(kM1) * ctr.v[2];
    const std::uint32_t hi0 = static_cast<std::uint32_t>(p0 >> 32),
                        lo0 = static_cast<std::uint32_t>(p0);
    const std::uint32_t hi1 = static_cast<std::uint32_t>(p1 >> 32),
                        lo1 = static_cast<std::uint32_t>(p1);
    ctr = Philox4x32{{hi1 ^ ctr.v[1] ^ k0, lo1, hi0 ^ ctr.v[3] ^ k1, lo0}};
    k0 += kW0;
    k1 += kW1;
  }
  return ctr;
}

// Uniform in the open interval (0, 1) from 64 random bits (53 used).
IPDPP_HD double bits_to_open_unit(std::uint32_t hi, std::uint32_t lo) {
  const std::uint64_t x = (static_cast<std::uint64_t>(hi) << 32) | lo;
  return (static_cast<double>(x >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

// Purposes keep the streams used by different phases of one sample independent.
enum class RandomPurpose : std::uint32_t {
  kEigenSelection = 1,
  kSequential = 2,
  kRejection = 3,
  kStructured = 4,
  kBalanced = 5,
  kPaperAlgorithm = 6,
};

// The stream of uniforms for (seed, sample, purpose); two doubles per Philox block.
class RandomStream {
 public:
  IPDPP_HD RandomStream(std::uint64_t seed, std::uint64_t sample, RandomPurpose purpose)
      : k0_(static_cast<std::uint32_t>(seed)),
        k1_(static_cast<std::uint32_t>(seed >> 32)),
        sample_lo_(static_cast<std::uint32_t>(sample)),
        sample_hi_(static_cast<std::uint32_t>(sample >> 32) ^
                   (static_cast<std::uint32_t>(purpose) << 24)) {}

  // The i-th pair of uniforms of this stream, without touching the running position.
  IPDPP_HD void uniform_pair_at(std::uint32_t block, double* u0, double* u1) const {
    const Philox4x32 r =
        philox4x32_10(Philox4x32{{sample_lo_, sample_hi_, block, 0x1D99u}}, k0_, k1_);
    *u0 = bits_to_open_unit(r.v[0], r.v[1]);
    *u1 = bits_to_open_unit(r.v[2], r.v[3]);
  }

  IPDPP_HD double uniform() {
    if (!has_spare_) {
      uniform_pair_at(block_++, &cached_, &spare_);
      has_spare_ = true;
      return cached_;
    }
    has_spare_ = false;
    return spare_;
  }

  // Exp(1) variate; used by exponential races (argmin E_i / w_i selects i with prob ∝ w_i).
  IPDPP_HD double exponential() { return -std::log(uniform()); }

 private:
  std::uint32_t k0_, k1_, sample_lo_, sample_hi_;
  std::uint32_t block_ = 0;
  bool has_spare_ = false;
  double cached_ = 0.0, spare_ = 0.0;
};

}  // namespace ipdpp

// Exact DPP / k-DPP sampling from a Spectrum on the CPU: eigenvector selection (Bernoulli for a
// DPP, ESP backward pass for a k-DPP; cpu/select_eigenvectors.h), then the projection phase,
// sequential (cpu/projection_sampler.h) or rejection (cpu/rejection_sampler.h). Both phases draw
// the same eigenvector set for the same (seed, sample); each sample has its own Philox streams,
// so batches and thread counts never change a result. The GPU twin is cuda/spectral_sampler.h.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "common/esp_cache.h"
#include "common/sampling_method.h"
#include "cpu/rejection_sampler.h"
#include "cpu/spectrum.h"

namespace ipdpp {

// A spectrum with the tables its samplers reuse across calls (the leverage proposal, ESP tables
// per k), built lazily and thread-safely. This is the object behind ipdpp._core.Spectrum.
class SpectralSampler {
 public:
  explicit SpectralSampler(Spectrum spectrum);
  SpectralSampler(const SpectralSampler&) = delete;
  SpectralSampler& operator=(const SpectralSampler&) = delete;

  const Spectrum& spectrum() const { return spectrum_; }

  // num_samples k-DPP samples; sample i uses the streams of sample number sample_offset + i and
  // is written, sorted ascending, to out[i * k .. i * k + k). Throws std::invalid_argument for
  // k < 0 or k > rank.
  void sample_k(std::int64_t k, std::int64_t num_samples, std::uint64_t seed,
                std::uint64_t sample_offset, ProjectionMethod method, int threads,
                std::int64_t* out) const;

  // num_samples DPP samples, each sorted ascending.
  std::vector<std::vector<std::int64_t>> sample_dpp(std::int64_t num_samples, std::uint64_t seed,
                                                    std::uint64_t sample_offset,
                                                    ProjectionMethod method, int threads) const;

 private:
  const LeverageProposal& proposal() const;
  // Projection phase for one sample whose selected eigenvector columns are `cols`.
  void project(const std::int64_t* cols, std::int64_t k, std::uint64_t seed, std::uint64_t sample,
               ProjectionMethod method, std::int64_t* out) const;

  Spectrum spectrum_;
  std::vector<double> log_eigenvalues_;
  mutable std::once_flag proposal_once_;
  mutable std::unique_ptr<LeverageProposal> proposal_;
  EspTableCache<> esp_tables_;
};

}  // namespace ipdpp

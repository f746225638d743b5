// Exact DPP / k-DPP sampling from a Spectrum (DESIGN §2): eigenvector selection (Bernoulli for a
// DPP, ESP backward pass for a k-DPP), then the projection phase, either
//   - sequential: one pass over the selected columns of V per step, O(n k^2) per sample; or
//   - rejection (Barthelmé, Tremblay & Amblard, AISTATS 2023): propose items from the leverage
//     scores of the full eigenbasis with an alias table built once per spectrum, accept with the
//     ratio of the item's current residual to its leverage; per-sample cost independent of n.
// Both phases draw the same eigenvector set for the same (seed, sample); each sample has its own
// Philox streams, so batches and thread counts never change a result.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/philox.h"
#include "cpu/spectrum.h"

namespace ipdpp {

enum class ProjectionMethod { kAuto, kSequential, kRejection };

// Parses "auto" | "sequential" | "rejection"; throws std::invalid_argument naming `method`.
ProjectionMethod parse_projection_method(const std::string& method);

// The documented `method="auto"` rule for one sample with k selected eigenvectors out of `rank`
// over n items (see projection_sampler.cpp for the measured cost model).
ProjectionMethod choose_projection_method(std::int64_t n, std::int64_t rank, std::int64_t k);

// Walker/Vose alias table: O(n) build, O(1) draws from weights w_i / sum(w).
class AliasTable {
 public:
  AliasTable() = default;
  explicit AliasTable(const std::vector<double>& weights);
  // Item for two independent uniforms in (0, 1).
  std::int64_t draw(double u_bucket, double u_coin) const {
    auto bucket = static_cast<std::int64_t>(u_bucket * static_cast<double>(size_));
    if (bucket >= size_) bucket = size_ - 1;
    return u_coin < keep_[bucket] ? bucket : alias_[bucket];
  }
  std::int64_t size() const { return size_; }

 private:
  std::int64_t size_ = 0;
  std::vector<double> keep_;          // probability of keeping the bucket's own item
  std::vector<std::int64_t> alias_;   // the other item of the bucket
};

// Proposal of the rejection phase: leverage scores l_i = ||V_i||^2 of the full eigenbasis (they sum
// to the rank) and their alias table. One table serves every eigenvector subset J, because
// ||V_{i,J}||^2 <= l_i.
struct LeverageProposal {
  std::vector<double> leverage;
  AliasTable table;
};
LeverageProposal build_leverage_proposal(const Spectrum& spectrum);

// Sequential projection phase on the columns `cols` (k of them, any order) of V: writes the k
// sampled items to `out` in selection order.
void project_sequential(const Spectrum& spectrum, const std::int64_t* cols, std::int64_t k,
                        RandomStream& rng, std::int64_t* out);

// Rejection projection phase on the columns `cols` of V, proposing from `proposal` (built from the
// same spectrum); writes the k sampled items to `out` in selection order.
void project_rejection(const Spectrum& spectrum, const LeverageProposal& proposal,
                       const std::int64_t* cols, std::int64_t k, RandomStream& rng,
                       std::int64_t* out);

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
  std::shared_ptr<const std::vector<double>> esp_table(std::int64_t k) const;
  // Projection phase for one sample whose selected eigenvector columns are `cols`.
  void project(const std::int64_t* cols, std::int64_t k, std::uint64_t seed, std::uint64_t sample,
               ProjectionMethod method, std::int64_t* out) const;

  Spectrum spectrum_;
  std::vector<double> log_eigenvalues_;
  mutable std::once_flag proposal_once_;
  mutable std::unique_ptr<LeverageProposal> proposal_;
  mutable std::mutex esp_mutex_;
  mutable std::map<std::int64_t, std::shared_ptr<const std::vector<double>>> esp_tables_;
};

}  // namespace ipdpp

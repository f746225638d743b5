// Exact DPP / k-DPP sampling from a Spectrum on the CPU: eigenvector selection (Bernoulli for a
// DPP, ESP backward pass for a k-DPP; cpu/select_eigenvectors.h), then the projection phase,
// sequential (cpu/projection_sampler.h) or rejection (cpu/rejection_sampler.h). Both phases draw
// the same eigenvector set for the same (seed, sample); each sample has its own Philox streams,
// so batches and thread counts never change a result. The GPU twin is cuda/spectral_sampler.h.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "common/esp_cache.h"
#include "common/sampling_method.h"
#include "cpu/rejection_sampler.h"
#include "cpu/spectrum.h"

namespace ipdpp {

// Where the rows of the eigenvectors V (n x rank) come from.
//   kStored:   V is stored, formed at its first use when the spectrum came without it.
//   kOnDemand: V is never formed; the rejection sampler computes the rows it reads from the
//              features (cpu/row_source.h), the leverage scores come from one pass over them, and
//              the extra memory is O(n) (the leverage scores and their alias table). The
//              sequential sampler, which reads whole columns of V at every step, is unavailable.
enum class EigenvectorStorage { kStored, kOnDemand };

// The storage of the eigenvectors of n x rank within a budget of `budget` bytes (< 0: no limit):
// stored when they fit in it with the rejection sampler's bfloat16 copy of them
// (round_eigenvectors_to_bfloat16), 8 + 2 bytes per entry.
inline EigenvectorStorage choose_eigenvector_storage(std::int64_t n, std::int64_t rank,
                                                     std::int64_t budget) {
  if (budget < 0) return EigenvectorStorage::kStored;
  const double bytes = 10.0 * static_cast<double>(n) * static_cast<double>(rank);
  return bytes <= static_cast<double>(budget) ? EigenvectorStorage::kStored
                                              : EigenvectorStorage::kOnDemand;
}

// Whether a kernel whose eigenvectors may be stored but are not formed yet should form them now,
// before a rejection call of `num_samples` samples of size k, having spent `spent` (see below) on
// computed rows so far. Forming V costs n d rank multiply-adds (one GEMM pass over the features);
// a sample from computed rows costs about rank H_k proposals (common/rejection_bound.h) of d k
// multiply-adds each, kComputedRowCost times slower apiece than the GEMM's, more than one from
// stored rows. V is formed once the computed rows, this call's included, would cost more than
// forming it: a call with many samples forms it at once, and many small calls spend at most
// twice the cost of forming it at the start (the ski-rental rule). Depends on the shape alone.
constexpr double kComputedRowCost = 2.0;

inline double computed_rows_cost(std::int64_t rank, std::int64_t d, std::int64_t k,
                                 std::int64_t num_samples) {
  return harmonic_number(k) * static_cast<double>(rank) * static_cast<double>(d) *
         static_cast<double>(k) * kComputedRowCost * static_cast<double>(num_samples);
}

inline bool eigenvectors_repay(std::int64_t n, std::int64_t d, std::int64_t rank, std::int64_t k,
                               std::int64_t num_samples, double spent) {
  const double forming =
      static_cast<double>(n) * static_cast<double>(d) * static_cast<double>(rank);
  return spent + computed_rows_cost(rank, d, k, num_samples) > forming;
}

// A spectrum with the tables its samplers reuse across calls (the leverage proposal, ESP tables
// per k, the eigenvectors when they are formed late), built lazily and thread-safely. This is the
// object behind ipdpp._core.Spectrum.
class SpectralSampler {
 public:
  // `storage` kOnDemand needs a spectrum with a feature basis (lowrank_spectrum_basis with n > d);
  // for any other spectrum it means kStored, since such eigenvectors are formed already. A kStored
  // spectrum that comes without its eigenvectors forms them at their first need: eigenvectors(),
  // the sequential sampler, or a rejection call once eigenvectors_repay; until then the rejection
  // sampler reads computed rows, which give the same samples up to rounding.
  explicit SpectralSampler(Spectrum spectrum,
                           EigenvectorStorage storage = EigenvectorStorage::kStored);
  SpectralSampler(const SpectralSampler&) = delete;
  SpectralSampler& operator=(const SpectralSampler&) = delete;

  // Eigenvalues, sizes and the feature basis; the eigenvectors may not be formed yet (see
  // eigenvectors()).
  const Spectrum& spectrum() const { return spectrum_; }
  EigenvectorStorage storage() const { return storage_; }
  // The n x rank eigenvectors, formed on the first call when the spectrum came without them.
  // Throws std::invalid_argument (ValueError) in kOnDemand storage.
  const std::vector<double>& eigenvectors() const;
  // Whether the eigenvectors are stored by now.
  bool eigenvectors_formed() const { return formed_.load(std::memory_order_acquire); }
  // Rows `items` (m, in [0, n)) of the eigenvectors into out (m x rank), in any storage.
  void eigenvector_rows(const std::int64_t* items, std::int64_t m, double* out) const;
  // sum_j weights_j V_ij^2 for every item (weights: rank values), in any storage.
  std::vector<double> weighted_row_norms(const double* weights) const;

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
  // The bfloat16 screen rows when `rows` has the eigenvectors, else null; built on first use.
  const std::uint16_t* screen_rows(const Spectrum& rows) const;
  // The per-column tables of method "columns" (forming the eigenvectors first), built on first
  // use on `threads` threads.
  const ColumnProposal& column_proposal(int threads) const;
  // The spectrum, with its eigenvectors formed (kStored) or as it is (kOnDemand).
  const Spectrum& sampling_spectrum() const;
  // What the rejection sampler reads rows from in a call of num_samples samples of size k: the
  // spectrum with its eigenvectors, or computed_rows_ (eigenvectors_repay decides when they may
  // still be formed).
  const Spectrum& rejection_spectrum(std::int64_t num_samples, std::int64_t k) const;
  // Throws std::invalid_argument for a method the storage cannot run (kSequential, kOnDemand).
  void check_method(ProjectionMethod method) const;
  // The method `method` means for a sample of size k.
  ProjectionMethod resolve(ProjectionMethod method, std::int64_t k) const;
  // The basis whose features a call reads at random rows when it reads `rows`, or null (stored
  // eigenvectors); builds the proposal first.
  const FeatureBasis* random_read_basis(const Spectrum& rows) const;
  // Projection phase for one sample whose selected eigenvector columns are `cols`.
  void project(const std::int64_t* cols, std::int64_t k, std::uint64_t seed, std::uint64_t sample,
               ProjectionMethod method, const Spectrum& rejection_rows, std::int64_t* out) const;

  Spectrum spectrum_;
  EigenvectorStorage storage_;
  // The spectrum without eigenvectors (sizes, eigenvalues, basis) that computed-row samples read
  // while spectrum_'s are formed late: a separate object, never written once built.
  Spectrum computed_rows_;
  mutable std::once_flag eigenvectors_once_;
  mutable std::atomic<bool> formed_{false};
  mutable std::mutex repay_mutex_;
  mutable double computed_rows_spent_ = 0.0;  // computed_rows_cost of the samples drawn so far
  std::vector<double> log_eigenvalues_;
  mutable std::once_flag proposal_once_;
  mutable std::unique_ptr<LeverageProposal> proposal_;
  mutable std::once_flag screen_once_;
  mutable std::vector<std::uint16_t> screen_rows_;
  mutable std::once_flag columns_once_;
  mutable std::unique_ptr<ColumnProposal> columns_;
  EspTableCache<> esp_tables_;
};

}  // namespace ipdpp

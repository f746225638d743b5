#include "cpu/spectral_sampler.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <utility>

#include "common/error.h"
#include "common/parallel.h"
#include "cpu/projection_sampler.h"
#include "cpu/select_eigenvectors.h"

namespace ipdpp {
namespace {

std::string gibibytes(double bytes) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.3g GiB", bytes / 1073741824.0);
  return text;
}

}  // namespace

SpectralSampler::SpectralSampler(Spectrum spectrum, EigenvectorStorage storage)
    : spectrum_(std::move(spectrum)),
      storage_(spectrum_.has_eigenvectors() ? EigenvectorStorage::kStored : storage) {
  IPDPP_ASSERT(spectrum_.has_eigenvectors() || spectrum_.basis != nullptr);
  formed_.store(spectrum_.has_eigenvectors());
  if (!spectrum_.has_eigenvectors()) {
    computed_rows_.n = spectrum_.n;
    computed_rows_.rank = spectrum_.rank;
    computed_rows_.eigenvalues = spectrum_.eigenvalues;
    computed_rows_.basis = spectrum_.basis;
  }
  log_eigenvalues_.reserve(spectrum_.eigenvalues.size());
  for (double lam : spectrum_.eigenvalues) log_eigenvalues_.push_back(std::log(lam));
}

const std::vector<double>& SpectralSampler::eigenvectors() const {
  IPDPP_REQUIRE(
      storage_ == EigenvectorStorage::kStored,
      "the eigenvectors of a low-memory kernel (memory='low', or more than its memory "
      "budget) are never stored: its samplers compute the rows they read from the "
      "features; build the kernel with memory='full' to store them (10 n rank bytes with "
      "the rejection sampler's copy = " +
          gibibytes(10.0 * static_cast<double>(spectrum_.n) * static_cast<double>(spectrum_.rank)) +
          ")");
  std::call_once(eigenvectors_once_, [this] {
    if (spectrum_.has_eigenvectors()) return;
    // Formed once, before any sampler reads them; every later reader passes call_once first.
    auto& mutable_spectrum = const_cast<Spectrum&>(spectrum_);
    resize_huge(mutable_spectrum.eigenvectors, checked_size(spectrum_.n, spectrum_.rank));
    form_eigenvectors(*spectrum_.basis, mutable_spectrum.eigenvectors.data());
    formed_.store(true, std::memory_order_release);
  });
  return spectrum_.eigenvectors;
}

void SpectralSampler::eigenvector_rows(const std::int64_t* items, std::int64_t m,
                                       double* out) const {
  if (!eigenvectors_formed()) return compute_eigenvector_rows(*spectrum_.basis, items, m, out);
  const double* V = eigenvectors().data();
  const std::int64_t r = spectrum_.rank;
  for (std::int64_t s = 0; s < m; ++s)
    std::copy(V + items[s] * r, V + items[s] * r + r, out + s * r);
}

std::vector<double> SpectralSampler::weighted_row_norms(const double* weights) const {
  if (!eigenvectors_formed()) return weighted_leverage_scores(*spectrum_.basis, weights);
  const double* V = eigenvectors().data();
  const std::int64_t r = spectrum_.rank;
  std::vector<double> out(static_cast<std::size_t>(spectrum_.n));
  for (std::int64_t i = 0; i < spectrum_.n; ++i) {
    double sum = 0.0;
    for (std::int64_t c = 0; c < r; ++c) sum += weights[c] * V[i * r + c] * V[i * r + c];
    out[i] = sum;
  }
  return out;
}

const Spectrum& SpectralSampler::sampling_spectrum() const {
  if (storage_ == EigenvectorStorage::kStored) eigenvectors();
  return spectrum_;
}

const Spectrum& SpectralSampler::rejection_spectrum(std::int64_t num_samples,
                                                    std::int64_t k) const {
  if (storage_ == EigenvectorStorage::kOnDemand) return spectrum_;  // never formed
  if (eigenvectors_formed()) return spectrum_;
  {
    std::lock_guard<std::mutex> lock(repay_mutex_);
    const FeatureBasis& b = *spectrum_.basis;
    if (!eigenvectors_repay(b.n, b.d, b.rank, k, num_samples, computed_rows_spent_)) {
      computed_rows_spent_ += computed_rows_cost(b.rank, b.d, k, num_samples);
      return computed_rows_;
    }
  }
  return sampling_spectrum();
}

void SpectralSampler::check_method(ProjectionMethod method) const {
  const bool reads_columns =
      method == ProjectionMethod::kSequential || method == ProjectionMethod::kColumns;
  IPDPP_REQUIRE(!(reads_columns && storage_ == EigenvectorStorage::kOnDemand),
                std::string("method='") + projection_method_name(method) +
                    "' reads whole columns of the eigenvectors, which a low-memory kernel "
                    "(memory='low', or more than its memory budget) never stores; use "
                    "method='rejection' or 'auto' (which is rejection there), or build the "
                    "kernel with memory='full'");
}

const std::uint16_t* SpectralSampler::screen_rows(const Spectrum& rows) const {
  if (!rows.has_eigenvectors()) return nullptr;
  std::call_once(screen_once_,
                 [this] { screen_rows_ = round_eigenvectors_to_bfloat16(spectrum_); });
  return screen_rows_.data();
}

const ColumnProposal& SpectralSampler::column_proposal(int threads) const {
  std::call_once(columns_once_, [this, threads] {
    columns_ =
        std::make_unique<ColumnProposal>(build_column_proposal(sampling_spectrum(), threads));
  });
  return *columns_;
}

const LeverageProposal& SpectralSampler::proposal() const {
  std::call_once(proposal_once_, [this] {
    // From computed rows' spectrum while the eigenvectors are not formed, so that building the
    // proposal never forms them (both give the same scores).
    proposal_ = std::make_unique<LeverageProposal>(
        build_leverage_proposal(eigenvectors_formed() ? spectrum_ : computed_rows_));
  });
  return *proposal_;
}

ProjectionMethod SpectralSampler::resolve(ProjectionMethod method, std::int64_t k) const {
  if (method != ProjectionMethod::kAuto) return method;
  return storage_ == EigenvectorStorage::kOnDemand
             ? ProjectionMethod::kRejection
             : choose_cpu_method(spectrum_.n, spectrum_.rank, k);
}

const FeatureBasis* SpectralSampler::random_read_basis(const Spectrum& rows) const {
  if (rows.has_eigenvectors()) return nullptr;
  // The leverage scores first: their pass over the features reads them in order, which the
  // default read-ahead serves best.
  proposal();
  return rows.basis.get();
}

void SpectralSampler::project(const std::int64_t* cols, std::int64_t k, std::uint64_t seed,
                              std::uint64_t sample, ProjectionMethod method,
                              const Spectrum& rejection_rows, std::int64_t* out) const {
  if (k == 0) return;  // an empty sample needs no tables (and a rank-0 spectrum has none)
  const ProjectionMethod chosen = resolve(method, k);
  if (chosen == ProjectionMethod::kColumns) {
    RandomStream rng(seed, sample, RandomPurpose::kRejection);
    const Spectrum& rows = sampling_spectrum();
    // Built by the call before its samples (column_proposal(threads)).
    const RejectionTables tables{nullptr, columns_.get(), screen_rows(rows)};
    project_rejection(rows, tables, cols, k, rng, out);
  } else if (chosen == ProjectionMethod::kRejection) {
    RandomStream rng(seed, sample, RandomPurpose::kRejection);
    const RejectionTables tables{&proposal(), nullptr, screen_rows(rejection_rows)};
    project_rejection(rejection_rows, tables, cols, k, rng, out);
  } else {
    RandomStream rng(seed, sample, RandomPurpose::kSequential);
    project_sequential(sampling_spectrum(), cols, k, rng, out);
  }
  std::sort(out, out + k);
}

void SpectralSampler::sample_k(std::int64_t k, std::int64_t num_samples, std::uint64_t seed,
                               std::uint64_t sample_offset, ProjectionMethod method, int threads,
                               std::int64_t* out) const {
  IPDPP_REQUIRE(k >= 0, "k must be non-negative; got " + std::to_string(k));
  IPDPP_REQUIRE(k <= spectrum_.rank, "k = " + std::to_string(k) + " exceeds the kernel's rank " +
                                         std::to_string(spectrum_.rank));
  IPDPP_REQUIRE(num_samples >= 0, "num_samples must be non-negative");
  check_method(method);
  if (k == 0 || num_samples == 0) return;
  const auto table = esp_tables_.get(log_eigenvalues_.data(), spectrum_.rank, k);
  const Spectrum& rows = resolve(method, k) == ProjectionMethod::kRejection
                             ? rejection_spectrum(num_samples, k)
                             : sampling_spectrum();
  const RandomRowsHint hint(random_read_basis(rows));
  if (method == ProjectionMethod::kColumns) column_proposal(threads);
  parallel_for(num_samples, threads, [&](std::int64_t i) {
    const std::uint64_t sample = sample_offset + static_cast<std::uint64_t>(i);
    std::int64_t* dst = out + i * k;
    std::vector<std::int64_t> cols(static_cast<std::size_t>(k));
    select_k_eigenvectors(table->data(), log_eigenvalues_.data(), spectrum_.rank, k, seed, sample,
                          cols.data());
    project(cols.data(), k, seed, sample, method, rows, dst);
  });
}

std::vector<std::vector<std::int64_t>> SpectralSampler::sample_dpp(std::int64_t num_samples,
                                                                   std::uint64_t seed,
                                                                   std::uint64_t sample_offset,
                                                                   ProjectionMethod method,
                                                                   int threads) const {
  IPDPP_REQUIRE(num_samples >= 0, "num_samples must be non-negative");
  check_method(method);
  std::vector<std::vector<std::int64_t>> samples(static_cast<std::size_t>(num_samples));
  if (num_samples == 0) return samples;
  // Samples have random sizes; the expected one decides where the rejection rows come from.
  double expected = 0.0;
  for (double lam : spectrum_.eigenvalues) expected += lam / (1.0 + lam);
  const auto size = std::clamp<std::int64_t>(static_cast<std::int64_t>(std::ceil(expected)), 1,
                                             std::max<std::int64_t>(spectrum_.rank, 1));
  const Spectrum& rows = spectrum_.rank > 0 && resolve(method, size) == ProjectionMethod::kRejection
                             ? rejection_spectrum(num_samples, size)
                             : sampling_spectrum();
  const RandomRowsHint hint(random_read_basis(rows));
  if (method == ProjectionMethod::kColumns && spectrum_.rank > 0) column_proposal(threads);
  parallel_for(num_samples, threads, [&](std::int64_t i) {
    const std::uint64_t sample = sample_offset + static_cast<std::uint64_t>(i);
    const std::vector<std::int64_t> cols =
        select_dpp_eigenvectors(spectrum_.eigenvalues, seed, sample);
    auto& dst = samples[static_cast<std::size_t>(i)];
    dst.resize(cols.size());
    project(cols.data(), static_cast<std::int64_t>(cols.size()), seed, sample, method, rows,
            dst.data());
  });
  return samples;
}

}  // namespace ipdpp

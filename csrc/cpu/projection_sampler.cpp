#include "cpu/projection_sampler.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <utility>

#include "common/dot.h"
#include "common/error.h"
#include "common/esp.h"
#include "common/parallel.h"

namespace ipdpp {
namespace {

// Items per partial sum of the sequential phase's residuals: picking an item by inverse CDF then
// scans n / 256 block sums and at most 256 residuals instead of all n.
constexpr std::int64_t kPickBlock = 256;

// A proposal is accepted with probability >= (k - t) / rank at step t, so the chance of 1000 *
// (rank + 1) rejections in a row is below exp(-1000): hitting this bound means broken input
// (a V without orthonormal columns), never bad luck.
constexpr std::int64_t kMaxRejectionsPerRank = 1000;

// Proposals of the rejection phase drawn ahead of use, so that their rows are prefetched in
// time: a gather costs ~100 ns of work, a DRAM miss about as much, 8 in flight hide it.
constexpr int kLookahead = 8;

constexpr std::size_t kMaxCachedEspTables = 16;

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
// The hot loops are compiled twice, for AVX2 + FMA (x86-64-v3) and for the baseline ISA; the
// dynamic loader picks one clone per CPU. Results are reproducible on a machine; the two clones
// round differently (FMA), so a seed may give other samples on a CPU without AVX2.
#define IPDPP_HOT __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define IPDPP_HOT
#endif

// dst = normalise((I - B B^T) y), B = the t orthonormal rows basis[0..t) of length k. `coef`
// holds B y when the caller has it already (the rejection test computes it), else null. A second
// Gram-Schmidt pass runs when the first one cancelled more than half of ||y||^2 (Kahan-Parlett:
// "twice is enough"), which keeps the basis orthonormal to working precision. Only this
// k-dimensional direction is re-orthogonalised; V is never touched.
IPDPP_HOT void orthonormal_direction(const double* y, const double* coef, const double* basis,
                                     std::int64_t t, std::int64_t k, double* dst) {
  std::copy(y, y + k, dst);
  const double before = dot(y, y, k);
  for (std::int64_t s = 0; s < t; ++s) {
    const double* b = basis + s * k;
    const double c = coef != nullptr ? coef[s] : dot(y, b, k);
    for (std::int64_t i = 0; i < k; ++i) dst[i] -= c * b[i];
  }
  double after = dot(dst, dst, k);
  if (after < 0.5 * before) {
    for (std::int64_t s = 0; s < t; ++s) {
      const double* b = basis + s * k;
      const double c = dot(dst, b, k);
      for (std::int64_t i = 0; i < k; ++i) dst[i] -= c * b[i];
    }
    after = dot(dst, dst, k);
  }
  IPDPP_ASSERT(after > 0.0);
  const double inv_norm = 1.0 / std::sqrt(after);
  for (std::int64_t i = 0; i < k; ++i) dst[i] *= inv_norm;
}

// Index i with probability w_i / sum(w) given target = u * sum(w), u uniform in (0, 1), using the
// block sums of w. Never returns an item of weight zero, even when rounding puts the target past
// the last partial sum.
std::int64_t pick_by_cdf(const std::vector<double>& w, const std::vector<double>& block_sum,
                         double target) {
  const std::int64_t blocks = static_cast<std::int64_t>(block_sum.size());
  std::int64_t b = 0, last_positive_block = -1;
  double before = 0.0;
  for (; b < blocks; ++b) {
    if (block_sum[b] <= 0.0) continue;
    last_positive_block = b;
    if (before + block_sum[b] > target) break;
    before += block_sum[b];
  }
  IPDPP_ASSERT(last_positive_block >= 0);
  if (b == blocks) {  // rounding put the target at the very end: take the last positive item
    b = last_positive_block;
    before -= block_sum[b];
  }
  const std::int64_t begin = b * kPickBlock;
  const std::int64_t end =
      std::min<std::int64_t>(begin + kPickBlock, static_cast<std::int64_t>(w.size()));
  std::int64_t last_positive = -1;
  double acc = before;
  for (std::int64_t i = begin; i < end; ++i) {
    if (w[i] <= 0.0) continue;
    last_positive = i;
    acc += w[i];
    if (acc > target) return i;
  }
  IPDPP_ASSERT(last_positive >= 0);
  return last_positive;
}

// Harmonic number H_k = 1 + 1/2 + ... + 1/k.
double harmonic(std::int64_t k) {
  double h = 0.0;
  for (std::int64_t i = 1; i <= k; ++i) h += 1.0 / static_cast<double>(i);
  return h;
}

}  // namespace

ProjectionMethod parse_projection_method(const std::string& method) {
  if (method == "auto") return ProjectionMethod::kAuto;
  if (method == "sequential") return ProjectionMethod::kSequential;
  if (method == "rejection") return ProjectionMethod::kRejection;
  throw std::invalid_argument("method must be 'auto', 'sequential' or 'rejection'; got '" +
                              method + "'");
}

// Cost model of one sample with k selected eigenvectors out of `rank`, in units of one streamed
// multiply-add of the sequential pass:
//   sequential: k steps, each a pass over the n x k gathered columns plus a per-item update of the
//               residual and of the CDF: n k (k + kSequentialItemCost).
//   rejection:  step t needs rank / (k - t) proposals on average (the residuals sum to k - t, the
//               leverage scores to rank), rank H_k in all, each drawing from the alias table
//               (kProposalCost) and gathering k coordinates from a random row of V, which mostly
//               misses the caches (kGatherCost each). A fraction k / rank passes the first test
//               and is projected on the t basis vectors, with early exits: about
//               kProjectionCost k^3 H_k.
// The constants are a least-squares fit of measured times on the development machine (AMD EPYC,
// AVX2) over n in [1e3, 3e4], rank in {64, 256, 1000}, k in {5, 20, 60}; it is within a factor of
// two, which only matters near the crossover where both methods cost about the same. The rule
// depends on (n, rank, k) only, never on the batch size or on what is cached, so that a sample
// never depends on how it was requested.
ProjectionMethod choose_projection_method(std::int64_t n, std::int64_t rank, std::int64_t k) {
  constexpr double kSequentialItemCost = 57.0;
  constexpr double kProposalCost = 310.0;
  constexpr double kGatherCost = 23.0;
  constexpr double kProjectionCost = 0.4;
  const double kd = static_cast<double>(k), rd = static_cast<double>(rank);
  const double sequential = static_cast<double>(n) * kd * (kd + kSequentialItemCost);
  const double rejection =
      harmonic(k) * (rd * (kProposalCost + kGatherCost * kd) + kProjectionCost * kd * kd * kd);
  return rejection < sequential ? ProjectionMethod::kRejection : ProjectionMethod::kSequential;
}

AliasTable::AliasTable(const std::vector<double>& weights)
    : size_(static_cast<std::int64_t>(weights.size())) {
  IPDPP_ASSERT(size_ > 0);
  resize_huge(keep_, weights.size());  // read at random buckets, like V
  resize_huge(alias_, weights.size());
  double total = 0.0;
  for (double w : weights) total += w;
  IPDPP_ASSERT(total > 0.0);
  // Vose's method: scaled weights average 1; pair each under-full bucket with an over-full item.
  std::vector<double> scaled(weights.size());
  std::vector<std::int64_t> small, large;
  small.reserve(weights.size());
  large.reserve(weights.size());
  const double factor = static_cast<double>(size_) / total;
  for (std::int64_t i = 0; i < size_; ++i) {
    scaled[i] = weights[i] * factor;
    (scaled[i] < 1.0 ? small : large).push_back(i);
  }
  while (!small.empty() && !large.empty()) {
    const std::int64_t s = small.back(), l = large.back();
    small.pop_back();
    keep_[s] = scaled[s];
    alias_[s] = l;
    scaled[l] = (scaled[l] + scaled[s]) - 1.0;
    if (scaled[l] < 1.0) {
      large.pop_back();
      small.push_back(l);
    }
  }
  // Leftovers are full buckets up to rounding. A zero-weight leftover would be proposed with
  // probability 1/n; the rejection phase rejects it (its acceptance ratio is 0), so exactness
  // holds.
  for (std::int64_t i : large) keep_[i] = 1.0, alias_[i] = i;
  for (std::int64_t i : small) keep_[i] = 1.0, alias_[i] = i;
}

LeverageProposal build_leverage_proposal(const Spectrum& spectrum) {
  IPDPP_ASSERT(spectrum.rank > 0);
  LeverageProposal p;
  resize_huge(p.leverage, static_cast<std::size_t>(spectrum.n));
  const std::int64_t r = spectrum.rank;
  for (std::int64_t i = 0; i < spectrum.n; ++i) {
    const double* row = spectrum.eigenvectors.data() + i * r;
    p.leverage[i] = dot(row, row, r);
  }
  p.table = AliasTable(p.leverage);
  return p;
}

IPDPP_HOT void project_sequential(const Spectrum& spectrum, const std::int64_t* cols,
                                  std::int64_t k, RandomStream& rng, std::int64_t* out) {
  if (k == 0) return;
  const std::int64_t n = spectrum.n, r = spectrum.rank;
  const double* V = spectrum.eigenvectors.data();
  // Gather the k selected columns once into a contiguous n x k array: every step then streams
  // exactly n k doubles instead of n rank.
  std::vector<double> y(checked_size(n, k));
  std::vector<double> residual(static_cast<std::size_t>(n));
  const std::int64_t blocks = (n + kPickBlock - 1) / kPickBlock;
  std::vector<double> block_sum(static_cast<std::size_t>(blocks), 0.0);
  for (std::int64_t i = 0; i < n; ++i) {
    const double* row = V + i * r;
    double* yi = y.data() + i * k;
    for (std::int64_t c = 0; c < k; ++c) yi[c] = row[cols[c]];
    residual[i] = dot(yi, yi, k);
    block_sum[i / kPickBlock] += residual[i];
  }
  std::vector<double> basis(checked_size(k, k));
  for (std::int64_t t = 0;; ++t) {
    double total = 0.0;
    for (double s : block_sum) total += s;
    IPDPP_ASSERT(total > 0.0);
    const std::int64_t j = pick_by_cdf(residual, block_sum, rng.uniform() * total);
    out[t] = j;
    if (t + 1 == k) return;
    double* w = basis.data() + t * k;
    orthonormal_direction(y.data() + j * k, nullptr, basis.data(), t, k, w);
    // r_i <- r_i - (y_i . w)^2: the squared distance of y_i to the span of the chosen rows.
    for (std::int64_t b = 0; b < blocks; ++b) {
      const std::int64_t end = std::min(n, (b + 1) * kPickBlock);
      double sum = 0.0;
      for (std::int64_t i = b * kPickBlock; i < end; ++i) {
        const double c = dot(y.data() + i * k, w, k);
        const double left = residual[i] - c * c;
        residual[i] = left > 0.0 ? left : 0.0;
        sum += residual[i];
      }
      block_sum[b] = sum;
    }
    // The chosen row is in the span now; force its rounding residue to exactly zero.
    block_sum[j / kPickBlock] -= residual[j];
    residual[j] = 0.0;
  }
}

IPDPP_HOT void project_rejection(const Spectrum& spectrum, const LeverageProposal& proposal,
                                 const std::int64_t* cols, std::int64_t k, RandomStream& rng,
                                 std::int64_t* out) {
  if (k == 0) return;
  const std::int64_t r = spectrum.rank;
  const double* V = spectrum.eigenvectors.data();
  const double* leverage = proposal.leverage.data();
  bool identity = (k == r);  // all columns in order: use rows of V in place, no gather
  for (std::int64_t c = 0; identity && c < k; ++c) identity = (cols[c] == c);
  std::vector<double> basis(checked_size(k, k)), gathered(static_cast<std::size_t>(k)),
      coef(static_cast<std::size_t>(k));
  const std::int64_t max_proposals = kMaxRejectionsPerRank * (r + 1);

  // Proposals form a fixed stream (three uniforms each) whatever gets accepted, so they are drawn
  // kLookahead ahead of use and the cache lines their gather reads are prefetched: V is usually
  // far larger than the caches, and the gathers from random rows otherwise wait on DRAM. One
  // prefetch per gathered element (not per line of the row's span) keeps the memory traffic at
  // what the gather needs when k is much smaller than the rank.
  struct Pending {
    std::int64_t item;
    double u_accept;
  };
  Pending pending[kLookahead];
  auto draw = [&]() {
    const double u_bucket = rng.uniform();
    const double u_coin = rng.uniform();
    const std::int64_t i = proposal.table.draw(u_bucket, u_coin);
    const double* row = V + i * r;
    for (std::int64_t c = 0; c < k; ++c) __builtin_prefetch(row + cols[c]);
    __builtin_prefetch(leverage + i);
    return Pending{i, rng.uniform()};
  };
  for (auto& p : pending) p = draw();
  int head = 0;

  for (std::int64_t t = 0; t < k; ++t) {
    std::int64_t item = -1;
    const double* y = nullptr;
    for (std::int64_t proposals = 0; item < 0; ++proposals) {
      IPDPP_ASSERT(proposals < max_proposals);
      const Pending p = pending[head];
      pending[head] = draw();
      head = head + 1 == kLookahead ? 0 : head + 1;
      const std::int64_t i = p.item;
      // Accept with probability residual_i / leverage_i using one uniform: u * leverage_i must
      // fall below the residual. The residual only shrinks as directions are projected out, so
      // each partial value is an upper bound and the test can reject as soon as one falls below.
      const double threshold = p.u_accept * leverage[i];
      const double* row = V + i * r;
      if (identity) {
        y = row;
      } else {
        for (std::int64_t c = 0; c < k; ++c) gathered[c] = row[cols[c]];
        y = gathered.data();
      }
      double left = dot(y, y, k);  // ||V_{i,J}||^2 <= leverage_i: the first, O(k) test
      bool accepted = left > threshold;
      for (std::int64_t s = 0; accepted && s < t; ++s) {
        coef[s] = dot(y, basis.data() + s * k, k);
        left -= coef[s] * coef[s];
        accepted = left > threshold;
      }
      // A chosen item's residual is zero in exact arithmetic; rounding may leave ~1e-16 of it.
      for (std::int64_t s = 0; accepted && s < t; ++s) accepted = (out[s] != i);
      if (accepted) item = i;
    }
    out[t] = item;
    if (t + 1 < k) orthonormal_direction(y, coef.data(), basis.data(), t, k, basis.data() + t * k);
  }
}

SpectralSampler::SpectralSampler(Spectrum spectrum) : spectrum_(std::move(spectrum)) {
  log_eigenvalues_.reserve(spectrum_.eigenvalues.size());
  for (double lam : spectrum_.eigenvalues) log_eigenvalues_.push_back(std::log(lam));
}

const LeverageProposal& SpectralSampler::proposal() const {
  std::call_once(proposal_once_, [this] {
    proposal_ = std::make_unique<LeverageProposal>(build_leverage_proposal(spectrum_));
  });
  return *proposal_;
}

std::shared_ptr<const std::vector<double>> SpectralSampler::esp_table(std::int64_t k) const {
  std::lock_guard<std::mutex> lock(esp_mutex_);
  auto it = esp_tables_.find(k);
  if (it != esp_tables_.end()) return it->second;
  // A table costs (rank + 1)(k + 1) doubles; callers use a handful of k, so a small cache that is
  // flushed when full keeps memory bounded without any bookkeeping.
  if (esp_tables_.size() >= kMaxCachedEspTables) esp_tables_.clear();
  auto table = std::make_shared<std::vector<double>>(
      checked_size(log_esp_table_size(spectrum_.rank, k), 1));
  log_esp_table(log_eigenvalues_.data(), spectrum_.rank, k, table->data());
  esp_tables_.emplace(k, table);
  return table;
}

void SpectralSampler::project(const std::int64_t* cols, std::int64_t k, std::uint64_t seed,
                              std::uint64_t sample, ProjectionMethod method,
                              std::int64_t* out) const {
  if (k == 0) return;  // an empty sample needs no tables (and a rank-0 spectrum has none)
  if (method == ProjectionMethod::kAuto)
    method = choose_projection_method(spectrum_.n, spectrum_.rank, k);
  if (method == ProjectionMethod::kRejection) {
    RandomStream rng(seed, sample, RandomPurpose::kRejection);
    project_rejection(spectrum_, proposal(), cols, k, rng, out);
  } else {
    RandomStream rng(seed, sample, RandomPurpose::kSequential);
    project_sequential(spectrum_, cols, k, rng, out);
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
  if (k == 0 || num_samples == 0) return;
  const auto table = esp_table(k);
  parallel_for(num_samples, threads, [&](std::int64_t i) {
    const std::uint64_t sample = sample_offset + static_cast<std::uint64_t>(i);
    std::int64_t* dst = out + i * k;
    std::vector<std::int64_t> cols(static_cast<std::size_t>(k));
    RandomStream selection(seed, sample, RandomPurpose::kEigenSelection);
    const std::int64_t got = select_k_from_log_esp(table->data(), log_eigenvalues_.data(),
                                                   spectrum_.rank, k, selection, cols.data());
    IPDPP_ASSERT(got == k);
    project(cols.data(), k, seed, sample, method, dst);
  });
}

std::vector<std::vector<std::int64_t>> SpectralSampler::sample_dpp(std::int64_t num_samples,
                                                                   std::uint64_t seed,
                                                                   std::uint64_t sample_offset,
                                                                   ProjectionMethod method,
                                                                   int threads) const {
  IPDPP_REQUIRE(num_samples >= 0, "num_samples must be non-negative");
  std::vector<std::vector<std::int64_t>> samples(static_cast<std::size_t>(num_samples));
  parallel_for(num_samples, threads, [&](std::int64_t i) {
    const std::uint64_t sample = sample_offset + static_cast<std::uint64_t>(i);
    // Eigenpair j enters the elementary DPP with probability lambda_j / (1 + lambda_j).
    std::vector<std::int64_t> cols;
    RandomStream selection(seed, sample, RandomPurpose::kEigenSelection);
    for (std::int64_t j = 0; j < spectrum_.rank; ++j) {
      const double lam = spectrum_.eigenvalues[j];
      if (selection.uniform() * (1.0 + lam) < lam) cols.push_back(j);
    }
    auto& dst = samples[static_cast<std::size_t>(i)];
    dst.resize(cols.size());
    project(cols.data(), static_cast<std::int64_t>(cols.size()), seed, sample, method, dst.data());
  });
  return samples;
}

}  // namespace ipdpp

#include "cpu/balanced_subset.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <string>

#include "common/class_groups.h"
#include "common/error.h"
#include "common/interrupt.h"
#include "common/ipdpp_alpha.h"
#include "common/parallel.h"
#include "common/philox.h"
#include "cpu/diagonal_rank_one_eigen.h"
#include "cpu/greedy_map.h"
#include "cpu/ipdpp_sampler.h"
#include "cpu/spectral_sampler.h"
#include "cpu/spectrum.h"

namespace ipdpp {
namespace {

// Eigenvalues of S_c at or below this fraction of the largest count as zero in mode kPaper
// (the secular solver's absolute error, like dsyevd's, is a few ulps of the largest eigenvalue,
// ~1e-15 for S_c whose eigenvalues lie in [0, 1]; 1e-10 leaves a wide margin above that noise).
constexpr double kPaperEigenvalueRtol = 1e-10;

struct ClassProblem {
  std::int64_t label;
  std::int64_t k;
  const std::int64_t* members;  // global indices, ascending
  std::int64_t size;
  std::vector<double> p;  // p of the members
  double alpha;
};

// Uniform k-subset by a partial Fisher-Yates shuffle (local indices).
std::vector<std::int64_t> random_subset(std::int64_t n, std::int64_t k, RandomStream& rng) {
  std::vector<std::int64_t> order(checked_size(n, 1));
  std::iota(order.begin(), order.end(), std::int64_t{0});
  for (std::int64_t t = 0; t < k; ++t) {
    const auto span = static_cast<double>(n - t);
    auto j = t + static_cast<std::int64_t>(rng.uniform() * span);
    if (j >= n) j = n - 1;  // u * span can round up to span
    std::swap(order[t], order[j]);
  }
  order.resize(k);
  return order;
}

// The paper's Algorithm 1 on S_c = diag(d) + alpha p p^T (local indices).
//  1. Eigendecompose S_c. Scan the eigenpairs once in ascending order, keeping pair m
//     with probability lambda_m / (lambda_m + 1), and stop as soon as k are kept. Since the
//     eigenvalues of S_c lie in [0, 1] each pair is kept with probability <= 1/2, so one scan can
//     end with fewer than k; then (our choice, the paper is silent) the kept set is filled up
//     with the not-yet-kept pairs of largest eigenvalue.
//  2. k times: take the item with the largest squared norm of its row of the kept eigenvectors
//     (argmax, ties to the smaller index) and project that direction out of every row.
// Not an exact k-DPP sampler (stopping after k acceptances biases towards early eigenpairs and
// the argmax is deterministic); kept to reproduce the paper.
std::vector<std::int64_t> paper_algorithm(const DiagonalPlusRankOne& kernel, std::int64_t n,
                                          std::int64_t k, RandomStream& rng) {
  // S_c = diag(d) + u u^T with u_i = sqrt(a_i) = sqrt(alpha) p_i: eigenvalues from the secular
  // equation in O(n^2), and only the k selected eigenvectors formed (O(n) each).
  std::vector<double> u(checked_size(n, 1));
  for (std::int64_t i = 0; i < n; ++i) u[i] = std::sqrt(kernel.a[i]);
  const DiagonalRankOneEigen eig(kernel.d.data(), u.data(), n);
  const std::vector<double>& eigenvalues = eig.eigenvalues();  // ascending, as dsyevd's
  const double top = eigenvalues[n - 1];
  std::int64_t positive = 0;
  for (double lambda : eigenvalues) positive += lambda > kPaperEigenvalueRtol * top;
  IPDPP_REQUIRE(positive >= k, "S_c has numerical rank " + std::to_string(positive) +
                                   " < k = " + std::to_string(k));

  std::vector<char> kept(checked_size(n, 1), 0);
  std::int64_t num_kept = 0;
  for (std::int64_t m = 0; m < n && num_kept < k; ++m) {
    const double lambda = std::max(eigenvalues[m], 0.0);
    if (rng.uniform() < lambda / (lambda + 1.0)) {
      kept[m] = 1;
      ++num_kept;
    }
  }
  for (std::int64_t m = n - 1; m >= 0 && num_kept < k; --m) {  // fill, largest eigenvalue first
    if (!kept[m]) {
      kept[m] = 1;
      ++num_kept;
    }
  }

  // V: n x k row-major, the kept eigenvectors as columns.
  std::vector<double> V(checked_size(n, k));
  std::int64_t col = 0;
  for (std::int64_t m = 0; m < n; ++m) {
    if (!kept[m]) continue;
    eig.eigenvector(m, V.data() + col, k);
    ++col;
  }
  std::vector<double> residual(checked_size(n, 1), 0.0);
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t c = 0; c < k; ++c) residual[i] += V[i * k + c] * V[i * k + c];
  std::vector<double> basis;  // orthonormal directions already projected out, t x k
  basis.reserve(checked_size(k, k));
  std::vector<char> chosen(checked_size(n, 1), 0);
  std::vector<std::int64_t> out;
  out.reserve(k);
  std::vector<double> w(checked_size(k, 1));
  for (std::int64_t t = 0; t < k; ++t) {
    interruption_point();
    std::int64_t best = -1;
    for (std::int64_t i = 0; i < n; ++i)
      if (!chosen[i] && (best < 0 || residual[i] > residual[best])) best = i;
    out.push_back(best);
    chosen[best] = 1;
    // w = normalise((I - W W^T) V_best^T), Gram-Schmidt against the earlier directions.
    for (std::int64_t c = 0; c < k; ++c) w[c] = V[best * k + c];
    for (std::int64_t s = 0; s < t; ++s) {
      const double* b = &basis[s * k];
      double dot = 0.0;
      for (std::int64_t c = 0; c < k; ++c) dot += b[c] * w[c];
      for (std::int64_t c = 0; c < k; ++c) w[c] -= dot * b[c];
    }
    double norm2 = 0.0;
    for (std::int64_t c = 0; c < k; ++c) norm2 += w[c] * w[c];
    if (!(norm2 > 0.0)) continue;  // best's row is already spanned: nothing left to project
    const double inv = 1.0 / std::sqrt(norm2);
    for (std::int64_t c = 0; c < k; ++c) w[c] *= inv;
    basis.insert(basis.end(), w.begin(), w.end());
    for (std::int64_t i = 0; i < n; ++i) {
      double projection = 0.0;
      for (std::int64_t c = 0; c < k; ++c) projection += V[i * k + c] * w[c];
      residual[i] = std::max(residual[i] - projection * projection, 0.0);
    }
  }
  return out;
}

// Rows q_i * F_i / ||F_i|| of the quality-diversity kernel, [size, dim] row-major.
template <class T>
std::vector<double> quality_diversity_factor(const T* data, std::int64_t dim,
                                             const ClassProblem& c) {
  std::vector<double> factor(checked_size(c.size, dim));
  for (std::int64_t r = 0; r < c.size; ++r) {
    const T* row = data + c.members[r] * dim;
    double norm2 = 0.0;
    for (std::int64_t j = 0; j < dim; ++j) norm2 += static_cast<double>(row[j]) * row[j];
    const double q = std::sqrt(1.0 - c.p[r] + kQualityFloor);
    const double scale = norm2 > 0.0 ? q / std::sqrt(norm2) : 0.0;
    for (std::int64_t j = 0; j < dim; ++j) factor[r * dim + j] = scale * row[j];
  }
  return factor;
}

std::vector<double> quality_diversity_factor(const FeatureMatrix& f, const ClassProblem& c) {
  return dispatch_dtype(f.dtype, [&](auto tag) {
    return quality_diversity_factor(static_cast<const decltype(tag)*>(f.data), f.dim, c);
  });
}

// Local indices of the items class problem c keeps.
std::vector<std::int64_t> select_in_class(const ClassProblem& c, const BalancedOptions& options,
                                          const FeatureMatrix* features) {
  const std::uint64_t stream = static_cast<std::uint64_t>(c.label);
  const std::int64_t n = c.size, k = c.k;
  switch (options.mode) {
    case BalancedMode::kRandom: {
      RandomStream rng(options.seed, stream, RandomPurpose::kBalanced);
      return random_subset(n, k, rng);
    }
    case BalancedMode::kGreedy: {
      std::vector<std::int64_t> out(checked_size(k, 1));
      if (features != nullptr) {
        const std::vector<double> factor = quality_diversity_factor(*features, c);
        greedy_map_factor(factor.data(), n, features->dim, k, out.data());
      } else {
        const DiagonalPlusRankOne s = ipdpp_diagonal_rank_one(c.p.data(), n, c.alpha);
        std::vector<double> u(checked_size(n, 1));
        for (std::int64_t i = 0; i < n; ++i) u[i] = std::sqrt(s.a[i]);
        greedy_map_diag_rank_one(s.d.data(), u.data(), n, k, out.data());
      }
      return out;
    }
    case BalancedMode::kPaper: {
      IPDPP_REQUIRE(features == nullptr, "features are not used by mode 'paper'");
      RandomStream rng(options.seed, stream, RandomPurpose::kPaperAlgorithm);
      return paper_algorithm(ipdpp_diagonal_rank_one(c.p.data(), n, c.alpha), n, k, rng);
    }
    case BalancedMode::kExact: {
      std::vector<std::int64_t> out(checked_size(k, 1));
      if (features != nullptr) {
        // Through the spectral sampler: the same draw as sample_k_dpp(LowRankKernel(F̂_c,
        // quality=q_c), k, seed=seed, sample_offset=c, method="sequential").
        const std::vector<double> factor = quality_diversity_factor(*features, c);
        SpectralSampler sampler(lowrank_spectrum<double>(factor.data(), n, features->dim, nullptr,
                                                         options.eigenvalue_rtol));
        IPDPP_REQUIRE(sampler.spectrum().rank >= k, "the quality-diversity kernel has rank " +
                                                        std::to_string(sampler.spectrum().rank) +
                                                        " < k (its rank is at most "
                                                        "the feature dimension " +
                                                        std::to_string(features->dim) + ")");
        sampler.sample_k(k, 1, options.seed, stream, ProjectionMethod::kSequential, 1, out.data());
        return out;
      }
      const DiagonalPlusRankOne s = ipdpp_diagonal_rank_one(c.p.data(), n, c.alpha);
      const StructuredKDPP sampler(s.d.data(), s.a.data(), n, k);
      RandomStream rng(options.seed, stream, RandomPurpose::kStructured);
      sampler.sample(rng, out.data());
      return out;
    }
  }
  throw_internal("unknown BalancedMode", __FILE__, __LINE__);
}

}  // namespace

std::vector<std::int64_t> balanced_subset(const std::int64_t* labels, const double* p,
                                          std::int64_t n, const std::int64_t* k_per_class,
                                          std::int64_t num_classes, const BalancedOptions& options,
                                          const FeatureMatrix* features) {
  ipdpp_alpha(options.alpha_power, options.alpha_value, 1);  // validates the rule's parameters
  const ClassGroups groups = group_by_class(labels, p, n, k_per_class, num_classes);
  const std::vector<std::int64_t>& offsets = groups.offsets;
  const std::vector<std::int64_t>& members = groups.members;

  // Per-class results land in per-class slots, then are merged in class order and sorted.
  std::vector<std::vector<std::int64_t>> kept(checked_size(num_classes, 1));
  parallel_for(num_classes, options.threads, [&](std::int64_t label) {
    ClassProblem c;
    c.label = label;
    c.members = members.data() + offsets[label];
    c.size = offsets[label + 1] - offsets[label];
    c.k = std::min(k_per_class[label], c.size);
    if (c.k == c.size) {  // small classes are kept whole
      kept[label].assign(c.members, c.members + c.size);
      return;
    }
    if (c.k == 0) return;
    c.p.resize(checked_size(c.size, 1));
    for (std::int64_t r = 0; r < c.size; ++r) c.p[r] = p[c.members[r]];
    c.alpha = ipdpp_alpha(options.alpha_power, options.alpha_value, c.size);
    std::vector<std::int64_t> local;
    try {
      local = select_in_class(c, options, features);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(class_error_prefix(label, c.size, c.k) + e.what());
    }
    IPDPP_ASSERT(static_cast<std::int64_t>(local.size()) == c.k);
    kept[label].resize(local.size());
    for (std::size_t r = 0; r < local.size(); ++r) kept[label][r] = c.members[local[r]];
  });

  std::size_t total = 0;
  for (const auto& v : kept) total += v.size();
  std::vector<std::int64_t> result;
  result.reserve(total);
  for (const auto& v : kept) result.insert(result.end(), v.begin(), v.end());
  std::sort(result.begin(), result.end());
  return result;
}

}  // namespace ipdpp

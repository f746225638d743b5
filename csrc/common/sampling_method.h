// The projection phase of spectral sampling and the documented `method="auto"` rule of each
// device. Both rules depend on the problem's shape only (n, rank, k, dtype), never on the batch
// size or on what is cached, so that a sample never depends on how it was requested.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace ipdpp {

// kColumns: the rejection phase proposing from per-column tables of the stored eigenvectors
// (cpu/rejection_sampler.h), CPU only; "auto" never chooses it.
enum class ProjectionMethod { kAuto, kSequential, kRejection, kColumns };

// Parses "auto" | "sequential" | "rejection" | "columns"; throws std::invalid_argument naming
// `method`.
inline ProjectionMethod parse_projection_method(const std::string& method) {
  if (method == "auto") return ProjectionMethod::kAuto;
  if (method == "sequential") return ProjectionMethod::kSequential;
  if (method == "rejection") return ProjectionMethod::kRejection;
  if (method == "columns") return ProjectionMethod::kColumns;
  throw std::invalid_argument(
      "method must be 'auto', 'sequential', 'rejection' or 'columns'; got '" + method + "'");
}

inline const char* projection_method_name(ProjectionMethod method) {
  switch (method) {
    case ProjectionMethod::kSequential: return "sequential";
    case ProjectionMethod::kRejection: return "rejection";
    case ProjectionMethod::kColumns: return "columns";
    case ProjectionMethod::kAuto: break;
  }
  return "auto";
}

// Harmonic number H_k = 1 + 1/2 + ... + 1/k.
inline double harmonic_number(std::int64_t k) {
  double h = 0.0;
  for (std::int64_t i = 1; i <= k; ++i) h += 1.0 / static_cast<double>(i);
  return h;
}

// CPU: cost model of one sample with k selected eigenvectors out of `rank`, in units of one
// streamed multiply-add of the sequential pass:
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
// two, which only matters near the crossover where both methods cost about the same.
inline ProjectionMethod choose_cpu_method(std::int64_t n, std::int64_t rank, std::int64_t k) {
  constexpr double kSequentialItemCost = 57.0;
  constexpr double kProposalCost = 310.0;
  constexpr double kGatherCost = 23.0;
  constexpr double kProjectionCost = 0.4;
  const double kd = static_cast<double>(k), rd = static_cast<double>(rank);
  const double sequential = static_cast<double>(n) * kd * (kd + kSequentialItemCost);
  const double rejection = harmonic_number(k) * (rd * (kProposalCost + kGatherCost * kd) +
                                                 kProjectionCost * kd * kd * kd);
  return rejection < sequential ? ProjectionMethod::kRejection : ProjectionMethod::kSequential;
}

// GPU: the fused sequential kernel while a sample's gathered eigenvectors (n x size values of
// `itemsize` bytes) take at most kGpuSequentialMaxBytes, the rejection kernel above. Below it V_J
// stays in the GPU's L2 cache (50-60 MB on H100/H200), so each of the k passes costs a few
// microseconds and the whole device works on the sample; above it every step streams V_J from
// memory, while the rejection sampler's cost does not depend on n at all (and a batch runs one
// sample per thread block). `size` is k, or for a DPP the expected sample size rounded up (a
// property of the spectrum, so one method serves the whole batch).
constexpr std::int64_t kGpuSequentialMaxBytes = std::int64_t{32} << 20;

inline ProjectionMethod choose_gpu_method(std::int64_t n, std::int64_t size,
                                          std::int64_t itemsize) {
  const double bytes = static_cast<double>(n) * static_cast<double>(size > 1 ? size : 1) *
                       static_cast<double>(itemsize);
  return bytes <= static_cast<double>(kGpuSequentialMaxBytes) ? ProjectionMethod::kSequential
                                                              : ProjectionMethod::kRejection;
}

}  // namespace ipdpp

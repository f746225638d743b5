#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "common/class_groups.h"
#include "common/error.h"
#include "common/ipdpp_errors.h"
#include "common/ipdpp_walk.h"
#include "common/philox.h"
#include "cuda/block_reduce.cuh"
#include "cuda/cuda_check.h"
#include "cuda/device_buffer.h"
#include "cuda/ipdpp_sampler.h"
#include "cuda/launch_config.h"

namespace ipdpp::cuda {
namespace {

// Threads per table-building block: the band of a row has min(k, N - k) + 1 <= k + 1 entries,
// 51 for the k = 50 of stage 2, so two warps cover it in one round while many blocks (classes)
// share an SM.
constexpr int kTableThreads = 64;

constexpr int kStatusAlphaTooLarge = 1;
constexpr int kStatusRankBelowK = 2;

// The arithmetic shared with the CPU sampler (csrc/cpu/ipdpp_sampler.cpp).
using ipdpp_walk::choose_branch;

struct ProblemView {
  std::int64_t begin, n, k;  // positions, size, sampled size (0 < k < n when sampled)
  std::int64_t table;        // offset of the problem's tables (each (n + 1) x width)
  std::int64_t width;
  double alpha, total;  // alpha_c and P_c
  __device__ std::int64_t lo(std::int64_t i) const { return i + k > n ? i + k - n : 0; }
  __device__ std::int64_t hi(std::int64_t i) const { return i < k ? i : k; }
};

struct Device {
  const double* p;
  const std::int64_t* items;
  const std::int64_t* offsets;        // C + 1
  const std::int64_t* k;              // C
  const double* alpha;                // C
  const std::int64_t* table_offsets;  // C
  const std::int64_t* out_offsets;    // C
  double* totals;                     // C
  unsigned long long* reach;          // C: bits of the largest alpha p_i P_c beyond rounding
  double* log_e;                      // table storage
  double* log_h;
  int* status;  // C
  std::int64_t num_problems, samples_per_problem;
  std::uint64_t seed, sample_offset;
};

__device__ ProblemView problem(const Device& g, std::int64_t c) {
  ProblemView v;
  v.begin = g.offsets[c];
  v.n = g.offsets[c + 1] - v.begin;
  v.k = g.k[c] < v.n ? g.k[c] : v.n;
  v.table = g.table_offsets[c];
  v.width = (v.k < v.n - v.k ? v.k : v.n - v.k) + 1;
  v.alpha = g.alpha[c];
  v.total = g.totals[c];
  return v;
}

// log d_i and log a_i of position i (0-based within the problem); d_i < 0 beyond rounding
// flags the problem (alpha too large) and counts as 0.
__device__ void log_weights(const Device& g, const ProblemView& v, std::int64_t c, std::int64_t i,
                            double* log_d, double* log_a) {
  const double pi = g.p[v.begin + i];
  double d = 0.0;
  if (!ipdpp_walk::diagonal_entry(pi, v.alpha, v.total, &d)) {
    atomicOr(g.status + c, kStatusAlphaTooLarge);
    // Non-negative doubles order like their bit patterns: one 64-bit max keeps the largest.
    atomicMax(g.reach + c,
              static_cast<unsigned long long>(__double_as_longlong(v.alpha * pi * v.total)));
  }
  *log_d = log(d);
  *log_a = log(v.alpha * pi * pi);
}

__device__ double band_entry(const double* table, const ProblemView& v, std::int64_t i,
                             std::int64_t l) {
  const std::int64_t row_lo = v.lo(i);
  if (l < row_lo || l > v.hi(i)) return -HUGE_VAL;
  return table[v.table + i * v.width + (l - row_lo)];
}

// One block per problem: P_c, then rows i = 0..N of both tables (a row depends on the previous
// one only; the previous row is kept in shared memory indexed by l).
__global__ void __launch_bounds__(kTableThreads) structured_tables(const Device g) {
  extern __shared__ double rows[];  // 4 x (k + 1): e_prev, h_prev, e_cur, h_cur
  __shared__ double sum_scratch[33];
  for (std::int64_t c = blockIdx.x; c < g.num_problems; c += gridDim.x) {
    const std::int64_t begin = g.offsets[c], n = g.offsets[c + 1] - begin;
    double partial = 0.0;
    for (std::int64_t i = threadIdx.x; i < n; i += blockDim.x) partial += g.p[begin + i];
    const double total = block_sum(partial, sum_scratch);
    if (threadIdx.x == 0) g.totals[c] = total;
    const ProblemView v = [&] {
      ProblemView w;
      w.begin = begin;
      w.n = n;
      w.k = g.k[c] < n ? g.k[c] : n;
      w.table = g.table_offsets[c];
      w.width = (w.k < n - w.k ? w.k : n - w.k) + 1;
      w.alpha = g.alpha[c];
      w.total = total;
      return w;
    }();
    if (v.k == 0 || v.k == n) continue;  // nothing to sample (uniform over the block)
    const std::int64_t K = v.k;
    double* e_prev = rows;
    double* h_prev = rows + (K + 1);
    double* e_cur = rows + 2 * (K + 1);
    double* h_cur = rows + 3 * (K + 1);
    for (std::int64_t l = threadIdx.x; l <= K; l += blockDim.x) {
      e_prev[l] = l == 0 ? 0.0 : -HUGE_VAL;  // E[0][0] = H[0][0] = 1
      h_prev[l] = e_prev[l];
    }
    if (threadIdx.x == 0) {
      g.log_e[v.table] = 0.0;
      g.log_h[v.table] = 0.0;
    }
    __syncthreads();
    for (std::int64_t i = 1; i <= n; ++i) {
      double ld = 0.0, la = 0.0;
      log_weights(g, v, c, i - 1, &ld, &la);
      const std::int64_t row_lo = v.lo(i), row_hi = v.hi(i);
      for (std::int64_t l = threadIdx.x; l <= K; l += blockDim.x) {
        double e = -HUGE_VAL, h = -HUGE_VAL;
        if (l >= row_lo && l <= row_hi) {
          const double e_take = l > 0 ? e_prev[l - 1] : -HUGE_VAL;
          const double h_take = l > 0 ? h_prev[l - 1] : -HUGE_VAL;
          e = log_add_exp(e_prev[l], ld + e_take);
          h = log_add_exp(log_add_exp(h_prev[l], ld + h_take), la + e_take);
          g.log_e[v.table + i * v.width + (l - row_lo)] = e;
          g.log_h[v.table + i * v.width + (l - row_lo)] = h;
        }
        e_cur[l] = e;
        h_cur[l] = h;
      }
      __syncthreads();
      double* swap_e = e_prev;
      e_prev = e_cur;
      e_cur = swap_e;
      double* swap_h = h_prev;
      h_prev = h_cur;
      h_cur = swap_h;
    }
    if (threadIdx.x == 0 && !(h_prev[K] > -HUGE_VAL)) atomicOr(g.status + c, kStatusRankBelowK);
    __syncthreads();  // the shared rows are reused by the block's next problem
  }
}

// One thread per (problem, sample): the walk of StructuredKDPP::sample, or the whole class when
// it has no more than k items.
__global__ void structured_walks(const Device g, std::int64_t* __restrict__ out) {
  const std::int64_t total = g.num_problems * g.samples_per_problem;
  for (std::int64_t job = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
       job < total; job += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t c = job / g.samples_per_problem, s = job % g.samples_per_problem;
    const ProblemView v = problem(g, c);
    std::int64_t* row = out + g.out_offsets[c] + s * v.k;
    const auto item = [&](std::int64_t position) {
      return g.items != nullptr ? g.items[v.begin + position] : v.begin + position;
    };
    if (v.k == v.n) {
      for (std::int64_t i = 0; i < v.n; ++i) row[i] = item(i);
      continue;
    }
    if (v.k == 0 || g.status[c] != 0) continue;
    RandomStream rng(g.seed, g.sample_offset + static_cast<std::uint64_t>(job),
                     RandomPurpose::kStructured);
    std::int64_t l = v.k, written = v.k;
    bool special_pending = true;
    for (std::int64_t i = v.n; i >= 1 && l > 0; --i) {
      double ld = 0.0, la = 0.0;
      log_weights(g, v, c, i - 1, &ld, &la);
      double w[3];
      int branches;
      if (special_pending) {
        const double here = band_entry(g.log_h, v, i, l);
        w[0] = exp(band_entry(g.log_h, v, i - 1, l) - here);
        w[1] = exp(ld + band_entry(g.log_h, v, i - 1, l - 1) - here);
        w[2] = exp(la + band_entry(g.log_e, v, i - 1, l - 1) - here);
        branches = 3;
      } else {
        const double here = band_entry(g.log_e, v, i, l);
        w[0] = exp(band_entry(g.log_e, v, i - 1, l) - here);
        w[1] = exp(ld + band_entry(g.log_e, v, i - 1, l - 1) - here);
        branches = 2;
      }
      const int branch = choose_branch(rng.uniform(), w, branches);
      if (branch == 0) continue;
      row[--written] = item(i - 1);  // filled from the back: positions come in decreasing order
      --l;
      if (branch == 2) special_pending = false;
    }
  }
}

}  // namespace

std::int64_t structured_output_size(const StructuredProblems& problems,
                                    std::int64_t samples_per_problem) {
  std::int64_t size = 0;
  for (std::size_t c = 0; c + 1 < problems.offsets.size(); ++c) {
    const std::int64_t n = problems.offsets[c + 1] - problems.offsets[c];
    size += samples_per_problem * std::min(problems.k[c], n);
  }
  return size;
}

void structured_sample(const double* p, const std::int64_t* items,
                       const StructuredProblems& problems, std::int64_t samples_per_problem,
                       std::uint64_t seed, std::uint64_t sample_offset, bool name_classes,
                       std::int64_t* out, cudaStream_t stream) {
  const std::int64_t C = static_cast<std::int64_t>(problems.k.size());
  IPDPP_REQUIRE(static_cast<std::int64_t>(problems.offsets.size()) == C + 1 &&
                    static_cast<std::int64_t>(problems.alpha.size()) == C,
                "structured_sample: inconsistent problem metadata");
  IPDPP_REQUIRE(samples_per_problem >= 0, "num_samples must be >= 0");
  if (C == 0 || samples_per_problem == 0) return;
  std::vector<std::int64_t> table_offsets(C), out_offsets(C);
  std::int64_t table_size = 0, out_size = 0, max_k = 0;
  for (std::int64_t c = 0; c < C; ++c) {
    const std::int64_t n = problems.offsets[c + 1] - problems.offsets[c];
    IPDPP_REQUIRE(n >= 0 && problems.k[c] >= 0, "class sizes and k must be non-negative");
    IPDPP_REQUIRE(problems.alpha[c] > 0.0 && std::isfinite(problems.alpha[c]),
                  "alpha must be a finite number > 0");
    const std::int64_t k = std::min(problems.k[c], n);
    table_offsets[c] = table_size;
    out_offsets[c] = out_size;
    if (k > 0 && k < n) {
      table_size += static_cast<std::int64_t>(checked_size(n + 1, std::min(k, n - k) + 1));
      max_k = std::max(max_k, k);
    }
    out_size += samples_per_problem * k;
  }
  // The table kernel's dynamic rows come on top of its static reduction scratch: the limit is
  // what the opt-in maximum leaves of it, so that a k at the edge is a ValueError, not a failed
  // launch.
  const void* tables_kernel = reinterpret_cast<const void*>(structured_tables);
  const std::size_t limit = dynamic_shared_memory_limit(tables_kernel);
  const std::size_t shared = sizeof(double) * 4 * static_cast<std::size_t>(max_k + 1);
  IPDPP_REQUIRE(shared <= limit, "k = " + std::to_string(max_k) +
                                     " is too large for the CUDA IP-DPP sampler (at most " +
                                     std::to_string(limit / (4 * sizeof(double)) - 1) + ")");

  DeviceBuffer<std::int64_t> offsets_d = to_device(problems.offsets.data(), C + 1, stream);
  DeviceBuffer<std::int64_t> k_d = to_device(problems.k.data(), C, stream);
  DeviceBuffer<double> alpha_d = to_device(problems.alpha.data(), C, stream);
  DeviceBuffer<std::int64_t> table_offsets_d = to_device(table_offsets.data(), C, stream);
  DeviceBuffer<std::int64_t> out_offsets_d = to_device(out_offsets.data(), C, stream);
  DeviceBuffer<double> totals(static_cast<std::size_t>(C), stream);
  DeviceBuffer<double> log_e(static_cast<std::size_t>(table_size), stream);
  DeviceBuffer<double> log_h(static_cast<std::size_t>(table_size), stream);
  DeviceBuffer<int> status(static_cast<std::size_t>(C), stream);
  CUDA_CHECK(cudaMemsetAsync(status.data(), 0, sizeof(int) * C, stream));
  DeviceBuffer<unsigned long long> reach(static_cast<std::size_t>(C), stream);
  CUDA_CHECK(cudaMemsetAsync(reach.data(), 0, sizeof(unsigned long long) * C, stream));

  const Device g{p,
                 items,
                 offsets_d.data(),
                 k_d.data(),
                 alpha_d.data(),
                 table_offsets_d.data(),
                 out_offsets_d.data(),
                 totals.data(),
                 reach.data(),
                 log_e.data(),
                 log_h.data(),
                 status.data(),
                 C,
                 samples_per_problem,
                 seed,
                 sample_offset};
  opt_in_dynamic_shared_memory(tables_kernel);
  const unsigned int table_blocks = static_cast<unsigned int>(std::min<std::int64_t>(C, 1 << 20));
  structured_tables<<<table_blocks, kTableThreads, shared, stream>>>(g);
  CUDA_CHECK_LAUNCH("structured_tables");
  structured_walks<<<grid_size(C * samples_per_problem), kThreadsPerBlock, 0, stream>>>(g, out);
  CUDA_CHECK_LAUNCH("structured_walks");

  std::vector<int> host_status(static_cast<std::size_t>(C));
  CUDA_CHECK(cudaMemcpyAsync(host_status.data(), status.data(), sizeof(int) * C,
                             cudaMemcpyDeviceToHost, stream));
  std::vector<unsigned long long> host_reach(static_cast<std::size_t>(C));
  CUDA_CHECK(cudaMemcpyAsync(host_reach.data(), reach.data(), sizeof(unsigned long long) * C,
                             cudaMemcpyDeviceToHost, stream));
  CUDA_CHECK(cudaStreamSynchronize(stream));
  for (std::int64_t c = 0; c < C; ++c) {
    if (host_status[c] == 0) continue;
    const std::int64_t n = problems.offsets[c + 1] - problems.offsets[c];
    const std::string prefix =
        name_classes ? class_error_prefix(c, n, std::min(problems.k[c], n)) : std::string();
    if (host_status[c] & kStatusAlphaTooLarge) {
      double value = 0.0;
      std::memcpy(&value, &host_reach[c], sizeof(value));
      throw std::invalid_argument(prefix + alpha_too_large_message(problems.alpha[c], value));
    }
    throw std::invalid_argument(prefix + rank_below_k_message(std::min(problems.k[c], n)));
  }
}

}  // namespace ipdpp::cuda

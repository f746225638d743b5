// The device side of the CUDA sequential (projection) sampler, apart from its host driver in
// projection_sampler.cu: the gather of each sample's selected eigenvector columns, the fused
// cooperative kernel that draws a sample's items one by one (the exponential race of race.cuh
// against the residuals, then a Gram-Schmidt step in shared memory), and the helpers that take
// the kernel's address (launch, occupancy, shared memory limit). Those helpers live here, with
// the kernel, because the emulator build registers a kernel only where its file takes its
// address. Included by projection_sampler.cu alone.
#pragma once

#include <cooperative_groups.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "cuda/block_reduce.cuh"
#include "cuda/cuda_check.h"
#include "cuda/launch_config.h"
#include "cuda/race.cuh"
#include "cuda/shared_layout.h"

namespace ipdpp::cuda {
namespace cg = cooperative_groups;

// 16-byte vectors: 4 floats or 2 doubles per load.
template <class T>
struct Vec;
template <>
struct Vec<float> {
  using type = float4;
  static constexpr int kWidth = 4;
  __device__ static float dot(const float4& a, const float4& b) {
    return a.x * b.x + a.y * b.y + a.z * b.z + a.w * b.w;
  }
};
template <>
struct Vec<double> {
  using type = double2;
  static constexpr int kWidth = 2;
  __device__ static double dot(const double2& a, const double2& b) { return a.x * b.x + a.y * b.y; }
};

// Row stride of the gathered V_J: k rounded up to whole 16-byte vectors (padding is zero).
template <class T>
std::int64_t padded_width(std::int64_t k) {
  const std::int64_t w = Vec<T>::kWidth;
  return std::max<std::int64_t>(w, (k + w - 1) / w * w);
}

// VJ[s, i, c] = V[i, selected[s, c]] for c < counts[s], 0 up to ld (samples s0 .. s0 + S - 1).
template <class T>
__global__ void gather_selected_columns(const T* __restrict__ V, std::int64_t n, std::int64_t rank,
                                        const std::int64_t* __restrict__ selected,
                                        std::int64_t width, const std::int32_t* __restrict__ counts,
                                        std::int64_t num_samples, std::int64_t ld,
                                        T* __restrict__ VJ) {
  const std::int64_t total = num_samples * n * ld;
  for (std::int64_t e = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t c = e % ld, i = (e / ld) % n, s = e / (ld * n);
    VJ[e] = c < counts[s] ? V[i * rank + selected[s * width + c]] : T(0);
  }
}

struct ProjectionParams {
  const void* VJ;  // num_samples x n x ld
  void* residual;  // num_samples x n
  // 3 x num_samples race winners (kRaceEmpty before the launch): during step t the blocks read
  // slot t % 3, atomicMin their candidates for step t + 1 into slot (t + 1) % 3, and block 0
  // empties slot (t + 2) % 3, which nobody touches between the barriers around step t.
  unsigned long long* winners;
  const std::int32_t* counts;  // num_samples
  std::int64_t* out;           // num_samples x out_stride
  int* status;                 // 0 ok, else kStatus* bits
  std::int64_t n, ld, max_count, out_stride, num_samples;
  int blocks_per_sample;
  std::uint64_t seed, sample_offset;
};

constexpr int kStatusNoCandidate = 1;  // no item with positive residual at a required step
constexpr int kStatusZeroNorm = 2;  // Gram-Schmidt broke down (race.cuh: gram_schmidt_broke_down)

// Shared memory of the fused kernel for max_count = m and row stride ld (in elements of T).
struct ProjectionShared {
  std::size_t W, v, coef, sums, mins, chosen, bytes;
  template <class T>
  IPDPP_HD static ProjectionShared make(std::int64_t m, std::int64_t ld) {
    SharedLayout layout;
    ProjectionShared s{};
    s.W = layout.take(static_cast<std::size_t>(m * ld), sizeof(T));  // basis rows w_1..w_t
    s.v = layout.take(static_cast<std::size_t>(ld), sizeof(T));      // chosen row / new w
    s.coef = layout.take(static_cast<std::size_t>(m), sizeof(T));    // Gram-Schmidt coefficients
    s.sums = layout.take(33, sizeof(T));
    s.mins = layout.take(33, sizeof(unsigned long long));
    s.chosen = layout.take(static_cast<std::size_t>(m), sizeof(std::int64_t));
    s.bytes = layout.size();
    return s;
  }
};

template <class T>
std::size_t projection_shared_bytes(std::int64_t m, std::int64_t ld) {
  return ProjectionShared::make<T>(m, ld).bytes;
}

// One pass over the rows of this block: updates residuals (or initialises them as squared row
// norms when kInitial) and returns the block's best race entry for `race_step`.
// Rows are taken 4 at a time (one Philox block gives their 4 race variates) by groups of G lanes;
// each lane accumulates a slice of 16-byte vectors of all 4 rows, so 4 x (ld / (G x width))
// independent loads are in flight per lane before the first use.
template <class T, int G, bool kInitial>
__device__ unsigned long long projection_pass(const T* __restrict__ VJ, T* __restrict__ residual,
                                              const T* __restrict__ w, std::int64_t n,
                                              std::int64_t ld, std::int64_t quad_begin,
                                              std::int64_t quad_end, std::int64_t chosen,
                                              std::uint64_t seed, std::uint64_t sample,
                                              std::uint32_t race_step) {
  using V4 = typename Vec<T>::type;
  const int lane_in_group = threadIdx.x % G;
  const int group = threadIdx.x / G;
  const int groups = blockDim.x / G;
  const std::int64_t chunks = ld / Vec<T>::kWidth;
  unsigned long long best = kRaceEmpty;
  // The trip count is the same for every thread of the block (the loop runs over `base`), so
  // the group shuffles below always see all 32 lanes of the warp; groups past the end idle.
  for (std::int64_t base = quad_begin; base < quad_end; base += groups) {
    const std::int64_t quad = base + group;
    const bool active = quad < quad_end;
    const std::int64_t row0 = quad * 4;
    T acc[4] = {T(0), T(0), T(0), T(0)};
    for (std::int64_t c = lane_in_group; active && c < chunks; c += G) {
      const V4 wv = kInitial ? V4{} : reinterpret_cast<const V4*>(w)[c];
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        if (row0 + r < n) {
          const V4 x = reinterpret_cast<const V4*>(VJ + (row0 + r) * ld)[c];
          acc[r] += kInitial ? Vec<T>::dot(x, x) : Vec<T>::dot(x, wv);
        }
      }
    }
#pragma unroll
    for (int r = 0; r < 4; ++r)
      for (int offset = G / 2; offset > 0; offset >>= 1)
        acc[r] += __shfl_xor_sync(0xffffffffu, acc[r], offset, G);
    // Lane r < 4 finishes row r of the quad. The register array is indexed with constants
    // only (a run-time index would move it to local memory).
    T dot = acc[0];
#pragma unroll
    for (int r = 1; r < 4; ++r) {
      if (lane_in_group == r) dot = acc[r];
    }
    if (active && lane_in_group < 4) {
      const std::int64_t i = row0 + lane_in_group;
      if (i < n) {
        T value = kInitial ? dot : residual[i] - dot * dot;
        // The chosen row's residual is exactly 0 in exact arithmetic; rounding could leave a
        // tiny positive value and let the same item win again.
        if (i == chosen || !(value > T(0))) value = T(0);
        residual[i] = value;
        if (value > T(0)) {  // in T: an fp64 residual below float's range still races
          const float race = race_exponential(seed, sample, race_step,
                                              static_cast<std::uint64_t>(quad), lane_in_group);
          const unsigned long long entry =
              pack_race_key(race_key(race, value), static_cast<std::uint32_t>(i));
          best = entry < best ? entry : best;
        }
      }
    }
  }
  return best;
}

template <class T, int G>
__global__ void __launch_bounds__(kProjectionThreads) projection_kernel(const ProjectionParams p) {
  cg::grid_group grid = cg::this_grid();
  extern __shared__ __align__(16) unsigned char shared_raw[];
  const std::int64_t m = p.max_count, ld = p.ld;
  const ProjectionShared layout = ProjectionShared::make<T>(m, ld);
  T* W = reinterpret_cast<T*>(shared_raw + layout.W);  // m x ld orthonormal basis rows
  T* v = reinterpret_cast<T*>(shared_raw + layout.v);
  T* coef = reinterpret_cast<T*>(shared_raw + layout.coef);
  T* sum_scratch = reinterpret_cast<T*>(shared_raw + layout.sums);
  auto* min_scratch = reinterpret_cast<unsigned long long*>(shared_raw + layout.mins);
  auto* chosen = reinterpret_cast<std::int64_t*>(shared_raw + layout.chosen);

  const std::int64_t s = blockIdx.x / p.blocks_per_sample;
  const int b = blockIdx.x % p.blocks_per_sample;
  const std::int64_t B = p.blocks_per_sample;
  const int count = p.counts[s];
  const std::uint64_t sample = p.sample_offset + static_cast<std::uint64_t>(s);
  const T* VJ = static_cast<const T*>(p.VJ) + s * p.n * ld;
  T* residual = static_cast<T*>(p.residual) + s * p.n;
  const std::int64_t quads = (p.n + 3) / 4;
  const std::int64_t per_block = (quads + B - 1) / B;
  const std::int64_t quad_begin = b * per_block < quads ? b * per_block : quads;
  const std::int64_t quad_end = quad_begin + per_block < quads ? quad_begin + per_block : quads;
  unsigned long long* winners = p.winners;
  const std::int64_t slots = p.num_samples;

  if (count > 0) {
    const unsigned long long best =
        block_min_u64(projection_pass<T, G, true>(VJ, residual, nullptr, p.n, ld, quad_begin,
                                                  quad_end, -1, p.seed, sample, 0),
                      min_scratch);
    if (threadIdx.x == 0) atomicMin(winners + s, best);
  }
  grid.sync();

  bool failed = false;
  for (std::int64_t t = 0; t < m; ++t) {
    // `count` and `failed` are uniform over the blocks of a sample, so either all of its blocks
    // do the step or none; every block reaches grid.sync() below either way.
    if (b == 0 && threadIdx.x == 0) winners[((t + 2) % 3) * slots + s] = kRaceEmpty;
    if (t < count && !failed) {
      // One 64-bit atomicMin per block published the step's winner (the smallest key, ties to
      // the smallest item: the same as reducing every block's candidate). __ldcg: written by
      // other blocks in this launch; L1 is not coherent.
      const unsigned long long best = __ldcg(winners + (t % 3) * slots + s);
      if (race_is_empty(best)) {
        failed = true;
        if (b == 0 && threadIdx.x == 0) atomicOr(p.status, kStatusNoCandidate);
      } else {
        const std::int64_t j = race_item(best);
        T row_partial = T(0);
        for (std::int64_t e = threadIdx.x; e < ld; e += blockDim.x) {
          v[e] = VJ[j * ld + e];
          row_partial += v[e] * v[e];
        }
        if (threadIdx.x == 0) chosen[t] = j;
        const T row_norm2 = block_sum(row_partial, sum_scratch);  // syncs the block
        // w = (I - W W^T) v, twice ("twice is enough" for orthogonality in floating point).
        const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
        for (int pass = 0; pass < 2; ++pass) {
          for (std::int64_t q = warp; q < t; q += warps) {
            T dot = T(0);
            for (std::int64_t e = lane; e < ld; e += 32) dot += W[q * ld + e] * v[e];
            for (int offset = 16; offset > 0; offset >>= 1)
              dot += __shfl_xor_sync(0xffffffffu, dot, offset);
            if (lane == 0) coef[q] = dot;
          }
          __syncthreads();
          for (std::int64_t e = threadIdx.x; e < ld; e += blockDim.x) {
            T value = v[e];
            for (std::int64_t q = 0; q < t; ++q) value -= coef[q] * W[q * ld + e];
            v[e] = value;
          }
          __syncthreads();
        }
        T partial = T(0);
        for (std::int64_t e = threadIdx.x; e < ld; e += blockDim.x) partial += v[e] * v[e];
        const T norm2 = block_sum(partial, sum_scratch);
        if (gram_schmidt_broke_down(norm2, row_norm2, count)) {
          failed = true;
          if (b == 0 && threadIdx.x == 0) atomicOr(p.status, kStatusZeroNorm);
        } else {
          const T inv = T(1) / sqrt(norm2);
          for (std::int64_t e = threadIdx.x; e < ld; e += blockDim.x) W[t * ld + e] = v[e] * inv;
          __syncthreads();
          if (t + 1 < count) {
            const unsigned long long next =
                block_min_u64(projection_pass<T, G, false>(VJ, residual, W + t * ld, p.n, ld,
                                                           quad_begin, quad_end, j, p.seed, sample,
                                                           static_cast<std::uint32_t>(t + 1)),
                              min_scratch);
            if (threadIdx.x == 0) atomicMin(winners + ((t + 1) % 3) * slots + s, next);
          }
        }
      }
    }
    grid.sync();
  }

  // Block 0 of each sample writes its items in increasing order.
  if (b == 0) {
    write_sorted_row(p.out + s * p.out_stride, p.out_stride, chosen, failed ? 0 : count);
  }
}

template <class T, int G>
void launch_projection(const ProjectionParams& params, unsigned int blocks, std::size_t shared,
                       cudaStream_t stream) {
  ProjectionParams p = params;
  void* args[] = {&p};
  CUDA_CHECK(cudaLaunchCooperativeKernel(reinterpret_cast<void*>(projection_kernel<T, G>),
                                         dim3(blocks), dim3(kProjectionThreads), args, shared,
                                         stream));
  CUDA_CHECK_LAUNCH("projection_kernel");
}

template <class T, int G>
int max_blocks_per_sm(std::size_t shared) {
  const void* kernel = reinterpret_cast<const void*>(projection_kernel<T, G>);
  opt_in_dynamic_shared_memory(kernel);
  int per_sm = 0;
  CUDA_CHECK(
      cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kProjectionThreads, shared));
  return per_sm;
}

// Dynamic shared memory every instantiation of the fused kernel for T can use (none has static
// shared memory; the G = 4 instantiation stands for all).
template <class T>
std::size_t projection_shared_limit() {
  return dynamic_shared_memory_limit(reinterpret_cast<const void*>(projection_kernel<T, 4>));
}

}  // namespace ipdpp::cuda

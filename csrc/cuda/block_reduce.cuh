// Block-wide reductions (every thread gets the result) and the block-wide write of a sample's
// row, used by the sampling kernels.
#pragma once

#include <cstdint>

namespace ipdpp::cuda {

constexpr unsigned long long kRaceEmpty = ~0ull;

// Block-wide minimum of a 64-bit value; every thread gets the result. `scratch` holds one
// entry per warp plus one. Contains __syncthreads: call from all threads of the block.
__device__ __forceinline__ unsigned long long block_min_u64(unsigned long long value,
                                                            unsigned long long* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
  for (int offset = 16; offset > 0; offset >>= 1) {
    const unsigned long long other = __shfl_xor_sync(0xffffffffu, value, offset);
    value = other < value ? other : value;
  }
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[warp] = value;
  __syncthreads();
  if (warp == 0) {
    value = lane < warps ? scratch[lane] : kRaceEmpty;
    for (int offset = 16; offset > 0; offset >>= 1) {
      const unsigned long long other = __shfl_xor_sync(0xffffffffu, value, offset);
      value = other < value ? other : value;
    }
    if (lane == 0) scratch[32] = value;
  }
  __syncthreads();
  return scratch[32];
}

// Block-wide sum; every thread gets the result. `scratch` holds 33 entries of T.
template <class T>
__device__ __forceinline__ T block_sum(T value, T* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
  for (int offset = 16; offset > 0; offset >>= 1)
    value += __shfl_xor_sync(0xffffffffu, value, offset);
  __syncthreads();
  if (lane == 0) scratch[warp] = value;
  __syncthreads();
  if (warp == 0) {
    value = lane < warps ? scratch[lane] : T(0);
    for (int offset = 16; offset > 0; offset >>= 1)
      value += __shfl_xor_sync(0xffffffffu, value, offset);
    if (lane == 0) scratch[32] = value;
  }
  __syncthreads();
  return scratch[32];
}

// Writes the `done` items of `chosen` to row[0..done) in increasing order and pads
// row[done..width) with -1, all threads of the block together (a rank sort: k is small, and no
// thread needs another's result).
__device__ __forceinline__ void write_sorted_row(std::int64_t* row, std::int64_t width,
                                                 const std::int64_t* chosen, std::int64_t done) {
  for (std::int64_t e = threadIdx.x; e < width; e += blockDim.x) {
    if (e < done) {
      const std::int64_t item = chosen[e];
      std::int64_t rank = 0;
      for (std::int64_t f = 0; f < done; ++f) rank += chosen[f] < item;
      row[rank] = item;
    } else {
      row[e] = -1;
    }
  }
}

}  // namespace ipdpp::cuda

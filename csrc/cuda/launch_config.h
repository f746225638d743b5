// Launch configuration of the CUDA kernels, in one place, with the reason for each number.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <set>
#include <utility>

#include "cuda/cuda_check.h"

namespace ipdpp::cuda {

// Threads per block of the element-wise and per-sample helper kernels: a multiple of the warp
// size that gives full occupancy on sm_90 (2048 threads per SM = 8 blocks) with few registers.
constexpr int kThreadsPerBlock = 256;

// Threads per block of the fused sequential (projection) kernel. 256 threads = 8 warps: enough
// independent row loads in flight per block, while the per-step work that every block repeats
// (winner reduction, Gram-Schmidt of the chosen row in k-space) still has threads to spread over.
constexpr int kProjectionThreads = 256;

// Warps per sample in the rejection sampler. Each warp evaluates one proposal of the sample
// concurrently; the first accepted one in proposal order wins (see rejection_sampler.cu), so 4
// warps cut the per-step latency ~4x when the acceptance rate is low, at the cost of discarded
// evaluations when it is high.
constexpr int kRejectionWarps = 4;

// Rows of V per elementary-DPP chunk of the batched sequential phase: samples are processed in
// chunks whose gathered eigenvector copies (n x k each) fit into this many bytes of scratch.
constexpr std::int64_t kSequentialScratchBytes = std::int64_t{2} << 30;

// Rows of the feature matrix converted to float64 at a time while forming the dual Gram matrix
// and the eigenvectors: bounds the scratch to kGramChunkRows x d doubles (128 MiB at d = 256)
// while each chunk's product is still large enough (2^16 x d x d) to run at full cuBLAS speed.
constexpr std::int64_t kGramChunkRows = std::int64_t{1} << 16;

// Blocks for a 1-D grid over `count` items with kThreadsPerBlock threads, capped so that a grid-
// stride loop covers the rest (the cap keeps the grid within the launch limit for any count).
inline unsigned int grid_size(std::int64_t count, int threads = kThreadsPerBlock) {
  constexpr std::int64_t kMaxBlocks = std::int64_t{1} << 20;
  const std::int64_t blocks = (count + threads - 1) / threads;
  return static_cast<unsigned int>(blocks < kMaxBlocks ? (blocks > 0 ? blocks : 1) : kMaxBlocks);
}

// Number of streaming multiprocessors of the current device.
inline int multiprocessor_count() {
  int device = 0, sms = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  return sms;
}

// Largest shared memory (static + dynamic) a block may opt into on the current device.
inline int max_shared_memory_per_block() {
  int device = 0, bytes = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  CUDA_CHECK(cudaDeviceGetAttribute(&bytes, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  return bytes;
}

// Largest dynamic shared memory `kernel` can launch with on the current device: the opt-in
// maximum per block less the kernel's own static shared memory (__shared__ arrays).
inline std::size_t dynamic_shared_memory_limit(const void* kernel) {
  cudaFuncAttributes attributes{};
  CUDA_CHECK(cudaFuncGetAttributes(&attributes, kernel));
  const auto total = static_cast<std::size_t>(max_shared_memory_per_block());
  return attributes.sharedSizeBytes < total ? total - attributes.sharedSizeBytes : 0;
}

// Raises `kernel`'s dynamic-shared-memory limit to dynamic_shared_memory_limit once per (kernel,
// device), under a lock. Setting the attribute per call to the size that call needs would race:
// two host threads launching one kernel with different sizes could lower the limit between the
// other's set and launch. One value that fits every launch, set once, is never lowered.
inline void opt_in_dynamic_shared_memory(const void* kernel) {
  static std::mutex mutex;
  static std::set<std::pair<const void*, int>> done;
  int device = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  const std::lock_guard<std::mutex> lock(mutex);
  if (done.count({kernel, device}) != 0) return;
  CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                  static_cast<int>(dynamic_shared_memory_limit(kernel))));
  done.insert({kernel, device});
}

// Largest k >= 1 such that k + 1 no longer fits into `limit` bytes: `shared_bytes(k)` is the
// dynamic shared memory a kernel needs for k items, increasing in k; k = 1 is returned even if it
// does not fit itself.
template <class SharedBytes>
std::int64_t largest_k_in_shared_memory(std::size_t limit, SharedBytes shared_bytes) {
  std::int64_t k = 1;
  while (shared_bytes(k + 1) <= limit) ++k;
  return k;
}

}  // namespace ipdpp::cuda

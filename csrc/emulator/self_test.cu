// Kernels with deliberate bugs, one per kind of error the emulator claims to catch, so that
// tests/test_emulated.py can show that it catches them (a check that is never seen to fire
// proves nothing). Built through preprocess.py like the real kernels, only into
// ipdpp._cuda_emulated; emulator.self_test(name) runs one.
#include <cooperative_groups.h>
#include <cuda_runtime_api.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "cuda/cuda_check.h"
#include "cuda/device_buffer.h"
#include "emulator/self_test.h"

namespace ipdpp::emu {
namespace {

namespace cg = cooperative_groups;

// Half of each warp shuffles while the other half waits at the block barrier.
__global__ void split_warp(int* out) {
  int v = static_cast<int>(threadIdx.x);
  if ((threadIdx.x & 31) < 16) {
    v = __shfl_xor_sync(0xffffffffu, v, 1);
  } else {
    __syncthreads();
  }
  out[threadIdx.x] = v;
}

// Odd and even threads at two different __syncthreads.
__global__ void divergent_barrier(int* out) {
  if (threadIdx.x % 2 == 0) {
    __syncthreads();
  } else {
    __syncthreads();
  }
  out[threadIdx.x] = 1;
}

// Thread 0 leaves before the barrier the others wait at.
__global__ void early_exit(int* out) {
  if (threadIdx.x == 0) return;
  __syncthreads();
  out[threadIdx.x] = 1;
}

// Lane 0 reads lane 16, which the mask leaves out.
__global__ void shuffle_outside_mask(int* out) {
  int v = static_cast<int>(threadIdx.x);
  if (threadIdx.x < 16) v = __shfl_sync(0x0000ffffu, v, static_cast<int>(threadIdx.x) + 16, 32);
  out[threadIdx.x] = v;
}

// Lanes disagree on the mask of one __syncwarp.
__global__ void mask_mismatch(int* out) {
  __syncwarp(threadIdx.x == 0 ? 0xffffffffu : 0x7fffffffu);
  out[threadIdx.x] = 1;
}

// Writes one element past the dynamic shared memory the launch asked for.
__global__ void dynamic_overrun(int* out, int count) {
  extern __shared__ int dynamic_words[];
  if (threadIdx.x == 0) dynamic_words[count] = 1;
  out[threadIdx.x] = 1;
}

// Writes one element past a static __shared__ array.
__global__ void static_overrun(int* out, int index) {
  __shared__ int words[4];
  if (threadIdx.x == 0) words[index] = 1;
  out[threadIdx.x] = 1;
}

// Two threads write one shared word without a barrier between them: the result depends on
// which runs first.
__global__ void write_race(int* out) {
  __shared__ int word;
  if (threadIdx.x == 0) word = 0;
  __syncthreads();
  if (threadIdx.x == 1 || threadIdx.x == 2) word = static_cast<int>(threadIdx.x);
  __syncthreads();
  out[threadIdx.x] = word;
}

// Reads shared memory nobody wrote.
__global__ void uninitialised_read(int* out) {
  __shared__ int word;
  out[threadIdx.x] = word;
}

__global__ void grid_sync(int* out) {
  cg::this_grid().sync();
  out[blockIdx.x * blockDim.x + threadIdx.x] = 1;
}

// Synchronises forever.
__global__ void endless(int* out) {
  while (out[0] >= 0) __syncthreads();
}

__global__ void __launch_bounds__(64) bounded(int* out) { out[threadIdx.x] = 1; }

// The correct kernel of the set: a warp and block reduction, the same in every order.
__global__ void reduce(int* out) {
  __shared__ int partial[32];
  int v = static_cast<int>(threadIdx.x);
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  if ((threadIdx.x & 31) == 0) partial[threadIdx.x >> 5] = v;
  __syncthreads();
  int total = 0;
  for (unsigned w = 0; w < blockDim.x / 32; ++w) total += partial[w];
  out[threadIdx.x] = total;
}

}  // namespace

std::vector<int> self_test(const std::string& name) {
  constexpr int kThreads = 64;
  std::vector<int> host(256, -1);
  cuda::DeviceBuffer<int> out(host.size(), nullptr);
  CUDA_CHECK(cudaMemset(out.data(), 0, host.size() * sizeof(int)));
  int* o = out.data();
  if (name == "split_warp") {
    split_warp<<<1, kThreads>>>(o);
  } else if (name == "divergent_barrier") {
    divergent_barrier<<<1, kThreads>>>(o);
  } else if (name == "early_exit") {
    early_exit<<<1, kThreads>>>(o);
  } else if (name == "shuffle_outside_mask") {
    shuffle_outside_mask<<<1, 32>>>(o);
  } else if (name == "mask_mismatch") {
    mask_mismatch<<<1, 32>>>(o);
  } else if (name == "dynamic_overrun") {
    dynamic_overrun<<<1, kThreads, 16 * sizeof(int)>>>(o, 16);
  } else if (name == "static_overrun") {
    static_overrun<<<1, kThreads>>>(o, 4);
  } else if (name == "write_race") {
    write_race<<<1, kThreads>>>(o);
  } else if (name == "uninitialised_read") {
    uninitialised_read<<<1, kThreads>>>(o);
  } else if (name == "grid_sync_not_cooperative") {
    grid_sync<<<2, kThreads>>>(o);
  } else if (name == "cooperative_too_large") {
    int per_sm = 0, sms = 0;
    CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(
        &per_sm, reinterpret_cast<const void*>(grid_sync), 1024, 0));
    CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
    void* args[] = {&o};
    CUDA_CHECK(cudaLaunchCooperativeKernel(reinterpret_cast<void*>(grid_sync),
                                           dim3(per_sm * sms + 1), dim3(1024), args, 0, nullptr));
  } else if (name == "dynamic_above_attribute") {
    dynamic_overrun<<<1, kThreads, 64 * 1024>>>(o, 0);  // the default limit is 48 KiB
  } else if (name == "endless") {
    endless<<<1, kThreads>>>(o);
  } else if (name == "launch_bounds") {
    bounded<<<1, 2 * 64>>>(o);
  } else if (name == "reduce") {
    reduce<<<1, 256>>>(o);
  } else {
    throw std::invalid_argument("unknown self test '" + name + "'");
  }
  CUDA_CHECK_LAUNCH("self test");
  CUDA_CHECK(cudaMemcpy(host.data(), o, host.size() * sizeof(int), cudaMemcpyDeviceToHost));
  return host;
}

}  // namespace ipdpp::emu

// Emulated build: the part of cooperative groups the kernels use. grid.sync() is a barrier over
// every thread of a cooperative launch (anything else is an error, as on a GPU).
#pragma once

#include "emulator/device.h"

namespace cooperative_groups {

class grid_group {
 public:
  void sync(const char* file = __builtin_FILE(), int line = __builtin_LINE()) const {
    ipdpp::emu::grid_barrier(file, line);
  }
  unsigned long long size() const {
    return 1ull * gridDim.x * gridDim.y * gridDim.z * blockDim.x * blockDim.y * blockDim.z;
  }
  unsigned long long thread_rank() const {
    const unsigned long long block =
        (1ull * blockIdx.z * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x;
    const unsigned long long in_block =
        (1ull * threadIdx.z * blockDim.y + threadIdx.y) * blockDim.x + threadIdx.x;
    return block * blockDim.x * blockDim.y * blockDim.z + in_block;
  }
  bool is_valid() const { return true; }
};

class thread_block {
 public:
  void sync(const char* file = __builtin_FILE(), int line = __builtin_LINE()) const {
    ipdpp::emu::block_barrier(file, line);
  }
  unsigned size() const { return blockDim.x * blockDim.y * blockDim.z; }
  unsigned thread_rank() const {
    return (threadIdx.z * blockDim.y + threadIdx.y) * blockDim.x + threadIdx.x;
  }
};

inline grid_group this_grid() { return grid_group(); }
inline thread_block this_thread_block() { return thread_block(); }

}  // namespace cooperative_groups

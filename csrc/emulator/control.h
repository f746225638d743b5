// Settings and introspection of the emulated device, for the module's `emulator` submodule
// (module.cpp) and the tests: the device's limits, the launch log, allocation counts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ipdpp::emu {

// The fake device. Shared-memory and thread limits are those of an H100/H200 (sm_90); the
// number of multiprocessors is small so that cooperative launches, which keep every thread of
// the grid alive as a fiber, stay cheap, and so that co-residency limits are reached by tests.
struct DeviceLimits {
  int multiprocessors = 4;
  int shared_per_block = 48 * 1024;         // without opting in
  int shared_per_block_optin = 227 * 1024;  // cudaDevAttrMaxSharedMemoryPerBlockOptin
  int shared_per_multiprocessor = 228 * 1024;
  int reserved_shared_per_block = 1024;  // taken by the system from every resident block
  int threads_per_multiprocessor = 2048;
  int blocks_per_multiprocessor = 32;
  int threads_per_block = 1024;
  std::size_t global_memory = std::size_t{8} << 30;  // cudaMalloc fails beyond this
};

DeviceLimits device_limits();
void set_device_limits(const DeviceLimits& limits);

struct LaunchRecord {
  std::string kernel;
  unsigned grid[3], block[3];
  std::size_t dynamic_shared;
  bool cooperative;
};
std::vector<LaunchRecord> launch_log();
void clear_launch_log();

// Device allocations currently alive (cudaMalloc / cudaMallocAsync not yet freed).
std::size_t live_allocations();

}  // namespace ipdpp::emu

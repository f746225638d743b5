// Execution of one emulated kernel launch on the calling host thread (scheduler.cpp), and the
// emulator's settings. Internal to the emulator: the runtime (runtime.cpp) validates a launch
// like a GPU does and then hands it to execute().
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "emulator/kernel_registry.h"
#include "emulator/runtime.h"

namespace ipdpp::emu {

// The order in which runnable fibers resume after every synchronisation point (and in which
// blocks of an ordinary launch run): by thread index, by descending thread index, or a fresh
// pseudo-random permutation each time (seeded, so a run is reproducible).
enum class ThreadOrder { kForward, kReversed, kShuffled };

void set_thread_order(ThreadOrder order);
ThreadOrder thread_order();
void set_shuffle_seed(std::uint64_t seed);
std::uint64_t shuffle_seed();
// Completed barriers and warp collectives one launch may perform before it is stopped as a
// runaway (a kernel that loops without end still synchronises; one that does not is not caught).
void set_watchdog_rounds(std::uint64_t rounds);
std::uint64_t watchdog_rounds();

struct KernelInfo {
  std::string name;
  InvokeFn invoke = nullptr;
  ProbeFn probe = nullptr;
  bool probed = false;
  int launch_bounds = 0;                    // __launch_bounds__ max threads, 0 if none
  std::vector<std::size_t> static_offsets;  // of each static __shared__ array
  std::size_t static_bytes = 0;
  int max_dynamic_shared = 48 * 1024;  // cudaFuncAttributeMaxDynamicSharedMemorySize
};

struct Execution {
  const KernelInfo* kernel;
  const void* address;
  dim3 grid, block;
  std::size_t dynamic_shared;
  bool cooperative;
  void* const* args;
  std::uint64_t launch_id;
};

struct Outcome {
  cudaError_t status = cudaSuccess;
  std::string message;  // what went wrong, naming threads and source lines
};

// Runs every thread of the launch to completion (or to the first error).
Outcome execute(const Execution& execution);

// Runs the kernel's prologue only: its static shared arrays and launch bounds into `info`.
void probe_kernel(KernelInfo& info, const void* address);

// Deterministic garbage for memory a GPU would not initialise.
void fill_garbage(unsigned char* data, std::size_t bytes, std::uint64_t salt);

}  // namespace ipdpp::emu

// The emulated device's process-wide state and error recording, shared by the two halves of the
// emulator's CUDA runtime: runtime.cpp (errors, device queries, kernels and launches) and
// device_memory.cpp (allocations, copies, memory pools, stream and event handles). Both report
// errors through record() and find allocations and faults here. Internal to the emulator.
#pragma once

#include <cstddef>
#include <map>
#include <mutex>
#include <string>

#include "emulator/control.h"
#include "emulator/runtime.h"

namespace ipdpp::emu::runtime_state {

extern std::mutex g_mutex;  // guards everything below (and the kernel table of runtime.cpp)
extern DeviceLimits g_limits;
extern std::map<void*, std::size_t> g_allocations;  // live device allocations and their sizes
extern std::size_t g_allocated;
extern std::string g_fault;  // found outside a launch, reported by the next synchronising call

// Sets the thread's last error and the detail cudaGetErrorString gives for it; returns `code`.
cudaError_t record(cudaError_t code, std::string detail);
// Reports (once) a fault found when memory was freed.
cudaError_t take_fault();
std::string bytes_text(std::size_t bytes);

}  // namespace ipdpp::emu::runtime_state

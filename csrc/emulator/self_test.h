// The emulator's self test (self_test.cu): kernels with one deliberate bug each.
#pragma once

#include <string>
#include <vector>

namespace ipdpp::emu {

// Runs the self-test kernel `name` and returns its output (256 ints); a launch the emulator
// rejects raises ipdpp::cuda::CudaError naming what it found.
std::vector<int> self_test(const std::string& name);

}  // namespace ipdpp::emu

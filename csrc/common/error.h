// Error types shared by the CPU and CUDA code. User errors become ValueError in Python
// (pybind11 maps std::invalid_argument), internal failures carry file:line.
#pragma once

#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

namespace ipdpp {

struct InternalError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

[[noreturn]] inline void throw_internal(const char* what, const char* file, int line) {
  throw InternalError(std::string("ipdpp internal error: ") + what + " (" + file + ":" +
                      std::to_string(line) + ")");
}

// Product of sizes for an allocation; throws instead of wrapping around.
inline std::size_t checked_size(std::int64_t a, std::int64_t b, std::int64_t c = 1) {
  if (a < 0 || b < 0 || c < 0) throw std::invalid_argument("negative array size");
  const auto max = static_cast<unsigned __int128>(std::numeric_limits<std::size_t>::max() / 16);
  const unsigned __int128 p = static_cast<unsigned __int128>(a) * b * c;
  if (p > max)
    throw std::length_error("array of " + std::to_string(a) + "x" + std::to_string(b) + "x" +
                            std::to_string(c) + " elements is too large");
  return static_cast<std::size_t>(p);
}

}  // namespace ipdpp

// A user-facing precondition (maps to ValueError).
#define IPDPP_REQUIRE(cond, msg)                                \
  do {                                                          \
    if (!(cond)) throw std::invalid_argument(std::string(msg)); \
  } while (0)

// An internal invariant; never used for user input.
#define IPDPP_ASSERT(cond)                                           \
  do {                                                               \
    if (!(cond)) ::ipdpp::throw_internal(#cond, __FILE__, __LINE__); \
  } while (0)

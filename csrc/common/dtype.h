// The floating-point types the samplers run in, and the one place that turns the run-time dtype
// into a compile-time type: dispatch_dtype(dtype, [&](auto tag) { using T = decltype(tag); ... }).
#pragma once

#include <cstddef>

namespace ipdpp {

enum class DType { kFloat32, kFloat64 };

inline std::size_t dtype_size(DType dtype) { return dtype == DType::kFloat32 ? 4 : 8; }

inline const char* dtype_name(DType dtype) {
  return dtype == DType::kFloat32 ? "float32" : "float64";
}

// Calls fn(float{}) or fn(double{}); both calls must return the same type.
template <class Fn>
decltype(auto) dispatch_dtype(DType dtype, Fn&& fn) {
  if (dtype == DType::kFloat32) return fn(float{});
  return fn(double{});
}

}  // namespace ipdpp

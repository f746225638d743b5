// Zero-copy views of numpy arrays for the bindings. The Python layer has already checked
// dtypes, shapes and finiteness and passes C-contiguous float32/float64 arrays; these helpers
// re-check cheaply as a backstop and hand raw pointers to the kernels.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/dtype.h"

namespace ipdpp::bindings {

namespace py = pybind11;

inline DType real_dtype(const py::array& a, const char* name) {
  if (a.dtype().is(py::dtype::of<double>())) return DType::kFloat64;
  if (a.dtype().is(py::dtype::of<float>())) return DType::kFloat32;
  throw py::type_error(std::string(name) + " must be float32 or float64");
}

inline void require_c_contiguous(const py::array& a, const char* name) {
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(std::string(name) + " must be C-contiguous");
}

inline void require_ndim(const py::array& a, int ndim, const char* name) {
  if (a.ndim() != ndim)
    throw py::value_error(std::string(name) + " must have " + std::to_string(ndim) +
                          " dimensions; got " + std::to_string(a.ndim()));
}

template <class T>
const T* typed_data(const py::array& a) {
  return static_cast<const T*>(a.data());
}

// Moves a std::vector into a numpy array without copying; the array owns the buffer.
template <class T>
py::array_t<T> to_numpy(std::vector<T>&& v, std::vector<py::ssize_t> shape) {
  auto* owner = new std::vector<T>(std::move(v));  // handed to the capsule below at once
  py::capsule free_when_done(owner, [](void* p) { delete static_cast<std::vector<T>*>(p); });
  return py::array_t<T>(shape, owner->data(), free_when_done);
}

template <class T>
py::array_t<T> to_numpy(std::vector<T>&& v) {
  const auto n = static_cast<py::ssize_t>(v.size());
  return to_numpy(std::move(v), {n});
}

}  // namespace ipdpp::bindings

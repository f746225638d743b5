// Helpers shared by the _cuda binding files: pointer and stream conversion, dtype names, and the
// Python-side owner of a DeviceSpectrum.
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>
#include <memory>
#include <string>

#include "cuda/cuda_check.h"
#include "cuda/spectrum.h"

namespace ipdpp::bindings {

namespace py = pybind11;

inline DType parse_dtype(const std::string& name) {
  if (name == "float32") return DType::kFloat32;
  if (name == "float64") return DType::kFloat64;
  throw py::type_error("dtype must be 'float32' or 'float64'; got '" + name + "'");
}

// Integers from Python (data_ptr(), cuda_stream) to pointers.
template <class T>
T* as_pointer(std::uintptr_t address) {
  return reinterpret_cast<T*>(address);
}
inline cudaStream_t as_stream(std::uintptr_t handle) {
  return reinterpret_cast<cudaStream_t>(handle);
}

// A spectrum owned by Python. Its buffers are freed on the device they live on, whatever device
// is current when the Python object dies.
inline std::shared_ptr<cuda::DeviceSpectrum> own(std::unique_ptr<cuda::DeviceSpectrum> spectrum) {
  return std::shared_ptr<cuda::DeviceSpectrum>(spectrum.release(), [](cuda::DeviceSpectrum* p) {
    // Failures here (no usable driver, e.g. during interpreter exit) only leak; they must not
    // leave a stale "last error" for the next launch check (cuda_check.h).
    int previous = 0;
    const bool known = cudaGetDevice(&previous) == cudaSuccess;
    if (!known) cuda::clear_last_error();
    const bool switch_device = known && previous != p->device;
    if (switch_device && cudaSetDevice(p->device) != cudaSuccess) cuda::clear_last_error();
    delete p;
    if (switch_device && cudaSetDevice(previous) != cudaSuccess) cuda::clear_last_error();
  });
}

}  // namespace ipdpp::bindings

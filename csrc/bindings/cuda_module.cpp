// The _cuda extension: GPU kernels behind a pointer-based interface. The Python side
// (ipdpp/_gpu.py, through ipdpp/_adapters.py) passes raw device pointers, shapes, the device
// ordinal and the caller's current stream (torch / cupy); results are written into buffers it
// allocated with the caller's framework. Long calls release the GIL.
//
// The CPU emulator's build compiles this same file as _cuda_emulated (IPDPP_CUDA_EMULATOR), with
// the emulator's own additions (csrc/emulator/module.cpp).
#include <pybind11/pybind11.h>

#include "common/error.h"
#include "cuda/cuda_check.h"

namespace py = pybind11;

namespace ipdpp::bindings {
void register_cuda_spectrum(py::module_& m);
void register_cuda_sampling(py::module_& m);
}  // namespace ipdpp::bindings

#if defined(IPDPP_CUDA_EMULATOR)
namespace ipdpp::emu {
void register_emulator(py::module_& m);
}  // namespace ipdpp::emu
#define IPDPP_CUDA_MODULE _cuda_emulated
#else
#define IPDPP_CUDA_MODULE _cuda
#endif

PYBIND11_MODULE(IPDPP_CUDA_MODULE, m) {
  m.doc() = "ipdpp CUDA kernels; use the Python API in ipdpp instead of this module.";
  // Translators are tried newest first, so the more specific out-of-memory type comes last.
  py::register_exception<ipdpp::cuda::CudaError>(m, "CudaError", PyExc_RuntimeError);
  py::register_exception<ipdpp::cuda::CudaOutOfMemory>(m, "CudaOutOfMemoryError",
                                                       PyExc_MemoryError);
  // The same Python class as ipdpp._core.InternalError, so one `except` covers both backends.
  static py::handle internal_error =
      py::object(py::module_::import("ipdpp._core").attr("InternalError")).release();
  m.attr("InternalError") = internal_error;
  py::register_local_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const ipdpp::InternalError& e) {
      PyErr_SetString(internal_error.ptr(), e.what());
    }
  });
  ipdpp::bindings::register_cuda_spectrum(m);
  ipdpp::bindings::register_cuda_sampling(m);
#if defined(IPDPP_CUDA_EMULATOR)
  ipdpp::emu::register_emulator(m);
#endif
}

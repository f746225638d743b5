// Binds SciPy's exported BLAS/LAPACK routines to csrc/cpu/lapack.h (see there for why). Every
// extension that calls the CPU linear algebra does this once at import: _core, and the CUDA
// emulator, whose cuBLAS/cuSOLVER run on these routines.
#pragma once

#include <pybind11/pybind11.h>

#include "cpu/lapack.h"

namespace ipdpp::bindings {

inline void load_lapack_from_scipy() {
  namespace py = pybind11;
  const py::dict blas = py::module_::import("scipy.linalg.cython_blas").attr("__pyx_capi__");
  const py::dict lapack = py::module_::import("scipy.linalg.cython_lapack").attr("__pyx_capi__");
  for (const char* const* name = ipdpp::lapack::required_routines(); *name; ++name) {
    const py::str key(*name);
    py::object capsule = blas.contains(key) ? blas[key] : lapack[key];
    PyObject* raw = capsule.ptr();
    void* fn = PyCapsule_GetPointer(raw, PyCapsule_GetName(raw));
    if (fn == nullptr) throw py::error_already_set();
    ipdpp::lapack::set_routine(*name, fn);
  }
}

}  // namespace ipdpp::bindings

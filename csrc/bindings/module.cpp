// The _core extension: CPU kernels. Each area registers its functions from its own file.
#include <pybind11/pybind11.h>

#include <string>

#include "common/error.h"
#include "cpu/lapack.h"

namespace py = pybind11;

namespace ipdpp::bindings {
void register_spectral(py::module_& m);
void register_ipdpp(py::module_& m);
}  // namespace ipdpp::bindings

namespace {

// Binds SciPy's exported BLAS/LAPACK routines (see cpu/lapack.h for why).
void load_lapack_from_scipy() {
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

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "ipdpp CPU kernels (C++17); use the Python API in ipdpp instead of this module.";
  load_lapack_from_scipy();
  // A broken invariant inside the library (never bad input). Module-local, so that _cuda, which
  // reuses this class, keeps its own translator.
  py::register_local_exception<ipdpp::InternalError>(m, "InternalError", PyExc_RuntimeError);
  ipdpp::bindings::register_spectral(m);
  ipdpp::bindings::register_ipdpp(m);
}

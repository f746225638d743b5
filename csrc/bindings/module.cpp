// The _core extension: CPU kernels. Each area registers its functions from its own file.
#include <pybind11/pybind11.h>

#include <string>

#include "bindings/interrupt.h"
#include "bindings/scipy_lapack.h"
#include "common/error.h"

namespace py = pybind11;

namespace ipdpp::bindings {
void register_spectral(py::module_& m);
void register_ipdpp(py::module_& m);
}  // namespace ipdpp::bindings

PYBIND11_MODULE(_core, m) {
  m.doc() = "ipdpp CPU kernels (C++17); use the Python API in ipdpp instead of this module.";
  ipdpp::bindings::load_lapack_from_scipy();
  // A broken invariant inside the library (never bad input). Module-local, so that _cuda, which
  // reuses this class, keeps its own translator.
  py::register_local_exception<ipdpp::InternalError>(m, "InternalError", PyExc_RuntimeError);
  ipdpp::bindings::register_interrupt_translator();
  ipdpp::bindings::register_spectral(m);
  ipdpp::bindings::register_ipdpp(m);
}

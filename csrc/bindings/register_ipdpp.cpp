#include <pybind11/pybind11.h>
namespace ipdpp::bindings {
void register_ipdpp(pybind11::module_& m) { (void)m; }
}  // namespace ipdpp::bindings

// _cuda bindings for kernel construction (csrc/cuda/spectrum.h).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <vector>

#include "bindings/cuda_common.h"
#include "cuda/spectrum.h"

namespace ipdpp::bindings {

using namespace pybind11::literals;

void register_cuda_spectrum(py::module_& m) {
  py::class_<cuda::DeviceSpectrum, std::shared_ptr<cuda::DeviceSpectrum>>(
      m, "Spectrum",
      "Eigenvalues (host, float64, ascending) and orthonormal eigenvectors (device, n x rank "
      "row-major, in `dtype`) of a kernel on one GPU.")
      .def_readonly("n", &cuda::DeviceSpectrum::n)
      .def_readonly("rank", &cuda::DeviceSpectrum::rank)
      .def_readonly("device", &cuda::DeviceSpectrum::device)
      .def_property_readonly("dtype",
                             [](const cuda::DeviceSpectrum& s) { return dtype_name(s.dtype); })
      .def_property_readonly("eigenvalues",
                             [](const cuda::DeviceSpectrum& s) {
                               return py::array_t<double>(
                                   static_cast<py::ssize_t>(s.eigenvalues.size()),
                                   s.eigenvalues.data());
                             })
      .def_property_readonly("eigenvectors_ptr", [](const cuda::DeviceSpectrum& s) {
        return reinterpret_cast<std::uintptr_t>(s.eigenvectors.data());
      });

  m.def(
      "lowrank_spectrum",
      [](std::uintptr_t features, const std::string& dtype, std::int64_t n, std::int64_t d,
         std::uintptr_t quality, double rtol, int device, std::uintptr_t stream) {
        const DType type = parse_dtype(dtype);
        py::gil_scoped_release release;
        cuda::DeviceGuard guard(device);
        return own(cuda::lowrank_spectrum(as_pointer<const void>(features), type, n, d,
                                          as_pointer<const double>(quality), rtol,
                                          as_stream(stream)));
      },
      "features"_a, "dtype"_a, "n"_a, "d"_a, "quality"_a, "rtol"_a, "device"_a, "stream"_a,
      "Spectrum of L = diag(q) B B^T diag(q) from device pointers (quality = 0: none; "
      "quality is float64).");

  m.def(
      "dense_spectrum",
      [](std::uintptr_t L, const std::string& dtype, std::int64_t n, double rtol, double psd_rtol,
         int device, std::uintptr_t stream, double symmetry_rtol) {
        const DType type = parse_dtype(dtype);
        py::gil_scoped_release release;
        cuda::DeviceGuard guard(device);
        return own(cuda::dense_spectrum(as_pointer<const void>(L), type, n, rtol, symmetry_rtol,
                                        psd_rtol, as_stream(stream)));
      },
      "L"_a, "dtype"_a, "n"_a, "rtol"_a, "psd_rtol"_a, "device"_a, "stream"_a,
      "symmetry_rtol"_a = -1.0,
      "Spectrum of a dense symmetric PSD kernel (n x n row-major device array) with the CPU "
      "dense_spectrum's checks and messages: ValueError when an entry is NaN/Inf, when "
      "|L_ij - L_ji| > symmetry_rtol * max|L| for some pair (symmetry_rtol < 0: not checked), "
      "or when the smallest eigenvalue is below -psd_rtol * max|eigenvalue|; eigenvalues <= "
      "rtol * max are dropped.");

  m.def(
      "dual_gram_eigenvalues",
      [](std::uintptr_t features, const std::string& dtype, std::int64_t n, std::int64_t d,
         std::uintptr_t quality, int device, std::uintptr_t stream) {
        const DType type = parse_dtype(dtype);
        std::vector<double> w;
        {
          py::gil_scoped_release release;
          cuda::DeviceGuard guard(device);
          w = cuda::dual_gram_eigenvalues(as_pointer<const void>(features), type, n, d,
                                          as_pointer<const double>(quality), as_stream(stream));
        }
        return py::array_t<double>(static_cast<py::ssize_t>(w.size()), w.data());
      },
      "features"_a, "dtype"_a, "n"_a, "d"_a, "quality"_a, "device"_a, "stream"_a,
      "All d eigenvalues (ascending) of the dual Gram matrix B^T diag(q^2) B: the Gram + "
      "eigendecomposition part of lowrank_spectrum (for benchmarks).");
}

}  // namespace ipdpp::bindings

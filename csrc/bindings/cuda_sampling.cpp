// _cuda bindings for sampling from a spectrum (csrc/cuda/*_sampler.h).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#include "bindings/cuda_common.h"
#include "cuda/ipdpp_sampler.h"
#include "cuda/projection_sampler.h"
#include "cuda/rejection_sampler.h"
#include "cuda/select_eigenvectors.h"

namespace ipdpp::bindings {

using namespace pybind11::literals;

void register_cuda_sampling(py::module_& m) {
  m.def(
      "sample",
      [](cuda::DeviceSpectrum& spectrum, std::int64_t k, std::int64_t num_samples,
         std::uint64_t seed, std::uint64_t sample_offset, const std::string& method,
         std::uintptr_t out, std::uintptr_t stream) {
        if (method != "sequential" && method != "rejection")
          throw py::value_error("method must be 'sequential' or 'rejection'; got '" + method +
                                "'");
        if (num_samples < 0) throw py::value_error("num_samples must be >= 0");
        py::gil_scoped_release release;
        cuda::DeviceGuard guard(spectrum.device);
        const cudaStream_t s = as_stream(stream);
        const cuda::EigenSelection selection =
            cuda::select_eigenvectors(spectrum, k, num_samples, seed, sample_offset, s);
        auto* result = as_pointer<std::int64_t>(out);
        if (method == "rejection") {
          cuda::prepare_rejection_tables(spectrum, s);
          cuda::rejection_sample(spectrum, selection, seed, sample_offset, result, s);
        } else {
          cuda::projection_sample(spectrum, selection, seed, sample_offset, result, s);
        }
      },
      "spectrum"_a, "k"_a, "num_samples"_a, "seed"_a, "sample_offset"_a, "method"_a, "out"_a,
      "stream"_a,
      "Draws num_samples samples (k >= 0: k-DPP; k < 0: DPP) into `out`, a device int64 array "
      "of shape (num_samples, k) (k-DPP) or (num_samples, rank) (DPP): each row holds its items "
      "in increasing order followed by -1 padding. Sample i uses the random streams of sample "
      "sample_offset + i.");

  m.def(
      "max_k",
      [](const std::string& dtype, const std::string& method, int device) {
        const cuda::DType type = parse_dtype(dtype);
        cuda::DeviceGuard guard(device);
        return method == "rejection" ? cuda::rejection_max_k(type) : cuda::projection_max_k(type);
      },
      "dtype"_a, "method"_a, "device"_a,
      "Largest k (or DPP rank) a method supports for a dtype on a device (shared-memory bound).");

  m.def(
      "structured_sample",
      [](std::uintptr_t p, std::uintptr_t items,
         const py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>& offsets,
         const py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>& k,
         const py::array_t<double, py::array::c_style | py::array::forcecast>& alpha,
         std::int64_t samples_per_problem, std::uint64_t seed, std::uint64_t sample_offset,
         std::uintptr_t out, int device, std::uintptr_t stream) {
        cuda::StructuredProblems problems;
        problems.offsets.assign(offsets.data(), offsets.data() + offsets.size());
        problems.k.assign(k.data(), k.data() + k.size());
        problems.alpha.assign(alpha.data(), alpha.data() + alpha.size());
        py::gil_scoped_release release;
        cuda::DeviceGuard guard(device);
        cuda::structured_sample(as_pointer<const double>(p), as_pointer<const std::int64_t>(items),
                                problems, samples_per_problem, seed, sample_offset,
                                as_pointer<std::int64_t>(out), as_stream(stream));
      },
      "p"_a, "items"_a, "offsets"_a, "k"_a, "alpha"_a, "samples_per_problem"_a, "seed"_a,
      "sample_offset"_a, "out"_a, "device"_a, "stream"_a,
      "Structured IP-DPP k-DPP samples of C problems in one launch (csrc/cuda/ipdpp_sampler.h): "
      "p (device float64) and items (device int64 original indices, 0 = identity) grouped by "
      "problem along offsets (C + 1, host); k and alpha per problem (host). Problem c's samples "
      "go to out one after the other, min(k_c, N_c) indices each, in increasing position order.");
}

}  // namespace ipdpp::bindings

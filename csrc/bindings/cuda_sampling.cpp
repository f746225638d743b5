// _cuda bindings for sampling from a spectrum (csrc/cuda/*_sampler.h).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#include "bindings/cuda_common.h"
#include "common/sampling_method.h"
#include "cuda/balanced_subset.h"
#include "cuda/ipdpp_sampler.h"
#include "cuda/spectral_sampler.h"

namespace ipdpp::bindings {

using namespace pybind11::literals;

void register_cuda_sampling(py::module_& m) {
  m.def(
      "sample",
      [](cuda::DeviceSpectrum& spectrum, std::int64_t k, std::int64_t num_samples,
         std::uint64_t seed, std::uint64_t sample_offset, const std::string& method,
         std::uintptr_t out, std::uintptr_t stream) {
        const ProjectionMethod m = parse_projection_method(method);
        py::gil_scoped_release release;
        cuda::DeviceGuard guard(spectrum.device);
        cuda::sample(spectrum, k, num_samples, seed, sample_offset, m,
                     as_pointer<std::int64_t>(out), as_stream(stream));
      },
      "spectrum"_a, "k"_a, "num_samples"_a, "seed"_a, "sample_offset"_a, "method"_a, "out"_a,
      "stream"_a,
      "Draws num_samples samples (k >= 0: k-DPP; k < 0: DPP) into `out`, a device int64 array "
      "of shape (num_samples, k) (k-DPP) or (num_samples, rank) (DPP): each row holds its items "
      "in increasing order followed by -1 padding. Sample i uses the random streams of sample "
      "sample_offset + i. method: 'auto' (the GPU rule, see method_for), 'sequential' or "
      "'rejection'. ValueError before any work when k (for a DPP: the rank) exceeds the chosen "
      "kernel's shared-memory limit on this device.");

  m.def(
      "method_for",
      [](const cuda::DeviceSpectrum& spectrum, std::int64_t k, const std::string& method) {
        return projection_method_name(
            cuda::resolve_method(spectrum, k, parse_projection_method(method)));
      },
      "spectrum"_a, "k"_a, "method"_a,
      "The method `sample` runs for `method` ('auto' resolved from n, k (or the expected DPP "
      "size when k < 0) and the dtype; never from the batch size).");

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
                                /*name_classes=*/false, as_pointer<std::int64_t>(out),
                                as_stream(stream));
      },
      "p"_a, "items"_a, "offsets"_a, "k"_a, "alpha"_a, "samples_per_problem"_a, "seed"_a,
      "sample_offset"_a, "out"_a, "device"_a, "stream"_a,
      "Structured IP-DPP k-DPP samples of C problems in one launch (csrc/cuda/ipdpp_sampler.h): "
      "p (device float64) and items (device int64 original indices, 0 = identity) grouped by "
      "problem along offsets (C + 1, host); k and alpha per problem (host). Problem c's samples "
      "go to out one after the other, min(k_c, N_c) indices each, in increasing position order.");

  m.def(
      "balanced_subset",
      [](std::uintptr_t labels, std::uintptr_t p, std::int64_t n,
         const py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>& k_per_class,
         double alpha_power, double alpha_value, std::uint64_t seed, std::uintptr_t out, int device,
         std::uintptr_t stream) {
        if (k_per_class.ndim() != 1) throw py::value_error("k_per_class must be 1-D");
        const std::vector<std::int64_t> k(k_per_class.data(),
                                          k_per_class.data() + k_per_class.size());
        py::gil_scoped_release release;
        cuda::DeviceGuard guard(device);
        return cuda::balanced_subset(as_pointer<const std::int64_t>(labels),
                                     as_pointer<const double>(p), n, k.data(),
                                     static_cast<std::int64_t>(k.size()), alpha_power, alpha_value,
                                     seed, as_pointer<std::int64_t>(out), as_stream(stream));
      },
      "labels"_a, "p"_a, "n"_a, "k_per_class"_a, "alpha_power"_a, "alpha_value"_a, "seed"_a,
      "out"_a, "device"_a, "stream"_a,
      "Mode 'exact' of balanced_subset on the GPU: labels (device int64 (n,)), p (device float64 "
      "(n,)), k_per_class (host int64 (C,)); writes the kept indices, ascending, to out (device "
      "int64 with room for n) and returns their number. Class c draws the stream (seed, c): the "
      "same items as _core.balanced_subset mode 'exact'.");
}

}  // namespace ipdpp::bindings

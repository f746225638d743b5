#include "cuda/spectral_sampler.h"

#include <cmath>
#include <string>

#include "common/error.h"
#include "cuda/projection_sampler.h"
#include "cuda/rejection_sampler.h"
#include "cuda/select_eigenvectors.h"

namespace ipdpp::cuda {

ProjectionMethod resolve_method(const DeviceSpectrum& spectrum, std::int64_t k,
                                ProjectionMethod method) {
  IPDPP_REQUIRE(method != ProjectionMethod::kColumns,
                "method='columns' runs on the CPU only (its per-column tables of the "
                "eigenvectors are host memory); on a GPU use 'rejection', 'sequential' or "
                "'auto'");
  if (method != ProjectionMethod::kAuto) return method;
  std::int64_t size = k;
  if (k < 0) {  // a DPP: its expected size, a property of the spectrum (one method per batch)
    double expected = 0.0;
    for (double lambda : spectrum.eigenvalues) expected += lambda / (1.0 + lambda);
    size = static_cast<std::int64_t>(std::ceil(expected));
  }
  return choose_gpu_method(spectrum.n, size, static_cast<std::int64_t>(dtype_size(spectrum.dtype)));
}

void sample(DeviceSpectrum& spectrum, std::int64_t k, std::int64_t num_samples, std::uint64_t seed,
            std::uint64_t sample_offset, ProjectionMethod method, std::int64_t* out,
            cudaStream_t stream) {
  IPDPP_REQUIRE(num_samples >= 0, "num_samples must be >= 0; got " + std::to_string(num_samples));
  IPDPP_REQUIRE(k <= spectrum.rank, "k = " + std::to_string(k) + " exceeds the kernel's rank " +
                                        std::to_string(spectrum.rank));
  const std::int64_t width = k >= 0 ? k : spectrum.rank;
  if (num_samples == 0 || width == 0) return;  // nothing to write
  const ProjectionMethod chosen = resolve_method(spectrum, k, method);
  const bool rejection = chosen == ProjectionMethod::kRejection;
  const std::int64_t max_k =
      rejection ? rejection_max_k(spectrum.dtype) : projection_max_k(spectrum.dtype);
  if (width > max_k) {
    const std::string what =
        k >= 0 ? "k = " + std::to_string(k)
               : "a DPP sample can have up to rank = " + std::to_string(spectrum.rank) + " items;";
    throw std::invalid_argument(what + " the CUDA " + projection_method_name(chosen) +
                                " sampler holds at most " + std::to_string(max_k) + " in " +
                                dtype_name(spectrum.dtype) +
                                " on this device (its k x k basis lives in shared memory)");
  }
  const EigenSelection selection =
      select_eigenvectors(spectrum, k, num_samples, seed, sample_offset, stream);
  if (rejection) {
    prepare_rejection_tables(spectrum, stream);
    rejection_sample(spectrum, selection, seed, sample_offset, out, stream);
  } else {
    projection_sample(spectrum, selection, seed, sample_offset, out, stream);
  }
}

}  // namespace ipdpp::cuda

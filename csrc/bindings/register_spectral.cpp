// Bindings of the spectral path: kernels' eigendecompositions (ipdpp._core.Spectrum) and the
// DPP / k-DPP samplers on them. ipdpp/kernels.py and ipdpp/sampling.py validate the input first;
// the checks here are a cheap backstop. Every long call releases the GIL and stays
// interruptible (bindings/interrupt.h).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "bindings/array.h"
#include "bindings/interrupt.h"
#include "common/error.h"
#include "common/sampling_method.h"
#include "cpu/diagonal_rank_one_eigen.h"
#include "cpu/feature_products.h"
#include "cpu/finite_check.h"
#include "cpu/spectral_sampler.h"
#include "cpu/spectrum.h"

namespace ipdpp::bindings {
namespace {

using namespace pybind11::literals;
using SpectrumPtr = std::shared_ptr<SpectralSampler>;

// A read-only numpy view of memory owned by `owner` (kept alive by the view).
py::array readonly_view(const double* data, std::vector<py::ssize_t> shape, py::handle owner) {
  py::array view(py::dtype::of<double>(), std::move(shape), {}, data, owner);
  view.attr("setflags")("write"_a = false);
  return view;
}

// Keeps Python objects alive from C++ (a spectrum that reads the caller's features later); the
// reference is dropped with the GIL taken, whichever thread releases the last owner.
class PythonReference {
 public:
  explicit PythonReference(py::object object) : object_(std::move(object)) {}
  PythonReference(const PythonReference&) = delete;
  PythonReference& operator=(const PythonReference&) = delete;
  ~PythonReference() {
    py::gil_scoped_acquire gil;
    object_ = py::object();
  }

 private:
  py::object object_;
};

// The optional per-item quality (float64, shape (n,)) of a low-rank kernel, or null for q = 1.
const double* quality_pointer(const std::optional<py::array>& quality, std::int64_t n) {
  if (!quality) return nullptr;
  if (!quality->dtype().is(py::dtype::of<double>()))
    throw py::type_error("quality must be float64");
  require_ndim(*quality, 1, "quality");
  require_c_contiguous(*quality, "quality");
  if (quality->shape(0) != n)
    throw py::value_error("quality must have shape (" + std::to_string(n) + ",); got (" +
                          std::to_string(quality->shape(0)) + ",)");
  return typed_data<double>(*quality);
}

SpectrumPtr lowrank(const py::array& features, const std::optional<py::array>& quality, double rtol,
                    std::int64_t eigenvector_budget, int threads) {
  require_ndim(features, 2, "features");
  require_c_contiguous(features, "features");
  const DType dtype = real_dtype(features, "features");
  const std::int64_t n = features.shape(0), d = features.shape(1);
  const double* q = quality_pointer(quality, n);
  // The spectrum reads rows of the features (and quality) again while sampling when its
  // eigenvectors are formed late or never, so it keeps them alive.
  std::shared_ptr<const void> owner = std::make_shared<PythonReference>(
      py::make_tuple(features, quality ? py::object(*quality) : py::none()));
  GilReleasedInterruptibly release;
  Spectrum s = dispatch_dtype(dtype, [&](auto tag) {
    return lowrank_spectrum_basis(typed_data<decltype(tag)>(features), n, d, q, rtol,
                                  std::move(owner), threads);
  });
  const EigenvectorStorage storage = choose_eigenvector_storage(n, s.rank, eigenvector_budget);
  return std::make_shared<SpectralSampler>(std::move(s), storage);
}

// Leverage scores of the kept eigenspace of diag(q) B B^T diag(q), given W = U_kept Lambda^{-1/2}
// (d x rank, float64), from the features without forming V (cpu/feature_products.h).
py::array_t<double> leverage(const py::array& features, const std::optional<py::array>& quality,
                             const py::array& w, int threads) {
  require_ndim(features, 2, "features");
  require_c_contiguous(features, "features");
  const DType dtype = real_dtype(features, "features");
  const std::int64_t n = features.shape(0), d = features.shape(1);
  if (!w.dtype().is(py::dtype::of<double>())) throw py::type_error("w must be float64");
  require_ndim(w, 2, "w");
  require_c_contiguous(w, "w");
  if (w.shape(0) != d || w.shape(1) > d)
    throw py::value_error("w must have shape (d, rank) with rank <= d = " + std::to_string(d));
  const double* q = quality_pointer(quality, n);
  if (d == 0) throw py::value_error("features must have at least one column");
  std::vector<double> out(checked_size(n, 1));
  const double* wp = typed_data<double>(w);
  const std::int64_t rank = w.shape(1);
  {
    GilReleasedInterruptibly release;
    dispatch_dtype(dtype, [&](auto tag) {
      leverage_from_features(typed_data<decltype(tag)>(features), n, d, q, wp, rank, threads,
                             out.data());
    });
  }
  return to_numpy(std::move(out));
}

// Whether a C-contiguous float32/float64 array holds no NaN or Inf (the input check of
// ipdpp._validation.check_finite for large host arrays).
bool finite(const py::array& x) {
  require_c_contiguous(x, "x");
  const DType dtype = real_dtype(x, "x");
  const std::int64_t n = x.size();
  bool ok = true;
  {
    GilReleasedInterruptibly release;
    dispatch_dtype(dtype, [&](auto tag) { ok = all_finite(typed_data<decltype(tag)>(x), n); });
  }
  return ok;
}

// All d eigenvalues of the dual Gram, as lowrank_spectrum computes them (for benchmarks and
// tests: the Gram + eigendecomposition part of the setup alone).
py::array_t<double> dual_gram_eigenvalues(const py::array& features, int threads) {
  require_ndim(features, 2, "features");
  require_c_contiguous(features, "features");
  const DType dtype = real_dtype(features, "features");
  const std::int64_t n = features.shape(0), d = features.shape(1);
  if (n == 0 || d == 0) throw py::value_error("features must be non-empty");
  std::vector<double> u, w;
  {
    GilReleasedInterruptibly release;
    dispatch_dtype(dtype, [&](auto tag) {
      dual_gram_eigen(typed_data<decltype(tag)>(features), n, d, nullptr, threads, u, w);
    });
  }
  return to_numpy(std::move(w));
}

SpectrumPtr dense(const py::array& L, double rtol, double symmetry_rtol, double psd_rtol) {
  if (!L.dtype().is(py::dtype::of<double>())) throw py::type_error("L must be float64");
  require_ndim(L, 2, "L");
  require_c_contiguous(L, "L");
  const std::int64_t n = L.shape(0);
  if (L.shape(1) != n)
    throw py::value_error("L must have shape (n, n); got (" + std::to_string(n) + ", " +
                          std::to_string(L.shape(1)) + ")");
  const double* data = typed_data<double>(L);
  GilReleasedInterruptibly release;
  return std::make_shared<SpectralSampler>(dense_spectrum(data, n, rtol, symmetry_rtol, psd_rtol));
}

SpectrumPtr ipdpp_kernel(const py::array& p, double alpha, double rtol) {
  if (!p.dtype().is(py::dtype::of<double>())) throw py::type_error("p must be float64");
  require_ndim(p, 1, "p");
  require_c_contiguous(p, "p");
  const double* data = typed_data<double>(p);
  const std::int64_t n = p.shape(0);
  GilReleasedInterruptibly release;
  return std::make_shared<SpectralSampler>(ipdpp_spectrum(data, n, alpha, rtol));
}

// Every eigenpair of diag(d) + z z^T: (eigenvalues [n] ascending, eigenvectors [n, n] as columns).
py::tuple diagonal_rank_one_eigh(const py::array& d, const py::array& z) {
  for (const auto& [a, name] : {std::pair{&d, "d"}, std::pair{&z, "z"}}) {
    if (!a->dtype().is(py::dtype::of<double>()))
      throw py::type_error(std::string(name) + " must be float64");
    require_ndim(*a, 1, name);
    require_c_contiguous(*a, name);
  }
  const std::int64_t n = d.shape(0);
  if (z.shape(0) != n) throw py::value_error("z must have the length of d");
  std::vector<double> values, vectors(checked_size(n, n));
  {
    GilReleasedInterruptibly release;
    const DiagonalRankOneEigen eig(typed_data<double>(d), typed_data<double>(z), n);
    values = eig.eigenvalues();
    for (std::int64_t m = 0; m < n; ++m) {
      interruption_point();
      eig.eigenvector(m, vectors.data() + m, n);
    }
  }
  return py::make_tuple(
      to_numpy(std::move(values)),
      to_numpy(std::move(vectors), {static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(n)}));
}

py::array_t<std::int64_t> sample_k_dpp(const SpectrumPtr& spectrum, std::int64_t k,
                                       std::int64_t num_samples, std::uint64_t seed,
                                       std::uint64_t sample_offset, const std::string& method,
                                       int threads) {
  const ProjectionMethod m = parse_projection_method(method);
  IPDPP_REQUIRE(num_samples >= 0, "num_samples must be >= 0; got " + std::to_string(num_samples));
  IPDPP_REQUIRE(k >= 0, "k must be >= 0; got " + std::to_string(k));
  std::vector<std::int64_t> out(checked_size(num_samples, k));
  {
    GilReleasedInterruptibly release;
    spectrum->sample_k(k, num_samples, seed, sample_offset, m, threads, out.data());
  }
  return to_numpy(std::move(out),
                  {static_cast<py::ssize_t>(num_samples), static_cast<py::ssize_t>(k)});
}

py::list sample_dpp(const SpectrumPtr& spectrum, std::int64_t num_samples, std::uint64_t seed,
                    std::uint64_t sample_offset, const std::string& method, int threads) {
  const ProjectionMethod m = parse_projection_method(method);
  IPDPP_REQUIRE(num_samples >= 0, "num_samples must be >= 0; got " + std::to_string(num_samples));
  std::vector<std::vector<std::int64_t>> samples;
  {
    GilReleasedInterruptibly release;
    samples = spectrum->sample_dpp(num_samples, seed, sample_offset, m, threads);
  }
  py::list result;
  for (auto& s : samples) result.append(to_numpy(std::move(s)));
  return result;
}

}  // namespace

void register_spectral(py::module_& m) {
  py::class_<SpectralSampler, SpectrumPtr>(m, "Spectrum",
                                           "Eigendecomposition of an L-ensemble kernel truncated "
                                           "to its numerical rank, with cached sampler tables.")
      .def_property_readonly("n", [](const SpectralSampler& s) { return s.spectrum().n; })
      .def_property_readonly("rank", [](const SpectralSampler& s) { return s.spectrum().rank; })
      .def_property_readonly(
          "eigenvalues",
          [](py::object self) {
            const Spectrum& s = self.cast<const SpectralSampler&>().spectrum();
            return readonly_view(s.eigenvalues.data(), {static_cast<py::ssize_t>(s.rank)}, self);
          },
          "float64 (rank,), ascending; a read-only view")
      .def_property_readonly(
          "eigenvectors",
          [](py::object self) {
            const auto& sampler = self.cast<const SpectralSampler&>();
            const double* data;
            {
              GilReleasedInterruptibly release;  // the first call may form them (a pass over B)
              data = sampler.eigenvectors().data();
            }
            const Spectrum& s = sampler.spectrum();
            return readonly_view(
                data, {static_cast<py::ssize_t>(s.n), static_cast<py::ssize_t>(s.rank)}, self);
          },
          "float64 (n, rank), row-major, orthonormal columns; a read-only view (formed on first "
          "access; ValueError for a low-memory spectrum, which never stores them)")
      .def(
          "eigenvector_rows",
          [](const SpectralSampler& s, const py::array& items) {
            if (!items.dtype().is(py::dtype::of<std::int64_t>()))
              throw py::type_error("items must be int64");
            require_ndim(items, 1, "items");
            require_c_contiguous(items, "items");
            const std::int64_t m = items.shape(0), r = s.spectrum().rank;
            const auto* index = typed_data<std::int64_t>(items);
            for (std::int64_t j = 0; j < m; ++j)
              if (index[j] < 0 || index[j] >= s.spectrum().n)
                throw py::value_error("items must lie in [0, n)");
            std::vector<double> out(checked_size(m, r));
            {
              GilReleasedInterruptibly release;
              s.eigenvector_rows(index, m, out.data());
            }
            return to_numpy(std::move(out),
                            {static_cast<py::ssize_t>(m), static_cast<py::ssize_t>(r)});
          },
          "items"_a,
          "Rows `items` (int64 (m,)) of the eigenvectors, float64 (m, rank): read, or computed "
          "from the features for a low-memory spectrum.")
      .def(
          "weighted_row_norms",
          [](const SpectralSampler& s, const py::array& weights) {
            if (!weights.dtype().is(py::dtype::of<double>()))
              throw py::type_error("weights must be float64");
            require_ndim(weights, 1, "weights");
            require_c_contiguous(weights, "weights");
            if (weights.shape(0) != s.spectrum().rank)
              throw py::value_error("weights must have shape (rank,)");
            std::vector<double> out;
            {
              GilReleasedInterruptibly release;
              out = s.weighted_row_norms(typed_data<double>(weights));
            }
            return to_numpy(std::move(out));
          },
          "weights"_a,
          "sum_j weights_j V_ij^2 for every item i, float64 (n,): one pass over the stored "
          "eigenvectors, or over the features for a low-memory spectrum.")
      .def_property_readonly(
          "eigenvectors_formed", &SpectralSampler::eigenvectors_formed,
          "True once the eigenvectors are stored (formed at their first need, never for a "
          "low-memory spectrum)")
      .def_property_readonly(
          "low_memory",
          [](const SpectralSampler& s) { return s.storage() == EigenvectorStorage::kOnDemand; },
          "True when the eigenvectors are never stored: rows are computed from the features");

  m.def(
      "auto_method",
      [](const std::string& device, std::int64_t n, std::int64_t rank, std::int64_t size,
         std::int64_t itemsize) {
        if (device == "cpu") return projection_method_name(choose_cpu_method(n, rank, size));
        if (device == "cuda") return projection_method_name(choose_gpu_method(n, size, itemsize));
        throw py::value_error("device must be 'cpu' or 'cuda'; got '" + device + "'");
      },
      "device"_a, "n"_a, "rank"_a, "size"_a, "itemsize"_a = 8,
      "The projection method that method='auto' picks on a device for one sample of `size` "
      "items (k; on the GPU the expected size of a DPP) from a spectrum of n items and `rank` "
      "eigenpairs whose eigenvectors have `itemsize` bytes (the GPU rule reads it).");
  m.def("lowrank_spectrum", &lowrank, "features"_a, "quality"_a = py::none(), "rtol"_a,
        "eigenvector_budget"_a = -1, "threads"_a = 0,
        "Spectrum of L = diag(q) B B^T diag(q) through the dual Gram matrix. Its n x rank "
        "eigenvectors are stored (formed on first use) when they and their bfloat16 copy, "
        "10 n rank bytes, fit in "
        "eigenvector_budget (< 0: no limit), else never: rows are computed from the features, "
        "which the spectrum keeps referring to. The products over the features run on `threads` "
        "threads (0: all hardware threads; the result does not depend on it).");
  m.def("leverage_from_features", &leverage, "features"_a, "quality"_a, "w"_a, "threads"_a = 0,
        "Leverage scores (n,) of diag(q) B B^T diag(q)'s eigenspace spanned by B W, from the "
        "features without forming B W, each rounded up by its rounding-error bound.");
  m.def("all_finite", &finite, "x"_a,
        "Whether a C-contiguous float32/float64 array holds no NaN or Inf (one pass over it).");
  m.def("dual_gram_eigenvalues", &dual_gram_eigenvalues, "features"_a, "threads"_a = 0,
        "All d eigenvalues (ascending) of the dual Gram B^T B as lowrank_spectrum computes them: "
        "the Gram + eigendecomposition part of the setup alone (for benchmarks).");
  m.def("dense_spectrum", &dense, "L"_a, "rtol"_a, "symmetry_rtol"_a = kSymmetryRtol,
        "psd_rtol"_a = -1.0,
        "Spectrum of a dense symmetric PSD L (ValueError naming L otherwise); psd_rtol < 0 "
        "means rtol.");
  m.def("ipdpp_spectrum", &ipdpp_kernel, "p"_a, "alpha"_a, "rtol"_a,
        "Spectrum of the IP-DPP kernel diag(1 - alpha p sum(p)) + alpha p p^T in O(N^2) (secular "
        "equation, Gu-Eisenstat eigenvectors).");
  m.def("diagonal_rank_one_eigh", &diagonal_rank_one_eigh, "d"_a, "z"_a,
        "All eigenpairs of diag(d) + z z^T in O(n^2): float64 eigenvalues (n,) ascending and "
        "eigenvectors (n, n) as columns.");
  m.def("sample_k_dpp", &sample_k_dpp, "spectrum"_a, "k"_a, "num_samples"_a, "seed"_a,
        "sample_offset"_a, "method"_a, "threads"_a,
        "k-DPP samples as an int64 (num_samples, k) array, rows sorted ascending.");
  m.def("sample_dpp", &sample_dpp, "spectrum"_a, "num_samples"_a, "seed"_a, "sample_offset"_a,
        "method"_a, "threads"_a, "DPP samples as a list of sorted int64 arrays.");
}

}  // namespace ipdpp::bindings

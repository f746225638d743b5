// Bindings of the IP-DPP kernels: the structured k-DPP sampler, greedy MAP and per-class
// balanced subsets. ipdpp/balanced.py, ipdpp/greedy.py and ipdpp/sampling.py validate the input
// first; the checks here are a cheap backstop. Every long call releases the GIL and stays
// interruptible (bindings/interrupt.h).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "bindings/array.h"
#include "bindings/interrupt.h"
#include "common/error.h"
#include "common/ipdpp_alpha.h"
#include "cpu/balanced_subset.h"
#include "cpu/greedy_map.h"
#include "cpu/ipdpp_sampler.h"

namespace ipdpp::bindings {
namespace {

using namespace pybind11::literals;

void require_dtype_f64(const py::array& a, const char* name) {
  if (!a.dtype().is(py::dtype::of<double>()))
    throw py::type_error(std::string(name) + " must be float64");
}

void require_dtype_i64(const py::array& a, const char* name) {
  if (!a.dtype().is(py::dtype::of<std::int64_t>()))
    throw py::type_error(std::string(name) + " must be int64");
}

// A C-contiguous float64 1-D array.
const double* f64_vector(const py::array& a, const char* name) {
  require_dtype_f64(a, name);
  require_ndim(a, 1, name);
  require_c_contiguous(a, name);
  return typed_data<double>(a);
}

py::array_t<std::int64_t> sample_k(const py::array& p, double alpha, std::int64_t k,
                                   std::int64_t num_samples, std::uint64_t seed,
                                   std::uint64_t sample_offset, int threads,
                                   std::int64_t table_entries_limit) {
  const double* pp = f64_vector(p, "p");
  const std::int64_t n = p.shape(0);
  IPDPP_REQUIRE(k >= 0, "k must be >= 0; got " + std::to_string(k));
  IPDPP_REQUIRE(num_samples >= 0, "num_samples must be >= 0; got " + std::to_string(num_samples));
  std::vector<std::int64_t> out(checked_size(num_samples, k));
  {
    GilReleasedInterruptibly release;
    ipdpp_sample_k(pp, n, alpha, k, num_samples, seed, sample_offset, threads, out.data(),
                   table_entries_limit);
  }
  return to_numpy(std::move(out),
                  {static_cast<py::ssize_t>(num_samples), static_cast<py::ssize_t>(k)});
}

py::array_t<std::int64_t> greedy_dense(const py::array& L, std::int64_t k) {
  require_dtype_f64(L, "L");
  require_ndim(L, 2, "L");
  require_c_contiguous(L, "L");
  const std::int64_t n = L.shape(0);
  IPDPP_REQUIRE(L.shape(1) == n, "L must be square");
  IPDPP_REQUIRE(k >= 0 && k <= n, "k must lie in [0, n]");
  std::vector<std::int64_t> out(checked_size(k, 1));
  {
    GilReleasedInterruptibly release;
    greedy_map_dense(typed_data<double>(L), n, k, out.data());
  }
  return to_numpy(std::move(out));
}

py::array_t<std::int64_t> greedy_factor(const py::array& F, std::int64_t k) {
  require_dtype_f64(F, "factor");
  require_ndim(F, 2, "factor");
  require_c_contiguous(F, "factor");
  const std::int64_t n = F.shape(0), r = F.shape(1);
  IPDPP_REQUIRE(k >= 0 && k <= n, "k must lie in [0, n]");
  std::vector<std::int64_t> out(checked_size(k, 1));
  {
    GilReleasedInterruptibly release;
    greedy_map_factor(typed_data<double>(F), n, r, k, out.data());
  }
  return to_numpy(std::move(out));
}

py::array_t<std::int64_t> greedy_ipdpp(const py::array& p, double alpha, std::int64_t k) {
  const double* pp = f64_vector(p, "p");
  const std::int64_t n = p.shape(0);
  IPDPP_REQUIRE(k >= 0 && k <= n, "k must lie in [0, n]");
  std::vector<std::int64_t> out(checked_size(k, 1));
  {
    GilReleasedInterruptibly release;
    const DiagonalPlusRankOne s = ipdpp_diagonal_rank_one(pp, n, alpha);
    std::vector<double> u(checked_size(n, 1));
    for (std::int64_t i = 0; i < n; ++i) u[i] = std::sqrt(s.a[i]);
    greedy_map_diag_rank_one(s.d.data(), u.data(), n, k, out.data());
  }
  return to_numpy(std::move(out));
}

BalancedMode parse_mode(const std::string& mode) {
  if (mode == "exact") return BalancedMode::kExact;
  if (mode == "paper") return BalancedMode::kPaper;
  if (mode == "random") return BalancedMode::kRandom;
  if (mode == "greedy") return BalancedMode::kGreedy;
  throw py::value_error("mode must be 'exact', 'paper', 'random' or 'greedy'; got '" + mode + "'");
}

py::array_t<std::int64_t> balanced(const py::array& labels, const py::array& p,
                                   const py::array& k_per_class, const std::string& mode,
                                   double alpha_power, double alpha_value, std::uint64_t seed,
                                   const std::optional<py::array>& features, double eigenvalue_rtol,
                                   int threads) {
  require_dtype_i64(labels, "labels");
  require_ndim(labels, 1, "labels");
  require_c_contiguous(labels, "labels");
  require_dtype_i64(k_per_class, "k_per_class");
  require_ndim(k_per_class, 1, "k_per_class");
  require_c_contiguous(k_per_class, "k_per_class");
  const double* pp = f64_vector(p, "p");
  const std::int64_t n = labels.shape(0);
  IPDPP_REQUIRE(p.shape(0) == n, "p must have the length of labels");
  BalancedOptions options;
  options.mode = parse_mode(mode);
  options.alpha_power = alpha_power;
  options.alpha_value = alpha_value;
  options.seed = seed;
  options.threads = threads;
  options.eigenvalue_rtol = eigenvalue_rtol;
  FeatureMatrix feature_matrix;
  if (features.has_value()) {
    const py::array& f = *features;
    feature_matrix.dtype = real_dtype(f, "features");
    require_ndim(f, 2, "features");
    require_c_contiguous(f, "features");
    IPDPP_REQUIRE(f.shape(0) == n, "features must have one row per label");
    feature_matrix.data = f.data();
    feature_matrix.dim = f.shape(1);
  }
  std::vector<std::int64_t> result;
  {
    GilReleasedInterruptibly release;
    result = balanced_subset(typed_data<std::int64_t>(labels), pp, n,
                             typed_data<std::int64_t>(k_per_class), k_per_class.shape(0), options,
                             features.has_value() ? &feature_matrix : nullptr);
  }
  return to_numpy(std::move(result));
}

}  // namespace

void register_ipdpp(py::module_& m) {
  m.def("ipdpp_alpha", &ipdpp_alpha, "alpha_power"_a, "alpha_value"_a, "n"_a,
        "The IP-DPP kernel's alpha for n items: alpha_value if alpha_value > 0, else "
        "n**-alpha_power (ValueError when neither is positive or n < 1).");
  m.def("ipdpp_sample_k", &sample_k, "p"_a, "alpha"_a, "k"_a, "num_samples"_a, "seed"_a,
        "sample_offset"_a, "threads"_a, "table_entries_limit"_a = 0,
        "Exact k-DPP samples of S = diag(1 - alpha p sum(p)) + alpha p p^T in O(N k); "
        "int64 (num_samples, k), rows ascending; row s uses the stream (seed, sample_offset + s). "
        "table_entries_limit (0: 2^23) caps the kept table rows; above it the sampler keeps "
        "checkpoints every ~sqrt(N) rows and recomputes blocks per sample (same samples).");
  m.def("greedy_map_dense", &greedy_dense, "L"_a, "k"_a,
        "Greedy MAP (incremental Cholesky) of a dense float64 L; int64 (k,) in selection order.");
  m.def("greedy_map_factor", &greedy_factor, "factor"_a, "k"_a,
        "Greedy MAP of L = F F^T for a float64 (n, r) factor F; int64 (k,) in selection order.");
  m.def("greedy_map_ipdpp", &greedy_ipdpp, "p"_a, "alpha"_a, "k"_a,
        "Greedy MAP of the IP-DPP kernel of p and alpha; int64 (k,) in selection order.");
  m.def("balanced_subset", &balanced, "labels"_a, "p"_a, "k_per_class"_a, "mode"_a, "alpha_power"_a,
        "alpha_value"_a, "seed"_a, "features"_a, "eigenvalue_rtol"_a, "threads"_a,
        "Kept indices (int64, ascending) of min(k_c, N_c) items per class; see "
        "ipdpp.balanced_subset.");
}

}  // namespace ipdpp::bindings

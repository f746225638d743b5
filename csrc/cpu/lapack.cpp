#include "cpu/lapack.h"

#include <algorithm>
#include <climits>
#include <mutex>
#include <stdexcept>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <dlfcn.h>
#endif

#include "common/error.h"

namespace ipdpp::lapack {
namespace {

// SciPy's cython_blas/cython_lapack use the Fortran convention (every argument by pointer) and
// 32-bit integers.
using dgemm_fn = void(char*, char*, int*, int*, int*, double*, const double*, int*, const double*,
                      int*, double*, double*, int*);
using dsyrk_fn = void(char*, char*, int*, int*, double*, const double*, int*, double*, double*,
                      int*);
using dgemv_fn = void(char*, int*, int*, double*, const double*, int*, const double*, int*, double*,
                      double*, int*);
using dsyevd_fn = void(char*, char*, int*, double*, int*, double*, double*, int*, int*, int*, int*);
using sgemm_fn = void(char*, char*, int*, int*, int*, float*, const float*, int*, const float*,
                      int*, float*, float*, int*);
using ssyrk_fn = void(char*, char*, int*, int*, float*, const float*, int*, float*, float*, int*);
using dtrmm_fn = void(char*, char*, char*, char*, int*, int*, double*, const double*, int*, double*,
                      int*);
using strmm_fn = void(char*, char*, char*, char*, int*, int*, float*, const float*, int*, float*,
                      int*);
using dgeqrf_fn = void(int*, int*, double*, int*, double*, double*, int*, int*);

struct Routines {
  dgemm_fn* dgemm = nullptr;
  dsyrk_fn* dsyrk = nullptr;
  dgemv_fn* dgemv = nullptr;
  dsyevd_fn* dsyevd = nullptr;
  sgemm_fn* sgemm = nullptr;
  ssyrk_fn* ssyrk = nullptr;
  dtrmm_fn* dtrmm = nullptr;
  strmm_fn* strmm = nullptr;
  dgeqrf_fn* dgeqrf = nullptr;
};

Routines& routines() {
  static Routines r;
  return r;
}

int as_blas_int(std::int64_t v, const char* what) {
  if (v < 0 || v > INT_MAX)
    throw std::length_error(std::string("dimension ") + what + " = " + std::to_string(v) +
                            " exceeds the 32-bit LAPACK interface");
  return static_cast<int>(v);
}

template <class F>
F* need(F* f, const char* name) {
  if (f == nullptr)
    throw InternalError(std::string("LAPACK routine ") + name + " was not loaded from SciPy");
  return f;
}

}  // namespace

const char* const* required_routines() {
  static const char* const names[] = {"dgemm", "dsyrk", "dgemv", "dsyevd", "sgemm",
                                      "ssyrk", "dtrmm", "strmm", "dgeqrf", nullptr};
  return names;
}

void set_routine(const std::string& name, void* fn) {
  auto& r = routines();
  if (name == "dgemm")
    r.dgemm = reinterpret_cast<dgemm_fn*>(fn);
  else if (name == "dsyrk")
    r.dsyrk = reinterpret_cast<dsyrk_fn*>(fn);
  else if (name == "dgemv")
    r.dgemv = reinterpret_cast<dgemv_fn*>(fn);
  else if (name == "dsyevd")
    r.dsyevd = reinterpret_cast<dsyevd_fn*>(fn);
  else if (name == "sgemm")
    r.sgemm = reinterpret_cast<sgemm_fn*>(fn);
  else if (name == "ssyrk")
    r.ssyrk = reinterpret_cast<ssyrk_fn*>(fn);
  else if (name == "dtrmm")
    r.dtrmm = reinterpret_cast<dtrmm_fn*>(fn);
  else if (name == "strmm")
    r.strmm = reinterpret_cast<strmm_fn*>(fn);
  else if (name == "dgeqrf")
    r.dgeqrf = reinterpret_cast<dgeqrf_fn*>(fn);
  else
    throw std::invalid_argument("unknown LAPACK routine " + name);
}

void dgemm(char transa, char transb, std::int64_t m, std::int64_t n, std::int64_t k, double alpha,
           const double* a, std::int64_t lda, const double* b, std::int64_t ldb, double beta,
           double* c, std::int64_t ldc) {
  if (m == 0 || n == 0) return;
  int im = as_blas_int(m, "m"), in = as_blas_int(n, "n"), ik = as_blas_int(k, "k");
  int ilda = as_blas_int(lda, "lda"), ildb = as_blas_int(ldb, "ldb"),
      ildc = as_blas_int(ldc, "ldc");
  need(routines().dgemm, "dgemm")(&transa, &transb, &im, &in, &ik, &alpha, a, &ilda, b, &ildb,
                                  &beta, c, &ildc);
}

void dsyrk(char uplo, char trans, std::int64_t n, std::int64_t k, double alpha, const double* a,
           std::int64_t lda, double beta, double* c, std::int64_t ldc) {
  if (n == 0) return;
  int in = as_blas_int(n, "n"), ik = as_blas_int(k, "k");
  int ilda = as_blas_int(lda, "lda"), ildc = as_blas_int(ldc, "ldc");
  need(routines().dsyrk, "dsyrk")(&uplo, &trans, &in, &ik, &alpha, a, &ilda, &beta, c, &ildc);
}

void sgemm(char transa, char transb, std::int64_t m, std::int64_t n, std::int64_t k, float alpha,
           const float* a, std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c,
           std::int64_t ldc) {
  if (m == 0 || n == 0) return;
  int im = as_blas_int(m, "m"), in = as_blas_int(n, "n"), ik = as_blas_int(k, "k");
  int ilda = as_blas_int(lda, "lda"), ildb = as_blas_int(ldb, "ldb"),
      ildc = as_blas_int(ldc, "ldc");
  need(routines().sgemm, "sgemm")(&transa, &transb, &im, &in, &ik, &alpha, a, &ilda, b, &ildb,
                                  &beta, c, &ildc);
}

void ssyrk(char uplo, char trans, std::int64_t n, std::int64_t k, float alpha, const float* a,
           std::int64_t lda, float beta, float* c, std::int64_t ldc) {
  if (n == 0) return;
  int in = as_blas_int(n, "n"), ik = as_blas_int(k, "k");
  int ilda = as_blas_int(lda, "lda"), ildc = as_blas_int(ldc, "ldc");
  need(routines().ssyrk, "ssyrk")(&uplo, &trans, &in, &ik, &alpha, a, &ilda, &beta, c, &ildc);
}

void dtrmm(char side, char uplo, char transa, char diag, std::int64_t m, std::int64_t n,
           double alpha, const double* a, std::int64_t lda, double* b, std::int64_t ldb) {
  if (m == 0 || n == 0) return;
  int im = as_blas_int(m, "m"), in = as_blas_int(n, "n");
  int ilda = as_blas_int(lda, "lda"), ildb = as_blas_int(ldb, "ldb");
  need(routines().dtrmm, "dtrmm")(&side, &uplo, &transa, &diag, &im, &in, &alpha, a, &ilda, b,
                                  &ildb);
}

void strmm(char side, char uplo, char transa, char diag, std::int64_t m, std::int64_t n,
           float alpha, const float* a, std::int64_t lda, float* b, std::int64_t ldb) {
  if (m == 0 || n == 0) return;
  int im = as_blas_int(m, "m"), in = as_blas_int(n, "n");
  int ilda = as_blas_int(lda, "lda"), ildb = as_blas_int(ldb, "ldb");
  need(routines().strmm, "strmm")(&side, &uplo, &transa, &diag, &im, &in, &alpha, a, &ilda, b,
                                  &ildb);
}

void dgeqrf(std::int64_t m, std::int64_t n, double* a) {
  if (m == 0 || n == 0) return;
  int im = as_blas_int(m, "m"), in = as_blas_int(n, "n"), lda = im, info = 0, lwork = -1;
  double work_query = 0.0;
  std::vector<double> tau(static_cast<std::size_t>(std::min(im, in)));
  auto* fn = need(routines().dgeqrf, "dgeqrf");
  fn(&im, &in, a, &lda, tau.data(), &work_query, &lwork, &info);
  if (info != 0)
    throw InternalError("dgeqrf workspace query failed, info = " + std::to_string(info));
  lwork = static_cast<int>(work_query) + 1;
  std::vector<double> work(static_cast<std::size_t>(lwork));
  fn(&im, &in, a, &lda, tau.data(), work.data(), &lwork, &info);
  if (info != 0) throw InternalError("dgeqrf: illegal argument " + std::to_string(-info));
}

namespace {

// OpenBLAS's thread-count functions, looked up in the library that holds the bound dgemm (SciPy
// bundles its own OpenBLAS, whose exported names carry a "scipy_" prefix in recent wheels).
struct BlasThreadControl {
  int (*get)() = nullptr;
  void (*set)(int) = nullptr;
};

BlasThreadControl find_thread_control() {
  BlasThreadControl control;
#if defined(__unix__) || defined(__APPLE__)
  Dl_info info{};
  if (routines().dgemm == nullptr ||
      dladdr(reinterpret_cast<void*>(routines().dgemm), &info) == 0 || info.dli_fname == nullptr)
    return control;
  void* lib = dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
  if (lib == nullptr) return control;
  for (const char* prefix : {"scipy_openblas", "openblas"}) {
    const std::string p(prefix);
    void* get = dlsym(lib, (p + "_get_num_threads").c_str());
    void* set = dlsym(lib, (p + "_set_num_threads").c_str());
    if (get != nullptr && set != nullptr) {
      control.get = reinterpret_cast<int (*)()>(get);
      control.set = reinterpret_cast<void (*)(int)>(set);
      break;
    }
  }
  dlclose(lib);  // RTLD_NOLOAD took a reference to a library that stays loaded
#endif
  return control;
}

struct BlasThreadScopes {
  std::mutex mutex;
  int active = 0;  // live SingleThreadedBlas instances
  int saved = 0;   // the BLAS's thread count before the first of them
  bool looked_up = false;
  BlasThreadControl control;

  const BlasThreadControl& get_control() {  // call with `mutex` held
    if (!looked_up) {
      control = find_thread_control();
      looked_up = true;
    }
    return control;
  }
};

BlasThreadScopes& blas_thread_scopes() {
  static BlasThreadScopes s;
  return s;
}

}  // namespace

SingleThreadedBlas::SingleThreadedBlas() {
  auto& s = blas_thread_scopes();
  std::lock_guard<std::mutex> lock(s.mutex);
  const BlasThreadControl& control = s.get_control();
  if (s.active++ == 0 && control.set != nullptr) {
    s.saved = control.get();
    if (s.saved != 1) control.set(1);
  }
}

SingleThreadedBlas::~SingleThreadedBlas() {
  auto& s = blas_thread_scopes();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (--s.active == 0 && s.control.set != nullptr && s.saved != 1) s.control.set(s.saved);
}

bool SingleThreadedBlas::available() {
  auto& s = blas_thread_scopes();
  std::lock_guard<std::mutex> lock(s.mutex);
  return s.get_control().set != nullptr;
}

void dgemv(char trans, std::int64_t m, std::int64_t n, double alpha, const double* a,
           std::int64_t lda, const double* x, double beta, double* y) {
  if (m == 0 || n == 0) return;
  int im = as_blas_int(m, "m"), in = as_blas_int(n, "n"), ilda = as_blas_int(lda, "lda");
  int one = 1;
  need(routines().dgemv, "dgemv")(&trans, &im, &in, &alpha, a, &ilda, x, &one, &beta, y, &one);
}

void dsyevd(std::int64_t n, double* a, double* w) {
  if (n == 0) return;
  char jobz = 'V', uplo = 'L';
  int in = as_blas_int(n, "n"), lda = in, info = 0;
  int lwork = -1, liwork = -1, iwork_query = 0;
  double work_query = 0.0;
  auto* fn = need(routines().dsyevd, "dsyevd");
  fn(&jobz, &uplo, &in, a, &lda, w, &work_query, &lwork, &iwork_query, &liwork, &info);
  if (info != 0)
    throw std::runtime_error("dsyevd workspace query failed, info = " + std::to_string(info));
  lwork = static_cast<int>(work_query) + 1;
  liwork = iwork_query;
  std::vector<double> work(static_cast<std::size_t>(lwork));
  std::vector<int> iwork(static_cast<std::size_t>(liwork));
  fn(&jobz, &uplo, &in, a, &lda, w, work.data(), &lwork, iwork.data(), &liwork, &info);
  if (info < 0) throw InternalError("dsyevd: illegal argument " + std::to_string(-info));
  if (info > 0)
    throw std::runtime_error("dsyevd failed to converge (info = " + std::to_string(info) +
                             "); is the matrix finite and symmetric?");
}

}  // namespace ipdpp::lapack

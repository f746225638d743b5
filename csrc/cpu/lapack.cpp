#include "cpu/lapack.h"

#include <climits>
#include <stdexcept>
#include <vector>

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

struct Routines {
  dgemm_fn* dgemm = nullptr;
  dsyrk_fn* dsyrk = nullptr;
  dgemv_fn* dgemv = nullptr;
  dsyevd_fn* dsyevd = nullptr;
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
  static const char* const names[] = {"dgemm", "dsyrk", "dgemv", "dsyevd", nullptr};
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

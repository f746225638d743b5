// BLAS/LAPACK routines borrowed from SciPy at import time (scipy.linalg.cython_blas and
// cython_lapack export them as PyCapsules). This needs nothing at build time, works with
// whatever `pip install .` brings from the package index, and uses SciPy's optimised,
// multithreaded OpenBLAS. All matrices are column-major (Fortran) as LAPACK expects; a
// row-major n x m array is a column-major m x n one.
#pragma once

#include <cstdint>
#include <string>

namespace ipdpp::lapack {

// Registers a routine by its LAPACK name ("dsyevd", "dgemm", ...). Called by the bindings.
void set_routine(const std::string& name, void* fn);
// Names of the routines set_routine must receive before any computation.
const char* const* required_routines();  // null-terminated list

// C = alpha * op(A) op(B) + beta * C.
void dgemm(char transa, char transb, std::int64_t m, std::int64_t n, std::int64_t k, double alpha,
           const double* a, std::int64_t lda, const double* b, std::int64_t ldb, double beta,
           double* c, std::int64_t ldc);
// C = alpha * op(A) op(A)^T + beta * C, only the `uplo` triangle of C is referenced.
void dsyrk(char uplo, char trans, std::int64_t n, std::int64_t k, double alpha, const double* a,
           std::int64_t lda, double beta, double* c, std::int64_t ldc);
// y = alpha * op(A) x + beta * y.
void dgemv(char trans, std::int64_t m, std::int64_t n, double alpha, const double* a,
           std::int64_t lda, const double* x, double beta, double* y);
// Single precision twins of dgemm and dsyrk (float32 features stay float32 in the n-sized
// products).
void sgemm(char transa, char transb, std::int64_t m, std::int64_t n, std::int64_t k, float alpha,
           const float* a, std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c,
           std::int64_t ldc);
void ssyrk(char uplo, char trans, std::int64_t n, std::int64_t k, float alpha, const float* a,
           std::int64_t lda, float beta, float* c, std::int64_t ldc);
// B = alpha * op(A) B (side 'L') or alpha * B op(A) (side 'R') for a triangular A; B (m x n) is
// overwritten.
void dtrmm(char side, char uplo, char transa, char diag, std::int64_t m, std::int64_t n,
           double alpha, const double* a, std::int64_t lda, double* b, std::int64_t ldb);
void strmm(char side, char uplo, char transa, char diag, std::int64_t m, std::int64_t n,
           float alpha, const float* a, std::int64_t lda, float* b, std::int64_t ldb);
// Householder QR of A (m x n, lda = m): R in the upper triangle (trapezoid), the reflectors below.
void dgeqrf(std::int64_t m, std::int64_t n, double* a);

// The same routines by element type, for code templated on float / double.
inline void gemm(char transa, char transb, std::int64_t m, std::int64_t n, std::int64_t k,
                 double alpha, const double* a, std::int64_t lda, const double* b, std::int64_t ldb,
                 double beta, double* c, std::int64_t ldc) {
  dgemm(transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
inline void gemm(char transa, char transb, std::int64_t m, std::int64_t n, std::int64_t k,
                 float alpha, const float* a, std::int64_t lda, const float* b, std::int64_t ldb,
                 float beta, float* c, std::int64_t ldc) {
  sgemm(transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
inline void syrk(char uplo, char trans, std::int64_t n, std::int64_t k, double alpha,
                 const double* a, std::int64_t lda, double beta, double* c, std::int64_t ldc) {
  dsyrk(uplo, trans, n, k, alpha, a, lda, beta, c, ldc);
}
inline void syrk(char uplo, char trans, std::int64_t n, std::int64_t k, float alpha, const float* a,
                 std::int64_t lda, float beta, float* c, std::int64_t ldc) {
  ssyrk(uplo, trans, n, k, alpha, a, lda, beta, c, ldc);
}
inline void trmm(char side, char uplo, char transa, char diag, std::int64_t m, std::int64_t n,
                 double alpha, const double* a, std::int64_t lda, double* b, std::int64_t ldb) {
  dtrmm(side, uplo, transa, diag, m, n, alpha, a, lda, b, ldb);
}
inline void trmm(char side, char uplo, char transa, char diag, std::int64_t m, std::int64_t n,
                 float alpha, const float* a, std::int64_t lda, float* b, std::int64_t ldb) {
  strmm(side, uplo, transa, diag, m, n, alpha, a, lda, b, ldb);
}

// While an instance lives, the BLAS runs every call on the calling thread: code that spreads
// independent BLAS calls over its own threads (csrc/common/parallel.h) creates one first, so that
// the BLAS's pool neither oversubscribes the cores nor changes the rounding with its thread
// count. OpenBLAS (SciPy's) has one process-wide thread count, found next to the bound routines;
// the instances share one saved value (the first sets 1, the last restores it), so nested and
// concurrent scopes compose. With a BLAS that has no such control nothing changes.
class SingleThreadedBlas {
 public:
  SingleThreadedBlas();
  ~SingleThreadedBlas();
  SingleThreadedBlas(const SingleThreadedBlas&) = delete;
  SingleThreadedBlas& operator=(const SingleThreadedBlas&) = delete;
  // Whether the BLAS's thread count could be controlled (false: calls may use the BLAS's pool).
  static bool available();
};

// Symmetric eigendecomposition (divide and conquer). On return `a` (n x n, lda = n) holds the
// orthonormal eigenvectors as columns and `w` the eigenvalues in ascending order.
void dsyevd(std::int64_t n, double* a, double* w);

}  // namespace ipdpp::lapack

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
// Symmetric eigendecomposition (divide and conquer). On return `a` (n x n, lda = n) holds the
// orthonormal eigenvectors as columns and `w` the eigenvalues in ascending order.
void dsyevd(std::int64_t n, double* a, double* w);

}  // namespace ipdpp::lapack

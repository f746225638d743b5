// Greedy MAP inference for an L-ensemble by incremental Cholesky (Chen, Zhang & Zhou, "Fast
// Greedy MAP Inference for Determinantal Point Process", NeurIPS 2018, Algorithm 1).
//
// Step t adds the item j that maximises det(L_{Y ∪ {j}}) = det(L_Y) * d_j^2, where d_j^2 is
// the squared residual of item j after projecting out Y (the Schur complement). With the
// Cholesky rows c_i of L_Y's extension, each step costs one row of L and O(n t), so k steps
// cost O(n k^2) plus k row accesses — L itself is never formed for the structured kernels.
//
// Ties go to the smallest index. When every remaining residual is <= 0 (L_Y is already
// numerically maximal-rank, which only happens for k close to the numerical rank), the
// remaining items are taken in order of their residual, then index, without further updates
// (every extension then has determinant 0 to working precision, so any is an argmax).
#pragma once

#include <cstdint>
#include <functional>

namespace ipdpp {

// Writes row j of L (all n entries) into row[0..n).
using KernelRowFn = std::function<void(std::int64_t j, double* row)>;

// Generic form: diagonal [n] of L, row access, k <= n. Writes k indices in selection order.
void greedy_map(std::int64_t n, std::int64_t k, const double* diagonal, const KernelRowFn& row_of,
                std::int64_t* out);

// L given densely, row-major [n, n], symmetric.
void greedy_map_dense(const double* L, std::int64_t n, std::int64_t k, std::int64_t* out);

// L = F F^T with F row-major [n, r] (e.g. V Λ^{1/2} from an eigendecomposition); rows of L
// come from one BLAS matrix-vector product each, O(n r).
void greedy_map_factor(const double* F, std::int64_t n, std::int64_t r, std::int64_t k,
                       std::int64_t* out);

// L = diag(d) + u u^T (the IP-DPP kernel with u = sqrt(alpha) p). Its Schur complements stay
// diagonal plus rank one, so each step costs O(n) and the whole path O(n k).
void greedy_map_diag_rank_one(const double* d, const double* u, std::int64_t n, std::int64_t k,
                              std::int64_t* out);

}  // namespace ipdpp

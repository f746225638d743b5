"""ipdpp.greedy_map: greedy MAP by incremental Cholesky, checked step by step by brute force."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import build_kernel, to_numpy

import ipdpp
from ipdpp import _reference as ref

# A greedy step may pick any item whose determinant is within this relative tolerance of the
# best: the incremental Cholesky and numpy's LU determinants round differently, so exact ties
# (duplicate items) and near-ties can only be compared up to rounding.
DET_RTOL = 1e-9


def assert_greedy_path(L: np.ndarray, path: np.ndarray) -> None:
    """Every step of ``path`` maximises det(L_{Y + i}) over the items not yet chosen."""
    assert len(set(path.tolist())) == path.size, f"greedy path {path} repeats an item"
    chosen: list[int] = []
    for step, item in enumerate(path.tolist()):
        candidates = [i for i in range(L.shape[0]) if i not in chosen]
        dets = np.array([np.linalg.det(L[np.ix_(chosen + [i], chosen + [i])]) for i in candidates])
        best = dets.max()
        got = dets[candidates.index(item)]
        assert got >= best - DET_RTOL * abs(best), (
            f"step {step}: picked {item} with det {got:.6g}, but the best is "
            f"{candidates[int(np.argmax(dets))]} with det {best:.6g}"
        )
        chosen.append(item)


@pytest.mark.parametrize("kind", ["lowrank", "lowrank_quality", "dense", "ipdpp"])
@pytest.mark.parametrize("n", [6, 12])
def test_greedy_path_is_brute_force_argmax(
    kind: str, n: int, dtype: type, seed: int, device: str
) -> None:
    # A rank-deficient dense L rounded to float32 is not PSD within EIGENVALUE_RTOL; keep the
    # dense case full rank (the low-rank cases cover rank deficiency). On a GPU the greedy steps
    # run on host copies and the path comes back to the device.
    rank = n + 2 if kind == "dense" else None
    case = build_kernel(kind, n, dtype=dtype, seed=seed + n, rank=rank, device=device)
    for k in range(0, case.kernel.rank + 1 if kind != "ipdpp" else n + 1):
        path = to_numpy(ipdpp.greedy_map(case.kernel, k))
        assert path.dtype == np.int64 and path.shape == (k,)
        assert_greedy_path(case.L, path)


def test_prefix_property(seed: int) -> None:
    """Greedy is incremental: the path for k is the first k items of the path for k + 3."""
    case = build_kernel("ipdpp", 40, seed=seed)
    long = to_numpy(ipdpp.greedy_map(case.kernel, 13))
    np.testing.assert_array_equal(to_numpy(ipdpp.greedy_map(case.kernel, 10)), long[:10])


def test_ipdpp_ties_zeros_and_zero_diagonal() -> None:
    # ties, zeros, and d_0 = 1 - 0.5 * 1 * 2 = 0 exactly (alpha = 0.5, sum(p) = 2)
    for p, alpha in [
        (np.array([0.0, 0.0, 0.5, 0.5, 0.5, 1.0, 0.9, 0.9]), "paper"),
        (np.array([1.0, 0.5, 0.25, 0.25, 0.0, 0.0]), 0.5),
    ]:
        kernel = ipdpp.IPDPPKernel(p, alpha=alpha)
        L = ref.dense_from_ipdpp(p, alpha)
        for k in range(kernel.structural_rank() + 1):
            assert_greedy_path(L, to_numpy(ipdpp.greedy_map(kernel, k)))


def test_duplicates_and_ties_go_to_the_smallest_index() -> None:
    features = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 2.0], [0.0, 2.0], [0.5, 0.5]])
    path = to_numpy(ipdpp.greedy_map(ipdpp.LowRankKernel(features), 2))
    np.testing.assert_array_equal(path, [2, 0])
    # all p equal: every item has the same diagonal and the same coupling
    np.testing.assert_array_equal(
        to_numpy(ipdpp.greedy_map(ipdpp.IPDPPKernel(np.full(6, 0.4)), 3)), [0, 1, 2]
    )


def test_low_confidence_first() -> None:
    """For IP-DPP the largest diagonal d_i + alpha p_i^2 = 1 - alpha p_i (P - p_i) comes first."""
    p = np.array([0.9, 0.2, 0.7, 0.5])
    assert int(to_numpy(ipdpp.greedy_map(ipdpp.IPDPPKernel(p), 1))[0]) == 1


def test_full_rank_k_and_rank_errors(seed: int) -> None:
    case = build_kernel("lowrank", 10, seed=seed, rank=4)
    path = to_numpy(ipdpp.greedy_map(case.kernel, 4))
    assert sorted(path.tolist()) == sorted(set(path.tolist())) and path.size == 4
    assert abs(np.linalg.det(case.L[np.ix_(path, path)])) > 0
    with pytest.raises(ValueError, match="exceeds the rank"):
        ipdpp.greedy_map(case.kernel, 5)
    with pytest.raises(ValueError, match="exceeds the rank"):
        ipdpp.greedy_map(ipdpp.IPDPPKernel(np.ones(4)), 2)  # S = 11^T / 4 has rank 1
    with pytest.raises(ValueError, match="k must be >= 0"):
        ipdpp.greedy_map(case.kernel, -1)
    with pytest.raises(TypeError, match="k must be an int"):
        ipdpp.greedy_map(case.kernel, 2.0)
    with pytest.raises(TypeError, match="kernel must be"):
        ipdpp.greedy_map(case.L, 2)


def test_torch_kernel_gives_torch_indices(seed: int) -> None:
    torch = pytest.importorskip("torch")
    features = torch.from_numpy(np.random.default_rng(seed).standard_normal((20, 5)))
    out = ipdpp.greedy_map(ipdpp.LowRankKernel(features), 3)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.int64 and out.shape == (3,)


def test_large_ipdpp_without_eigendecomposition(seed: int) -> None:
    """N = 20,000 would need a 3.2 GB dense S; the entry-access path needs O(N k)."""
    p = np.random.default_rng(seed).beta(8.0, 2.0, 20_000)
    path = to_numpy(ipdpp.greedy_map(ipdpp.IPDPPKernel(p), 50))
    assert np.unique(path).size == 50
    # first pick: the largest diagonal, i.e. the smallest p
    assert path[0] == int(np.argmin(p))


def test_ipdpp_closed_form_matches_cholesky_on_dense(seed: int) -> None:
    """The O(n k) diagonal-plus-rank-one path against the generic incremental Cholesky."""
    kernel = ipdpp.IPDPPKernel(np.random.default_rng(seed).beta(8.0, 2.0, 300))
    np.testing.assert_array_equal(
        to_numpy(ipdpp.greedy_map(kernel, 60)),
        to_numpy(ipdpp.greedy_map(ipdpp.DenseKernel(kernel.dense()), 60)),
    )

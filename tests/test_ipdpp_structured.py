"""The structured O(N k) k-DPP sampler of the IP-DPP kernel (method="structured").

Checked against enumeration on small ground sets (chi-square on subset counts), against the dense
spectral path on N = 2,000 (exact inclusion probabilities from two independent formulas, and
the empirical frequencies of both samplers), and in the regime where the elementary symmetric
polynomials overflow double; on every device (the structured sampler of the GPU walks the same
tables with the same random stream, so it also draws the CPU's samples).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pytest
from _stats import assert_marginals, assert_subset_distribution, assert_valid_samples
from conftest import build_kernel, on_the_cpu, to_numpy
from scipy.special import logsumexp

import ipdpp
from ipdpp import _core
from ipdpp import _reference as ref

NUM_SAMPLES = 20_000
Device = Callable[[Any], Any]


def structured_inclusion_probabilities(p: np.ndarray, alpha: float, k: int) -> np.ndarray:
    """Exact k-DPP inclusion probabilities of S = diag(d) + alpha p p^T, without any eigh.

    det(S_A) = prod_A d + sum_{j in A} a_j prod_{A\\j} d (a_j = alpha p_j^2), so the total weight
    of the k-subsets containing i is d_i H_{-i}[k-1] + a_i E_{-i}[k-1], where E_{-i}[m] = e_m(d
    without i) and H_{-i}[m] = sum_{|A|=m, i not in A} det(S_A). Both come from prefix and suffix
    tables: for A = B (prefix) + C (suffix), det weight = H_B E_C + E_B H_C - E_B E_C. Log space
    throughout, so any N and k work.
    """
    p = np.asarray(p, dtype=np.float64)
    n = p.size
    with np.errstate(divide="ignore"):
        log_d = np.log(np.maximum(1.0 - alpha * p * p.sum(), 0.0))
        log_a = np.log(alpha * p * p)
    neg = np.full(k + 1, -np.inf)
    start = neg.copy()
    start[0] = 0.0

    def shift(row: np.ndarray) -> np.ndarray:
        return np.concatenate(([-np.inf], row[:-1]))

    def tables(order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        E = np.empty((n + 1, k + 1))
        H = np.empty((n + 1, k + 1))
        E[0], H[0] = start, start
        for step, i in enumerate(order, start=1):
            E[step] = np.logaddexp(E[step - 1], log_d[i] + shift(E[step - 1]))
            H[step] = np.logaddexp(
                np.logaddexp(H[step - 1], log_d[i] + shift(H[step - 1])),
                log_a[i] + shift(E[step - 1]),
            )
        return E, H

    E_pre, H_pre = tables(np.arange(n))  # row i: items 0..i-1
    E_suf_rev, H_suf_rev = tables(np.arange(n)[::-1])  # row j: items n-j..n-1
    m = k - 1
    log_total = H_pre[n, k]
    pi = np.empty(n)
    for i in range(n):
        Ep, Hp = E_pre[i, : m + 1], H_pre[i, : m + 1]
        Es, Hs = E_suf_rev[n - 1 - i, m::-1], H_suf_rev[n - 1 - i, m::-1]
        log_e = logsumexp(Ep + Es)
        # H_B E_C + E_B H_C - E_B E_C >= 0 termwise (H >= E), so log-space subtraction is safe.
        plus = logsumexp(np.concatenate((Hp + Es, Ep + Hs)))
        log_h = plus + np.log1p(-np.exp(log_e - plus)) if np.isfinite(plus) else -np.inf
        pi[i] = np.exp(np.logaddexp(log_d[i] + log_h, log_a[i] + log_e) - log_total)
    return pi


def _structured(kernel: ipdpp.IPDPPKernel, k: int, num: int, seed: int, **kw: object) -> np.ndarray:
    samples = to_numpy(ipdpp.sample_k_dpp(kernel, k, num, seed=seed, method="structured", **kw))
    assert samples.dtype == np.int64 and samples.shape == (num, k)
    assert_valid_samples(samples, kernel.n, k)
    return samples


@pytest.mark.parametrize("k", [1, 3, 6])
def test_matches_enumeration_beta_p(device: str, dtype: type, seed: int, k: int) -> None:
    case = build_kernel("ipdpp", 8, dtype=dtype, seed=seed, device=device)
    samples = _structured(case.kernel, k, NUM_SAMPLES, seed)
    assert_subset_distribution(
        samples, ref.k_dpp_subset_probabilities(case.L, k), label=f"{case.name} k={k}"
    )


@pytest.mark.parametrize(
    ("p", "alpha", "k"),
    [
        # ties and zeros (a_i = 0: items with p_i = 0 are still selectable, through d_i = 1)
        ([0.0, 0.0, 0.5, 0.5, 0.5, 1.0, 0.9, 0.9], "paper", 4),
        # d_0 = 1 - alpha p_0 sum(p) = 1 - 0.5 * 1 * 2 = 0 exactly: item 0 is reachable only as
        # the rank-one term's special item
        ([1.0, 0.5, 0.25, 0.25, 0.0, 0.0], 0.5, 3),
        ([1.0, 0.5, 0.25, 0.25, 0.0, 0.0], 0.5, 5),
    ],
)
def test_matches_enumeration_ties_and_zeros(
    on_device: Device, dtype: type, seed: int, p: list[float], alpha: str | float, k: int
) -> None:
    p_in = np.array(p, dtype=dtype)
    kernel = ipdpp.IPDPPKernel(on_device(p_in), alpha=alpha)
    L = ref.dense_from_ipdpp(p_in.astype(np.float64), alpha)
    samples = _structured(kernel, k, NUM_SAMPLES, seed)
    assert_subset_distribution(
        samples, ref.k_dpp_subset_probabilities(L, k), label=f"p={p} alpha={alpha} k={k}"
    )


def test_rank_one_kernel(on_device: Device, seed: int) -> None:
    # Every p_i = 1 with alpha = 1/N gives d = 0 and S = 11^T / N: rank one, so k = 1 is
    # uniform and k = 2 does not exist.
    kernel = ipdpp.IPDPPKernel(on_device(np.ones(5)))
    assert kernel.structural_rank() == 1
    samples = _structured(kernel, 1, NUM_SAMPLES, seed)
    assert_subset_distribution(samples, {(i,): 0.2 for i in range(5)}, label="rank one")
    with pytest.raises(ValueError, match="rank"):
        ipdpp.sample_k_dpp(kernel, 2, seed=seed, method="structured")


def test_zero_and_full_k(on_device: Device, seed: int) -> None:
    kernel = ipdpp.IPDPPKernel(on_device(np.array([0.3, 0.9, 0.6, 0.1])))
    assert to_numpy(ipdpp.sample_k_dpp(kernel, 0, 3, seed=seed, method="structured")).shape == (
        3,
        0,
    )
    full = to_numpy(ipdpp.sample_k_dpp(kernel, 4, 2, seed=seed, method="structured"))
    np.testing.assert_array_equal(full, [[0, 1, 2, 3]] * 2)
    with pytest.raises(ValueError, match="rank"):
        ipdpp.sample_k_dpp(kernel, 5, seed=seed, method="structured")


def test_batch_equals_one_by_one_across_threads(device: str, seed: int) -> None:
    case = build_kernel("ipdpp", 300, seed=seed, device=device)
    batch = _structured(case.kernel, 40, 12, seed, threads=2)
    single_thread = _structured(case.kernel, 40, 12, seed, threads=1)
    np.testing.assert_array_equal(batch, single_thread)
    for i in (0, 5, 11):
        one = _structured(case.kernel, 40, 1, seed, sample_offset=i)
        np.testing.assert_array_equal(one[0], batch[i])
    assert not np.array_equal(batch[0], batch[1])


def test_auto_is_structured(device: str, seed: int) -> None:
    case = build_kernel("ipdpp", 50, seed=seed, device=device)
    auto = to_numpy(ipdpp.sample_k_dpp(case.kernel, 7, 4, seed=seed))
    np.testing.assert_array_equal(auto, _structured(case.kernel, 7, 4, seed))


def test_same_samples_as_the_cpu(on_device: Device, seed: int) -> None:
    # Same tables, same walk, same Philox stream on every device: the draws agree (a disagreement
    # needs a uniform within ~1e-16 of a branch boundary).
    p = np.random.default_rng(seed).beta(8.0, 2.0, 300)
    with on_the_cpu():
        cpu = _structured(ipdpp.IPDPPKernel(p), 20, 50, seed)
    np.testing.assert_array_equal(_structured(ipdpp.IPDPPKernel(on_device(p)), 20, 50, seed), cpu)


def test_torch_input_gives_torch_output(seed: int) -> None:
    torch = pytest.importorskip("torch")
    p = torch.from_numpy(np.random.default_rng(seed).beta(8.0, 2.0, 30))
    out = ipdpp.sample_k_dpp(ipdpp.IPDPPKernel(p), 5, 3, seed=seed, method="structured")
    assert isinstance(out, torch.Tensor) and out.dtype == torch.int64 and out.shape == (3, 5)


def test_reference_inclusion_matches_enumeration(seed: int) -> None:
    """The structured inclusion formula of this file against brute-force enumeration."""
    for p, alpha in [
        (np.random.default_rng(seed).beta(8.0, 2.0, 7), "paper"),
        (np.array([1.0, 0.5, 0.25, 0.25, 0.0, 0.0]), 0.5),
    ]:
        L = ref.dense_from_ipdpp(p, alpha)
        for k in (1, 3, 5):
            np.testing.assert_allclose(
                structured_inclusion_probabilities(p, ref.ipdpp_alpha(alpha, p.size), k),
                ref.k_dpp_inclusion_probabilities_enumerated(L, k),
                rtol=1e-10,
                atol=1e-13,
            )


@pytest.mark.slow
@pytest.mark.emulator_heavy
def test_structured_versus_spectral_at_n2000(on_device: Device, seed: int) -> None:
    """Exact marginals agree between the two formulas; both samplers match them empirically."""
    n, k, num = 2000, 20, 2000
    kernel = ipdpp.IPDPPKernel(on_device(np.random.default_rng(seed).beta(8.0, 2.0, n)))
    pi_structured = structured_inclusion_probabilities(kernel.p, kernel.alpha, k)
    # through the kernel's eigendecomposition (the secular equation on the CPU)
    pi_spectral = to_numpy(ipdpp.inclusion_probabilities(kernel, k))
    np.testing.assert_allclose(pi_structured, pi_spectral, rtol=1e-7, atol=1e-12)
    assert pi_structured.sum() == pytest.approx(k, rel=1e-10)
    structured = _structured(kernel, k, num, seed)
    spectral = to_numpy(ipdpp.sample_k_dpp(kernel, k, num, seed=seed, method="spectral"))
    assert_marginals(structured, pi_structured, label="structured sampler")
    assert_marginals(spectral, pi_structured, label="spectral sampler")


@pytest.mark.emulator_heavy
def test_no_overflow_uniform_case(on_device: Device, seed: int) -> None:
    """Equal p make every k-subset equally likely; e_k(d) ~ C(2000, 1000) ~ 1e600 overflows."""
    n, k = 2000, 1000
    kernel = ipdpp.IPDPPKernel(on_device(np.full(n, 0.7)))
    samples = _structured(kernel, k, 200, seed)
    assert_marginals(samples, np.full(n, k / n), label="uniform, N=2000 k=1000")


@pytest.mark.emulator_heavy
def test_no_overflow_heterogeneous_p(on_device: Device, seed: int) -> None:
    """Beta(8, 2) confidences where e_k(d) overflows double: marginals against the exact ones."""
    n, k = 1200, 400
    p = np.random.default_rng(seed).beta(8.0, 2.0, n)
    kernel = ipdpp.IPDPPKernel(on_device(p))
    pi = structured_inclusion_probabilities(p, kernel.alpha, k)
    assert pi.sum() == pytest.approx(k, rel=1e-9)
    assert_marginals(_structured(kernel, k, 400, seed), pi, label="Beta(8,2), N=1200 k=400")


def test_low_confidence_items_are_favoured(seed: int) -> None:
    """The IP-DPP property the paper relies on: lower p_i means higher inclusion probability."""
    p = np.linspace(0.05, 0.95, 40)
    kernel = ipdpp.IPDPPKernel(p)
    pi = structured_inclusion_probabilities(p, kernel.alpha, 10)
    assert np.all(np.diff(pi) < 0)


def test_log_space_fallback(on_device: Device, seed: int) -> None:
    """Rows spanning > 1e570 (100 items with d ~ 1e-16) force the log-space tables.

    p in {1, 0.5} keeps sum(p) = 200 exact, so the reference computes the very same d_i.
    """
    p = np.concatenate([np.ones(100), np.full(200, 0.5)])
    alpha = (1.0 - 2.0**-52) / 200.0
    kernel = ipdpp.IPDPPKernel(on_device(p), alpha=alpha)
    assert 0.0 < kernel.diagonal[0] < 1e-15
    pi = structured_inclusion_probabilities(p, alpha, 150)
    assert pi.sum() == pytest.approx(150, rel=1e-9)
    assert 0.05 < pi[:100].sum() < 0.95  # the tiny-d items appear, as the rank-one term's item
    assert_marginals(_structured(kernel, 150, 4000, seed), pi, label="log-space fallback")


@pytest.mark.parametrize(
    ("n", "k", "fallback"), [(3000, 40, False), (500, 250, False), (300, 150, True)]
)
@pytest.mark.parametrize("table_entries_limit", [1, 1000])
def test_checkpointed_tables_give_the_same_samples(
    seed: int, n: int, k: int, fallback: bool, table_entries_limit: int
) -> None:
    """Above the memory limit only every ~sqrt(N)-th row is kept; samples must not change.

    (Through ipdpp._core, whose limit argument exists for this: the public API uses the
    default of 2^23 entries.)
    """
    if fallback:  # the log-space tables of test_log_space_fallback
        p = np.concatenate([np.ones(100), np.full(200, 0.5)])
        alpha = (1.0 - 2.0**-52) / 200.0
    else:
        p = np.random.default_rng(seed).beta(8.0, 2.0, n)
        alpha = 1.0 / n
    full = _core.ipdpp_sample_k(p, alpha, k, 16, seed, 0, 2)
    checkpointed = _core.ipdpp_sample_k(
        p, alpha, k, 16, seed, 0, 2, table_entries_limit=table_entries_limit
    )
    np.testing.assert_array_equal(checkpointed, full)

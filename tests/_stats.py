"""Statistical helpers shared by the exactness tests.

Everything here is deterministic given the samples: the tests draw samples with fixed seeds, so a
test either always passes or always fails. The thresholds live here, not in test bodies:

- ``P_VALUE_THRESHOLD`` (1e-4): a chi-square goodness-of-fit test fails below it. With fixed seeds a
  correct sampler gives a p-value that is uniform over seeds, so one in 10,000 seed choices would
  fail; tests that land near the threshold must use more samples, not a different seed.
- ``MARGINAL_Z`` (5): empirical inclusion frequencies must lie within 5 standard errors of the
  exact inclusion probabilities. Under the null, P(|z| > 5) ~ 5.7e-7 per item, so the chance that
  the worst of n = 500 items exceeds it is ~3e-4.
- ``MIN_EXPECTED`` (5): the usual rule for the chi-square approximation; cells with a smaller
  expected count are pooled (see :func:`chisquare_subsets`).

Subsets are represented as sorted tuples of Python ints, e.g. ``(0, 3, 5)``; the empty set is
``()``.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

P_VALUE_THRESHOLD = 1e-4
MARGINAL_Z = 5.0
MIN_EXPECTED = 5.0
# The exact probabilities passed in must sum to one within this tolerance: a larger defect means
# the reference (not the sampler) is wrong, and the test should say so rather than misfire.
PROBABILITY_SUM_ATOL = 1e-8

Subset = tuple[int, ...]


# --------------------------------------------------------------------------------------------
# Enumeration and counting
# --------------------------------------------------------------------------------------------


def all_subsets(n: int) -> list[Subset]:
    """Every subset of ``range(n)`` as a sorted tuple, the empty set first (2**n of them)."""
    return [s for k in range(n + 1) for s in itertools.combinations(range(n), k)]


def all_k_subsets(n: int, k: int) -> list[Subset]:
    """Every ``k``-subset of ``range(n)`` as a sorted tuple (``comb(n, k)`` of them)."""
    return list(itertools.combinations(range(n), k))


def _as_rows(samples: object) -> list[np.ndarray]:
    """Samples (2-D array, torch tensor or list of 1-D arrays) as a list of 1-D int arrays."""
    if hasattr(samples, "detach"):  # torch tensor: no torch import needed here
        samples = samples.detach().cpu().numpy()
    if isinstance(samples, np.ndarray):
        if samples.ndim != 2:
            raise ValueError(f"samples must be a 2-D array (S, k); got shape {samples.shape}")
        return list(samples)
    rows = []
    for row in samples:  # type: ignore[attr-defined]
        if hasattr(row, "detach"):
            row = row.detach().cpu().numpy()
        rows.append(np.asarray(row))
    return rows


def count_subsets(samples: object) -> Counter[Subset]:
    """Count how often each subset was sampled.

    Parameters
    ----------
    samples : array (S, k), torch tensor, or sequence of 1-D index arrays
        One sample per row / element. Indices are sorted before counting, so the order inside a
        sample does not matter (but duplicates do: a sample with a repeated index is counted as the
        tuple with the repeat, which no enumeration contains, so a chi-square test then fails).

    Returns
    -------
    collections.Counter mapping sorted tuples of ints to counts.
    """
    return Counter(tuple(sorted(int(i) for i in row)) for row in _as_rows(samples))


def assert_valid_samples(samples: object, n: int, k: int | None = None) -> None:
    """Assert every sample is a set of distinct indices in ``range(n)`` (of size ``k`` if given).

    Also checks that the indices are integers and sorted ascending, as the API promises.
    """
    rows = _as_rows(samples)
    for s, row in enumerate(rows):
        assert row.ndim == 1, f"sample {s} is not 1-D: shape {row.shape}"
        assert np.issubdtype(row.dtype, np.integer), f"sample {s} has dtype {row.dtype}"
        if k is not None:
            assert row.size == k, f"sample {s} has {row.size} items, expected k = {k}"
        if row.size:
            assert row.min() >= 0 and row.max() < n, f"sample {s} = {row} is outside range({n})"
            assert np.all(np.diff(row) > 0), f"sample {s} = {row} is not strictly increasing"


# --------------------------------------------------------------------------------------------
# Chi-square goodness of fit on subset counts
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChiSquareResult:
    """Outcome of :func:`chisquare_subsets`.

    ``pvalue`` is 0.0 when a subset of probability zero was observed (an impossible outcome).
    ``worst`` lists the (subset, observed, expected) cells with the largest standardised residuals,
    to make a failure message useful.
    """

    statistic: float
    dof: int
    pvalue: float
    num_samples: int
    num_cells: int
    num_pooled: int
    impossible: tuple[tuple[Subset, int], ...]
    worst: tuple[tuple[str, int, float], ...]

    def describe(self) -> str:
        lines = [
            f"chi2 = {self.statistic:.2f}, dof = {self.dof}, p = {self.pvalue:.3g} "
            f"({self.num_samples} samples, {self.num_cells} cells, "
            f"{self.num_pooled} subsets pooled into one cell)"
        ]
        if self.impossible:
            lines.append(f"observed subsets of probability 0: {list(self.impossible)[:10]}")
        lines.append("largest residuals (subset: observed vs expected):")
        lines += [f"  {name}: {obs} vs {exp:.1f}" for name, obs, exp in self.worst]
        return "\n".join(lines)


def chisquare_subsets(
    counts: Mapping[Subset, int],
    probabilities: Mapping[Subset, float],
    *,
    min_expected: float = MIN_EXPECTED,
) -> ChiSquareResult:
    """Pearson chi-square goodness of fit of subset counts against exact probabilities.

    Parameters
    ----------
    counts : mapping subset -> int
        Observed counts, e.g. from :func:`count_subsets`.
    probabilities : mapping subset -> float
        Exact probability of every possible subset (sum 1 within ``PROBABILITY_SUM_ATOL``).
        Subsets missing from the mapping have probability zero.
    min_expected : float
        Cells whose expected count is below this are pooled.

    Returns
    -------
    ChiSquareResult

    Notes
    -----
    Pooling: the cells are sorted by expected count, and the smallest ones are merged into a single
    pooled cell (its observed and expected counts are the sums) until the pooled cell reaches
    ``min_expected`` *and* every remaining cell does too. Pooling the smallest cells keeps the
    informative, well-populated cells intact. If the pooled cell can not reach ``min_expected``
    with all small cells, the smallest remaining regular cell is merged into it as well. The
    degrees of freedom are (number of cells after pooling) - 1; there are no fitted parameters.

    A sampled subset with probability zero (or absent from ``probabilities``) makes the p-value
    exactly 0: the sampler produced something impossible.

    Raises
    ------
    ValueError
        If the probabilities do not sum to one, are negative, or fewer than two cells remain after
        pooling (the test would have no power; use an exact check instead).
    """
    probs = {tuple(s): float(p) for s, p in probabilities.items()}
    values = np.fromiter(probs.values(), dtype=np.float64, count=len(probs))
    if np.any(values < 0) or not np.all(np.isfinite(values)):
        raise ValueError("probabilities must be finite and non-negative")
    total = float(values.sum())
    if abs(total - 1.0) > PROBABILITY_SUM_ATOL:
        raise ValueError(f"probabilities must sum to 1; they sum to {total!r}")
    num_samples = int(sum(counts.values()))
    if num_samples <= 0:
        raise ValueError("counts must contain at least one sample")

    impossible = tuple(
        (tuple(s), int(c)) for s, c in counts.items() if c > 0 and probs.get(tuple(s), 0.0) <= 0.0
    )
    support = sorted((p, s) for s, p in probs.items() if p > 0.0)
    observed = np.array([counts.get(s, 0) for _, s in support], dtype=np.float64)
    expected = np.array([p for p, _ in support]) * num_samples

    # `support` is sorted by expected count ascending, so pooling takes a prefix.
    num_pooled = 0
    if expected.size and expected[0] < min_expected:
        num_pooled = int(np.searchsorted(expected, min_expected, side="left"))
        while num_pooled < expected.size and expected[:num_pooled].sum() < min_expected:
            num_pooled += 1
    if num_pooled > 0:
        obs_cells = np.concatenate([[observed[:num_pooled].sum()], observed[num_pooled:]])
        exp_cells = np.concatenate([[expected[:num_pooled].sum()], expected[num_pooled:]])
        names = [f"<{num_pooled} pooled subsets>"] + [str(s) for _, s in support[num_pooled:]]
    else:
        obs_cells, exp_cells = observed, expected
        names = [str(s) for _, s in support]
    if obs_cells.size < 2:
        raise ValueError(
            f"only {obs_cells.size} cell(s) after pooling ({len(support)} possible subsets, "
            f"{num_samples} samples): a chi-square test has no power here"
        )

    residuals = (obs_cells - exp_cells) / np.sqrt(exp_cells)
    statistic = float(np.sum(residuals**2))
    dof = int(obs_cells.size - 1)
    pvalue = 0.0 if impossible else float(stats.chi2.sf(statistic, dof))
    order = np.argsort(-np.abs(residuals))[:5]
    worst = tuple((names[i], int(obs_cells[i]), float(exp_cells[i])) for i in order)
    return ChiSquareResult(
        statistic=statistic,
        dof=dof,
        pvalue=pvalue,
        num_samples=num_samples,
        num_cells=int(obs_cells.size),
        num_pooled=num_pooled,
        impossible=impossible,
        worst=worst,
    )


def chisquare_pvalue(counts: Mapping[Subset, int], probabilities: Mapping[Subset, float]) -> float:
    """The p-value of :func:`chisquare_subsets` (0.0 if an impossible subset was sampled)."""
    return chisquare_subsets(counts, probabilities).pvalue


def assert_subset_distribution(
    samples: object,
    probabilities: Mapping[Subset, float],
    *,
    threshold: float = P_VALUE_THRESHOLD,
    label: str = "",
) -> ChiSquareResult:
    """Assert that ``samples`` fit the exact subset distribution (chi-square p > ``threshold``).

    Parameters
    ----------
    samples : array (S, k), torch tensor, or sequence of 1-D index arrays
    probabilities : mapping subset -> float
        Exact probabilities of all possible subsets (see :func:`chisquare_subsets`).
    threshold : float
        Fail when the p-value is at or below this (default ``P_VALUE_THRESHOLD``).
    label : str
        Prefix of the failure message (which sampler / kernel / dtype was tested).

    Returns
    -------
    ChiSquareResult, for tests that want to look at it further.
    """
    result = chisquare_subsets(count_subsets(samples), probabilities)
    assert result.pvalue > threshold, (
        f"{label + ': ' if label else ''}samples do not follow the exact distribution "
        f"(p = {result.pvalue:.3g} <= {threshold:g})\n{result.describe()}"
    )
    return result


# --------------------------------------------------------------------------------------------
# Marginals (inclusion probabilities)
# --------------------------------------------------------------------------------------------


def inclusion_frequencies(samples: object, n: int) -> np.ndarray:
    """Fraction of samples that contain each item: float64 array (n,)."""
    rows = _as_rows(samples)
    hits = np.zeros(n, dtype=np.int64)
    for row in rows:
        hits += np.bincount(np.asarray(row, dtype=np.int64), minlength=n)[:n]
    return hits / len(rows)


def marginal_z_scores(samples: object, probabilities: Sequence[float] | np.ndarray) -> np.ndarray:
    """Standardised differences between inclusion frequencies and exact inclusion probabilities.

    Across independent samples, item i's indicator is Bernoulli(pi_i), so its frequency over S
    samples has standard error sqrt(pi_i (1 - pi_i) / S). Items with pi_i in {0, 1} have standard
    error 0: their z is 0 when the frequency matches exactly and +inf otherwise.

    Returns
    -------
    float64 array (n,) of |frequency - pi| / SE.
    """
    pi = np.asarray(probabilities, dtype=np.float64)
    rows = _as_rows(samples)
    freq = inclusion_frequencies(rows, pi.size)
    se = np.sqrt(np.clip(pi * (1.0 - pi), 0.0, None) / len(rows))
    diff = np.abs(freq - pi)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, diff / np.where(se > 0, se, 1.0), np.where(diff > 1e-12, np.inf, 0.0))
    return z


def marginal_worst_z(samples: object, probabilities: Sequence[float] | np.ndarray) -> float:
    """The largest z-score of :func:`marginal_z_scores`."""
    return float(np.max(marginal_z_scores(samples, probabilities)))


def assert_marginals(
    samples: object,
    probabilities: Sequence[float] | np.ndarray,
    *,
    z: float = MARGINAL_Z,
    label: str = "",
) -> float:
    """Assert every item's inclusion frequency is within ``z`` standard errors of its probability.

    Returns the worst z-score observed (for tests that want to report or check it further).
    """
    pi = np.asarray(probabilities, dtype=np.float64)
    scores = marginal_z_scores(samples, pi)
    worst = int(np.argmax(scores))
    freq = inclusion_frequencies(samples, pi.size)
    assert scores[worst] <= z, (
        f"{label + ': ' if label else ''}inclusion frequency of item {worst} is "
        f"{freq[worst]:.5f}, exact probability {pi[worst]:.5f}: z = {scores[worst]:.2f} > {z:g} "
        f"({np.sum(scores > z)} of {pi.size} items beyond {z:g} SE)"
    )
    return float(scores[worst])


def subset_probability_table(subsets: Iterable[Subset], probability: object) -> dict[Subset, float]:
    """``{subset: probability(subset)}`` for a callable ``probability`` over the given subsets."""
    return {tuple(s): float(probability(s)) for s in subsets}  # type: ignore[operator]


def two_sample_marginal_z(samples_a: object, samples_b: object, n: int) -> np.ndarray:
    """Per-item z-scores of the difference of inclusion frequencies between two sample sets.

    Pooled two-proportion test: z_i = |f_a - f_b| / sqrt(f (1 - f) (1/S_a + 1/S_b)) with f the
    pooled frequency. Items never (or always) seen in both sets have z = 0.
    """
    rows_a, rows_b = _as_rows(samples_a), _as_rows(samples_b)
    fa, fb = inclusion_frequencies(rows_a, n), inclusion_frequencies(rows_b, n)
    sa, sb = len(rows_a), len(rows_b)
    pooled = (fa * sa + fb * sb) / (sa + sb)
    se = np.sqrt(pooled * (1.0 - pooled) * (1.0 / sa + 1.0 / sb))
    return np.where(se > 0, np.abs(fa - fb) / np.where(se > 0, se, 1.0), 0.0)

"""Paired per-user comparisons: t-test, Holm correction, effect size and a bootstrap CI.

Conventions (stated in every caption that uses them):
- unit of pairing: the test user; vectors are aligned by the dataset's internal user order;
- test: two-sided paired t-test (`scipy.stats.ttest_rel`); a p-value that is undefined because
  every difference is zero counts as 1;
- correction: Holm over all tests of one table (`statsmodels.stats.multitest.multipletests`);
  significant = Holm-adjusted p < ALPHA;
- effect size: paired Cohen's d_z = mean(diff) / std(diff, ddof=1);
- CI: percentile bootstrap of the mean difference, resampling users (`scipy.stats.bootstrap`,
  BOOTSTRAP_RESAMPLES resamples, generator `numpy.random.default_rng(BOOTSTRAP_SEED)`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats
from statsmodels.stats.multitest import multipletests

ALPHA = 0.01
CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 2024
_CHUNK_ELEMENTS = 1 << 22  # resampled values held in memory at once


@dataclass(frozen=True)
class PairedTest:
    """Comparison of system a against system b on the same users."""

    n_users: int
    mean_a: float
    mean_b: float
    diff: float
    ci_low: float
    ci_high: float
    d_z: float
    t: float
    p: float


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm step-down adjusted p-values (same order as the input); a NaN stays NaN and counts as a test."""
    p = np.asarray(pvalues, dtype=np.float64)
    return multipletests(p, method="holm")[1] if len(p) else p


def bootstrap_ci(
    x: np.ndarray, *, n_resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED, confidence: float = CONFIDENCE
) -> tuple[float, float]:
    """Percentile bootstrap CI of mean(x), resampling entries with replacement (`scipy.stats.bootstrap`).

    Resamples are drawn in batches that hold about 4M values in memory; one entry is its own interval.
    """
    x = np.asarray(x, dtype=np.float64)
    if len(x) == 1:
        return float(x[0]), float(x[0])
    result = stats.bootstrap(
        (x,),
        np.mean,
        n_resamples=n_resamples,
        batch=max(1, min(n_resamples, _CHUNK_ELEMENTS // len(x))),
        vectorized=True,
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def paired_test(a: np.ndarray, b: np.ndarray) -> PairedTest:
    """Paired two-sided t-test, d_z and bootstrap CI of mean(a - b)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired vectors differ in length: {a.shape} vs {b.shape}")
    diff = a - b
    sd = diff.std(ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        result = stats.ttest_rel(a, b)
    p = float(result.pvalue)
    low, high = bootstrap_ci(diff)
    return PairedTest(
        n_users=len(diff),
        mean_a=float(a.mean()),
        mean_b=float(b.mean()),
        diff=float(diff.mean()),
        ci_low=low,
        ci_high=high,
        d_z=float(diff.mean() / sd) if sd > 0 else float("nan"),
        t=float(result.statistic),
        p=1.0 if np.isnan(p) else p,
    )

"""Paired differences over seeds with a confidence interval: pure functions.

The ablation rows of one dataset are trained on the same seeds (the seed is derived from the
dataset and the seed index, the same for every row) and the same episodes, so a gain is read as
the mean of the per-seed differences, with a paired (Student) t interval on those differences:
mean ± t(1 − α/2, n − 1) · sd / √n, sd the sample standard deviation (ddof = 1). choice: t rather
than a bootstrap because a sweep has few seeds (2-5), where a bootstrap's percentile interval is
too narrow (it can take at most n^n distinct values and ignores the t quantile's width).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats

CONFIDENCE = 0.95  # choice: the conventional level; every report states it
METHOD = "paired t"


@dataclass(frozen=True)
class Interval:
    """The mean of n values and its two-sided confidence interval (None for n < 2)."""

    mean: float
    n: int
    low: float | None
    high: float | None
    confidence: float = CONFIDENCE

    @property
    def excludes_zero(self) -> bool:
        return self.low is not None and (self.low > 0 or self.high < 0)

    def text(self) -> str:
        """``+6.1 [+5.2, +7.0] (5)``, ``+6.1 (1)`` without an interval."""
        if self.low is None:
            return f"{self.mean + 0.0:+.1f} ({self.n})"
        return f"{self.mean + 0.0:+.1f} [{self.low + 0.0:+.1f}, {self.high + 0.0:+.1f}] ({self.n})"


def mean_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> Interval:
    """Student t interval of the mean of ``values`` (one sample)."""
    n = len(values)
    if n == 0:
        raise ValueError("mean_interval: expected at least one value")
    mean = math.fsum(values) / n
    if n < 2:
        return Interval(mean, n, None, None, confidence)
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    half = stats.t.ppf(0.5 + confidence / 2, n - 1) * sd / math.sqrt(n)
    return Interval(mean, n, mean - half, mean + half, confidence)


def paired(a: dict[int, float], b: dict[int, float],
           confidence: float = CONFIDENCE) -> Interval | None:
    """Mean of a − b over the keys (seed indices) both have, with its paired t interval; None
    when they share no key."""
    keys = sorted(a.keys() & b.keys())
    if not keys:
        return None
    return mean_interval([a[k] - b[k] for k in keys], confidence)

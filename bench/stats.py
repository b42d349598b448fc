"""Differences over seeds with a confidence interval, and what a comparison could detect: pure
functions.

The ablation rows of one dataset are trained on the same seeds (the seed is derived from the
dataset and the seed index, the same for every row) and the same episodes, so a gain is read as
the mean of the per-seed differences, with a paired (Student) t interval on those differences:
mean ± t(1 − α/2, n − 1) · sd / √n, sd the sample standard deviation (ddof = 1). choice: t rather
than a bootstrap because a sweep has few seeds (2-5), where a bootstrap's percentile interval is
too narrow (it can take at most n^n distinct values and ignores the t quantile's width).

Below :data:`MIN_N` values no interval is given: with n = 2 the t interval rests on one degree of
freedom, and two equal differences give a zero-width interval (``[-0.7, -0.7]``) that claims a
certainty two seeds cannot give. Such a comparison reads "cannot judge (n=2)".

Runs of two variants that do not share their seeds are compared unpaired, with Welch's t
interval (:func:`welch`). :func:`detectable` gives the smallest true difference that a test of
this n and spread would find at the stated level with probability :data:`POWER`: the δ where the
noncentral t's two-sided power reaches it (:func:`_power`), with the sample standard deviation
standing in for the true one (a plug-in: with few seeds it is itself uncertain).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import integrate, optimize, stats

CONFIDENCE = 0.95  # choice: the conventional level; every report states it
METHOD = "paired t"
MIN_N = 3  # choice: the fewest values per side (pairs, when paired) an interval is given for
POWER = 0.9  # choice: the conventional power of a detectable difference


@dataclass(frozen=True)
class Interval:
    """A mean (difference) and its two-sided confidence interval (None for n < :data:`MIN_N`);
    ``se`` and ``dof``: its standard error and degrees of freedom, for :func:`detectable`."""

    mean: float
    n: int
    low: float | None
    high: float | None
    confidence: float = CONFIDENCE
    se: float | None = None
    dof: float | None = None

    @property
    def excludes_zero(self) -> bool:
        return self.low is not None and (self.low > 0 or self.high < 0)

    def text(self) -> str:
        """``+6.1 [+5.2, +7.0] (5)``; ``+6.1 (n=2, cannot judge)`` without an interval."""
        if self.low is None:
            return f"{self.mean + 0.0:+.1f} (n={self.n}, cannot judge)"
        return f"{self.mean + 0.0:+.1f} [{self.low + 0.0:+.1f}, {self.high + 0.0:+.1f}] ({self.n})"


def mean_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> Interval:
    """Student t interval of the mean of ``values`` (one sample)."""
    n = len(values)
    if n == 0:
        raise ValueError("mean_interval: expected at least one value")
    mean = math.fsum(values) / n
    if n < MIN_N:
        return Interval(mean, n, None, None, confidence)
    se = _sd(values, mean) / math.sqrt(n)
    half = stats.t.ppf(0.5 + confidence / 2, n - 1) * se
    return Interval(mean, n, mean - half, mean + half, confidence, se, n - 1)


def welch(b: Sequence[float], a: Sequence[float], confidence: float = CONFIDENCE) -> Interval:
    """mean(b) − mean(a) with Welch's t interval (unequal variances, Welch–Satterthwaite degrees
    of freedom); n is the smaller side's count, no interval when it is below :data:`MIN_N`."""
    n = min(len(a), len(b))
    if n == 0:
        raise ValueError("welch: expected values on both sides")
    ma, mb = math.fsum(a) / len(a), math.fsum(b) / len(b)
    if n < MIN_N:
        return Interval(mb - ma, n, None, None, confidence)
    va, vb = _sd(a, ma) ** 2 / len(a), _sd(b, mb) ** 2 / len(b)
    se = math.sqrt(va + vb)
    dof = ((va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
           if va + vb > 0 else len(a) + len(b) - 2)
    half = stats.t.ppf(0.5 + confidence / 2, dof) * se
    return Interval(mb - ma, n, mb - ma - half, mb - ma + half, confidence, se, dof)


def detectable(iv: Interval, power: float = POWER) -> float | None:
    """The smallest |difference| the two-sided t test behind ``iv`` detects with probability
    ``power`` at ``iv``'s level: δ = λ·se, λ the noncentrality where P(|T| > t_c) = power for
    T ~ nct(dof, λ). None without an interval."""
    if iv.se is None:
        return None
    if iv.se == 0:
        return 0.0
    crit = stats.t.ppf(0.5 + iv.confidence / 2, iv.dof)

    def short(lam: float) -> float:
        return _power(lam, crit, iv.dof) - power

    high = 1.0
    while short(high) < 0:
        high *= 2
    return float(optimize.brentq(short, 0.0, high)) * iv.se


def _power(lam: float, crit: float, dof: float) -> float:
    """P(|T| > crit) for T noncentral t(dof, lam), as E over V ~ χ²(dof) of the normal tails at
    crit·√(V/dof): scipy.stats.nct's own tails return NaN for few degrees of freedom and a
    large crit (dof 2 at 99%), this integral does not."""
    def tails(v: float) -> float:
        edge = crit * math.sqrt(v / dof)
        return stats.chi2.pdf(v, dof) * (stats.norm.sf(edge - lam) + stats.norm.cdf(-edge - lam))

    return integrate.quad(tails, 0, math.inf)[0]


def _sd(values: Sequence[float], mean: float) -> float:
    return math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))


def paired(a: dict[int, float], b: dict[int, float],
           confidence: float = CONFIDENCE) -> Interval | None:
    """Mean of a − b over the keys (seed indices) both have, with its paired t interval; None
    when they share no key."""
    keys = sorted(a.keys() & b.keys())
    if not keys:
        return None
    return mean_interval([a[k] - b[k] for k in keys], confidence)

"""A median with a distribution-free confidence interval (order statistics).

For n independent repetitions the true median lies between the k-th smallest and the k-th
largest value with probability 1 - 2 P(Binomial(n, 1/2) < k), whatever the distribution
of the figures: no normality is assumed and nothing is resampled. The widest such interval
is min..max; with 7 repetitions it covers 98.4%, with 3 only 75% (said in the table).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from math import comb
from typing import Sequence


@dataclass(frozen=True)
class MedianCI:
    median: float
    low: float
    high: float
    coverage: float  # the interval's exact confidence level
    n: int

    def to_json(self) -> dict:
        return {"median": self.median, "low": self.low, "high": self.high,
                "coverage": self.coverage, "n": self.n}


def _below(n: int, k: int) -> float:
    """P(Binomial(n, 1/2) < k)."""
    return sum(comb(n, i) for i in range(k)) / 2**n


def median_ci(values: Sequence[float], level: float = 0.95) -> MedianCI:
    """The narrowest order-statistic interval with at least ``level`` coverage; min..max
    (with its own, lower, coverage) when n is too small to reach ``level``."""
    xs = sorted(values)
    n = len(xs)
    k = 1
    while k + 1 <= (n + 1) // 2 and 1 - 2 * _below(n, k + 1) >= level:
        k += 1
    return MedianCI(statistics.median(xs), xs[k - 1], xs[n - k], 1 - 2 * _below(n, k), n)

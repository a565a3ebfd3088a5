"""Statistics for repeated runs: median, spread, a confidence interval for the median, and an exact test.

Pure and without scipy: a handful of runs of a deployment are neither many nor normal (downtime is often
zero in every run, or zero in most and hundreds of ms in one), so everything here is distribution-free.

- The confidence interval for the median is the classic one from order statistics: for sorted values
  x(1) <= ... <= x(n), the interval [x(j), x(n+1-j)] holds the population median unless at least n+1-j of
  the n values fall on one side of it, so it covers the median with probability
  1 - 2 * P(Binomial(n, 1/2) <= j-1). The level it reaches is reported as it is: [min, max] of 3 runs is
  a 75 % interval, of 5 runs 93.75 %; a 95 % interval needs at least 6 runs. With ties (discrete figures,
  such as downtime 0 in most runs) the true coverage is at least the level stated.
- Two samples are compared with the exact two-sided Wilcoxon rank-sum (Mann-Whitney) test, done as a
  permutation test on mid-ranks, so ties (all zeros) are handled exactly. Its p-value can never go below
  2 / C(n+m, n): with 3 runs against 3 that is 0.1, so no difference can be claimed at p < 0.05.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

ALPHA = 0.05  # the significance level `told_apart` uses
LEVEL = 0.95  # the confidence level `median_ci` aims for
MIN_IQR_N = 5  # below this the quartiles only interpolate between the extremes and the median


@dataclass(frozen=True)
class Interval:
    low: float
    high: float
    level: float  # the coverage the interval actually reaches, which can be below the one asked for


@dataclass(frozen=True)
class Summary:
    """Of n measured values; `iqr` is None below MIN_IQR_N values, `ci` None for a single value."""

    n: int
    median: float
    min: float
    max: float
    iqr: tuple[float, float] | None
    ci: Interval | None


def median(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("the median of no values")
    return statistics.median(values)


def quartiles(values: Sequence[float]) -> tuple[float, float] | None:
    """The first and third quartile (linear interpolation between order statistics, as numpy's default
    and spreadsheets' QUARTILE do), or None for fewer than MIN_IQR_N values."""
    if len(values) < MIN_IQR_N:
        return None
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q3


def coverage(n: int, j: int) -> float:
    """P(x(j) <= median <= x(n+1-j)) for n values from any continuous distribution."""
    if not 1 <= j <= (n + 1) // 2:
        raise ValueError(f"rank {j} is not in the lower half of {n} values")
    outside = sum(math.comb(n, i) for i in range(j))  # at most j-1 values below the median, or above
    return 1.0 - 2 * outside / 2**n


def median_ci(values: Sequence[float], level: float = LEVEL) -> Interval | None:
    """The narrowest symmetric pair of order statistics [x(j), x(n+1-j)] whose coverage reaches `level`;
    when even [min, max] falls short, [min, max] with the coverage it has. None for fewer than two values:
    one value says nothing about where the median lies (its coverage would be 0)."""
    n = len(values)
    if n < 2:
        return None
    ordered = sorted(values)
    j = 1
    while j + 1 <= (n + 1) // 2 and coverage(n, j + 1) >= level:
        j += 1
    return Interval(ordered[j - 1], ordered[n - j], coverage(n, j))


def summary(values: Sequence[float]) -> Summary | None:
    """Median, min-max, IQR and the median's confidence interval, or None when nothing was measured."""
    if not values:
        return None
    return Summary(
        len(values), median(values), min(values), max(values), quartiles(values), median_ci(values)
    )


def smallest_p(n: int, m: int) -> float:
    """The smallest two-sided p-value an exact rank test of n values against m can give (without ties):
    when every value of one sample lies below every value of the other."""
    return min(1.0, 2 / math.comb(n + m, n))


def _doubled_midranks(pooled: Sequence[float]) -> dict[float, int]:
    # Tied values share the mean of their ranks; doubled, every mid-rank is an integer.
    ordered = sorted(pooled)
    ranks: dict[float, int] = {}
    i = 0
    while i < len(ordered):
        j = i
        while j < len(ordered) and ordered[j] == ordered[i]:
            j += 1
        ranks[ordered[i]] = (i + 1) + j  # positions i+1 .. j, doubled mean
        i = j
    return ranks


def rank_sum_p(a: Sequence[float], b: Sequence[float]) -> float:
    """The exact two-sided p-value of the rank-sum test of `a` against `b`: of all C(n+m, n) ways to pick n
    of the pooled values as `a`, the share whose rank sum lies at least as far from its expectation as the
    observed one. Ties take mid-ranks, so two samples of identical values give p = 1."""
    return _rank_sum(a, b)[0]


def _rank_sum(a: Sequence[float], b: Sequence[float]) -> tuple[float, int]:
    """The p-value, and the sign of (a's rank sum - its expectation): -1 when `a` tends to be lower."""
    if not a or not b:
        raise ValueError("a rank test needs values on both sides")
    pooled = [*a, *b]
    ranks = _doubled_midranks(pooled)
    n, total = len(a), len(pooled)
    expected = n * (total + 1)  # doubled: n times the mean rank (total + 1) / 2
    observed = sum(ranks[x] for x in a) - expected
    deviation = abs(observed)
    # counts[k][s]: how many k-subsets of the values seen so far have doubled rank sum s. One pass per value
    # keeps this at n * (n+m) list additions, fast enough for 50 runs a side.
    counts: list[list[int]] = [[1]] + [[] for _ in range(n)]
    for seen, x in enumerate(pooled, start=1):
        r = ranks[x]
        for k in range(min(n, seen), 0, -1):
            prev, cur = counts[k - 1], counts[k]
            if not prev:
                continue
            if len(cur) < len(prev) + r:
                cur.extend([0] * (len(prev) + r - len(cur)))
            cur[r : r + len(prev)] = [c + p for c, p in zip(cur[r : r + len(prev)], prev, strict=True)]
    extreme = sum(c for s, c in enumerate(counts[n]) if c and abs(s - expected) >= deviation)
    return extreme / math.comb(total, n), (observed > 0) - (observed < 0)


@dataclass(frozen=True)
class Verdict:
    """Whether two samples can be told apart, and which is lower if so."""

    identical: bool  # every value of both samples is the same number
    apart: bool  # p < alpha
    lower: str | None  # "a" or "b" when apart
    p: float
    smallest_p: float  # the floor n and m put on p: if it is >= alpha, no difference could be shown
    all_lower: str | None  # "a" or "b" when every value of one lies below every value of the other


def told_apart(a: Sequence[float], b: Sequence[float], alpha: float = ALPHA) -> Verdict:
    """Two samples are told apart when the exact rank-sum test gives p < alpha; the lower one is then the
    one whose values rank lower, which is what the test measures (not necessarily the lower median)."""
    p, sign = _rank_sum(a, b)
    apart = p < alpha and sign != 0
    lower = ("a" if sign < 0 else "b") if apart else None
    all_lower = "a" if max(a) < min(b) else "b" if max(b) < min(a) else None
    identical = len({*a, *b}) == 1
    return Verdict(identical, apart, lower, p, smallest_p(len(a), len(b)), all_lower)

"""lab.analysis.stats on synthetic numbers whose answers can be checked by hand."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from lab.analysis import stats


def brute_force_p(a: list[float], b: list[float]) -> float:
    """The permutation test by enumeration: every way to split the pooled values into len(a) and len(b)."""
    pooled = a + b
    ordered = sorted(pooled)

    def midrank(x: float) -> float:
        first = ordered.index(x) + 1
        return first + (ordered.count(x) - 1) / 2

    expected = len(a) * (len(pooled) + 1) / 2
    observed = abs(sum(midrank(x) for x in a) - expected)
    splits = list(itertools.combinations(range(len(pooled)), len(a)))
    extreme = sum(
        1 for idx in splits if abs(sum(midrank(pooled[i]) for i in idx) - expected) >= observed - 1e-9
    )
    return extreme / len(splits)


def test_median_of_odd_and_even_counts() -> None:
    assert stats.median([5, 1, 3]) == 3
    assert stats.median([4, 1, 3, 2]) == 2.5
    assert stats.median([0.0, 0.0, 512.3]) == 0.0
    with pytest.raises(ValueError):
        stats.median([])


def test_quartiles_only_from_five_values() -> None:
    assert stats.quartiles([1, 2, 3, 4]) is None
    assert stats.quartiles([5, 4, 3, 2, 1]) == (2, 4)
    # 1..8: positions 2.75 and 6.25 of the sorted values
    assert stats.quartiles([1, 2, 3, 4, 5, 6, 7, 8]) == (2.75, 6.25)


@pytest.mark.parametrize(
    ("n", "j", "level"),
    [
        (2, 1, 1 - 2 / 4),  # 50 %
        (3, 1, 1 - 2 / 8),  # 75 %
        (5, 1, 1 - 2 / 32),  # 93.75 %
        (6, 1, 1 - 2 / 64),  # 96.875 %
        (10, 2, 1 - 2 * (1 + 10) / 1024),  # 97.85 %
        (10, 3, 1 - 2 * (1 + 10 + 45) / 1024),  # 89.06 %
    ],
)
def test_coverage_of_order_statistics(n: int, j: int, level: float) -> None:
    assert stats.coverage(n, j) == pytest.approx(level)


def test_median_ci_reports_the_level_n_reaches_and_never_more() -> None:
    three = stats.median_ci([30.0, 10.0, 20.0])
    assert three == stats.Interval(10.0, 30.0, 0.75)
    five = stats.median_ci([5, 1, 4, 2, 3])
    assert five == stats.Interval(1, 5, 0.9375)  # [min, max], short of 95 %: said, not rounded up
    six = stats.median_ci([1, 2, 3, 4, 5, 6])
    assert six is not None and (six.low, six.high) == (1, 6) and six.level >= 0.95
    ten = stats.median_ci(list(range(1, 11)))
    assert ten == stats.Interval(2, 9, pytest.approx(0.978515625))  # (3, 8) would be 89 %
    hundred = stats.median_ci(list(range(1, 101)))
    assert hundred is not None and (hundred.low, hundred.high) == (40, 61)  # the textbook pair for n = 100
    assert 0.95 <= hundred.level < stats.coverage(100, 39)
    assert stats.median_ci([7.0]) is None  # one value: no interval at all
    assert stats.median_ci([]) is None


def test_median_ci_at_a_lower_level_is_narrower() -> None:
    ci = stats.median_ci(list(range(1, 11)), level=0.8)
    assert ci is not None and (ci.low, ci.high) == (3, 8) and ci.level == pytest.approx(1 - 112 / 1024)


def test_summary_of_runs() -> None:
    s = stats.summary([0.0, 512.3, 0.0])
    assert s is not None
    assert (s.n, s.median, s.min, s.max, s.iqr) == (3, 0.0, 0.0, 512.3, None)
    assert s.ci == stats.Interval(0.0, 512.3, 0.75)
    assert stats.summary([]) is None


def test_smallest_p_is_two_over_the_number_of_splits() -> None:
    assert stats.smallest_p(3, 3) == pytest.approx(0.1)  # 2 / C(6, 3) = 2 / 20: never below 0.05
    assert stats.smallest_p(3, 4) == pytest.approx(2 / 35)  # still above 0.05
    assert stats.smallest_p(4, 4) == pytest.approx(2 / 70)  # the first to reach it
    assert stats.smallest_p(1, 1) == 1.0


def test_rank_sum_p_hand_checked() -> None:
    assert stats.rank_sum_p([1, 2, 3], [4, 5, 6]) == pytest.approx(0.1)
    assert stats.rank_sum_p([4, 5, 6], [1, 2, 3]) == pytest.approx(0.1)
    assert stats.rank_sum_p([1, 2, 3, 4], [5, 6, 7, 8]) == pytest.approx(2 / 70)
    # interleaved: rank sums 1+3+5 = 9 and 2+4+6 = 12 around the expected 10.5; 14 of 20 splits as far out
    assert stats.rank_sum_p([1, 3, 5], [2, 4, 6]) == pytest.approx(0.7)
    assert stats.rank_sum_p([0, 0, 0], [0, 0, 0]) == 1.0  # identical: no evidence at all
    # two zeros against a zero and a one: every split's mid-rank sum is 1 from the expected 5
    assert stats.rank_sum_p([0, 0], [0, 1]) == 1.0
    with pytest.raises(ValueError):
        stats.rank_sum_p([], [1.0])


def test_rank_sum_p_matches_enumeration_with_and_without_ties() -> None:
    rng = random.Random(4)
    for _ in range(60):
        n, m = rng.randint(1, 5), rng.randint(1, 5)
        a = [float(rng.choice([0, 0, 5, 10, 12.5, 300])) for _ in range(n)]
        b = [float(rng.choice([0, 5, 7, 300, 512.3])) for _ in range(m)]
        assert stats.rank_sum_p(a, b) == pytest.approx(brute_force_p(a, b)), (a, b)


def test_rank_sum_p_is_fast_enough_for_fifty_runs_a_side() -> None:
    a = [float(i) for i in range(50)]
    b = [i + 25.5 for i in range(50)]
    p = stats.rank_sum_p(a, b)
    assert 0 < p < 1e-4 and math.isfinite(p)


def test_told_apart_with_three_runs_each_never_claims_a_difference() -> None:
    v = stats.told_apart([0.0, 0.0, 0.0], [1785.5, 2215.0, 2305.0])
    assert not v.apart and v.lower is None
    assert v.p == pytest.approx(0.1) and v.smallest_p == pytest.approx(0.1)
    assert v.all_lower == "a" and not v.identical


def test_told_apart_with_four_runs_each_names_the_lower() -> None:
    v = stats.told_apart([2215.0, 2305.0, 1785.5, 2000.0], [0.0, 5.0, 0.0, 0.0])
    assert v.apart and v.lower == "b" and v.p < stats.ALPHA
    v = stats.told_apart([0.0, 5.0, 0.0, 0.0], [2215.0, 2305.0, 1785.5, 2000.0])
    assert v.apart and v.lower == "a"


def test_told_apart_identical_and_overlapping() -> None:
    v = stats.told_apart([0.0] * 5, [0.0] * 5)
    assert v.identical and not v.apart and v.p == 1.0 and v.all_lower is None
    v = stats.told_apart([0.0, 10.0, 20.0, 30.0, 40.0], [5.0, 15.0, 25.0, 35.0, 45.0])
    assert not v.apart and not v.identical and v.p > 0.5 and v.smallest_p < stats.ALPHA

"""A canary's verdict, on synthetic samples."""

from __future__ import annotations

import pytest

from lab.analysis.judge import judge_samples
from lab.model import ErrorClass, Judge, Sample


def answers(
    version: str, n: int, *, failed: int = 0, latency_ms: float = 2.0, start: int = 0
) -> list[Sample]:
    out = []
    for i in range(n):
        t = (start + i) / 100
        if i < failed:
            out.append(Sample(start + i, t, t, t + 0.001, 500, version, "x", ErrorClass.HTTP_5XX))
        else:
            out.append(Sample(start + i, t, t, t + latency_ms / 1000, 200, version, "x"))
    return out


def test_passes_within_the_error_budget_and_counts_only_its_version() -> None:
    samples = answers("v2", 200, failed=2) + answers("v1", 100, failed=100, start=500)
    verdict = judge_samples(samples, Judge("v2", max_error_rate=0.01))
    assert verdict.passed and verdict.answers == 200 and verdict.errors == 2


def test_fails_above_the_error_budget_and_says_why() -> None:
    verdict = judge_samples(answers("v2", 100, failed=3), Judge("v2", max_error_rate=0.02))
    assert not verdict.passed
    assert "error rate 3.00% > 2.00% (3 of 100)" in verdict.reason


def test_latency_limit_uses_the_good_answers_p99() -> None:
    slow = answers("v2", 100, latency_ms=80.0)
    assert not judge_samples(slow, Judge("v2", max_p99_ms=50)).passed
    assert judge_samples(slow, Judge("v2", max_p99_ms=100)).passed


def test_no_answer_from_the_version_is_not_a_pass() -> None:
    verdict = judge_samples(answers("v1", 50), Judge("v2"))
    assert not verdict.passed and verdict.answers == 0 and "fewer than the 10" in verdict.reason


def test_too_few_answers_prove_nothing() -> None:
    assert not judge_samples(answers("v2", 9), Judge("v2", min_answers=10)).passed
    assert judge_samples(answers("v2", 10), Judge("v2", min_answers=10)).passed


def test_failures_that_name_no_version_count_against_it_so_the_gate_fails_closed() -> None:
    refused = [Sample(900 + i, 9.0, 9.0, 9.001, error=ErrorClass.REFUSED) for i in range(5)]
    saturated = [Sample(950 + i, 9.0, None, None, error=ErrorClass.SATURATED) for i in range(50)]
    verdict = judge_samples(answers("v2", 95) + refused + saturated, Judge("v2", max_error_rate=0.04))
    assert not verdict.passed and "(5 of 100)" in verdict.reason  # saturation is the probe's, not v2's
    assert judge_samples(answers("v2", 95) + refused, Judge("v2", max_error_rate=0.05)).passed


def test_an_error_rate_is_a_fraction() -> None:
    with pytest.raises(ValueError, match="max_error_rate"):
        Judge("v2", max_error_rate=5)

"""A canary's verdict, on synthetic samples."""

from __future__ import annotations

from lab.judge import judge_samples
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
    assert not verdict.passed and verdict.answers == 0 and "no request" in verdict.reason


def test_failures_without_a_version_are_not_blamed_on_it() -> None:
    refused = [Sample(900 + i, 9.0, 9.0, 9.001, error=ErrorClass.REFUSED) for i in range(50)]
    assert judge_samples(answers("v2", 100) + refused, Judge("v2", max_error_rate=0.0)).passed

"""A canary's verdict from the probe's own samples: pure, so it is tested on synthetic timelines."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from lab.model import Judge, Sample


@dataclass(frozen=True)
class Verdict:
    passed: bool
    answers: int  # requests the judged version answered (well or not)
    errors: int
    p99_ms: float | None
    reason: str


def judge_samples(samples: Iterable[Sample], judge: Judge) -> Verdict:
    """Judge `judge.version` on the samples it answered. Only answers carrying its version header count:
    a refused connection or a proxy 502 names no version, so it cannot be blamed on one."""
    mine = [s for s in samples if s.version == judge.version and s.finished is not None]
    if not mine:
        return Verdict(False, 0, 0, None, f"{judge.version} answered no request to judge")
    errors = sum(1 for s in mine if s.server_failure)
    rate = errors / len(mine)
    good = sorted((s.finished - s.scheduled) * 1000 for s in mine if s.ok and s.finished is not None)
    p99 = good[min(len(good) - 1, int(0.99 * len(good)))] if good else None
    problems = []
    if rate > judge.max_error_rate:
        problems.append(f"error rate {rate:.2%} > {judge.max_error_rate:.2%} ({errors} of {len(mine)})")
    if judge.max_p99_ms is not None and (p99 is None or p99 > judge.max_p99_ms):
        shown = "none" if p99 is None else f"{p99:,.1f} ms"
        problems.append(f"p99 {shown} > {judge.max_p99_ms:g} ms")
    if problems:
        return Verdict(False, len(mine), errors, p99, f"{judge.version} failed: " + "; ".join(problems))
    return Verdict(True, len(mine), errors, p99, f"{judge.version} passed ({errors} of {len(mine)} failed)")

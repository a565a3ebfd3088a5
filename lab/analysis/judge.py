"""A canary's verdict from the probe's own samples: pure, so it is tested on synthetic timelines."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from lab.analysis.summary import latency_percentiles
from lab.model import Judge, Sample


@dataclass(frozen=True)
class Verdict:
    passed: bool
    answers: int  # answers from the judged version, good or not
    errors: int  # its failed answers, plus failures that name no version (see judge_samples)
    p99_ms: float | None
    reason: str


def judge_samples(samples: Iterable[Sample], judge: Judge) -> Verdict:
    """Judge `judge.version` on the requests of the judged window.

    Its own answers count, good and bad. A proxy's 502 or 504 names the servers nginx tried, so the fleet
    attributes it (lab/analysis/attribution.py): one that reached only the judged version's instances is
    that version's failure, one that reached only the other version's is not held against it. A failure
    that still names no version (a probe timeout, no live server, tries that spanned both versions) counts
    against the judged version too: a gate must fail closed, and the old version was serving before
    without them. Client saturation is the probe's own, and never counts.
    """
    window = list(samples)
    mine = [s for s in window if s.version == judge.version and s.finished is not None]
    unattributed = sum(1 for s in window if s.server_failure and s.version is None)
    errors = sum(1 for s in mine if s.server_failure) + unattributed
    total = len(mine) + unattributed
    percentiles = latency_percentiles([s for s in mine if s.ok], (float("-inf"), float("inf")))
    p99 = percentiles[1] if percentiles else None
    if len(mine) < judge.min_answers:
        return Verdict(
            False,
            len(mine),
            errors,
            p99,
            f"{judge.version} answered {len(mine)} request(s), fewer than the {judge.min_answers} "
            "a verdict needs",
        )
    rate = errors / total
    problems = []
    if rate > judge.max_error_rate:
        problems.append(f"error rate {rate:.2%} > {judge.max_error_rate:.2%} ({errors} of {total})")
    if judge.max_p99_ms is not None and (p99 is None or p99 > judge.max_p99_ms):
        shown = "none" if p99 is None else f"{p99:,.1f} ms"
        problems.append(f"p99 {shown} > {judge.max_p99_ms:g} ms")
    if problems:
        return Verdict(False, len(mine), errors, p99, f"{judge.version} failed: " + "; ".join(problems))
    return Verdict(True, len(mine), errors, p99, f"{judge.version} passed ({errors} of {total} failed)")

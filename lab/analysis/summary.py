"""What clients saw: pure functions over probe samples and runner events.

No I/O here. Every time is in seconds on the one monotonic clock shared by the probe and the runner, so a
window found here can be set beside the step that caused it.

Client-side saturation (``ErrorClass.SATURATED``: the probe could not send on time) is never a server
failure. Those requests were never sent: they are counted apart, and they neither start, end, split nor
extend a downtime window.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lab.analysis import rollout
from lab.analysis.clients import ClientFigures, KindFigures, client_figures, client_flip_flops, kind_figures
from lab.analysis.rollout import Rollback
from lab.analysis.windows import (
    Window,
    _answered,
    _ms,
    _nearest_rank,
    _was_sent,
    downtime_windows,
    is_new,
    mixed_version_window,
)
from lab.model import ErrorClass, Event, Sample

# ---------------------------------------------------------------------------------------------------
# Version share over time.


@dataclass(frozen=True)
class ShareBin:
    """What the requests scheduled in ``[start, end)`` got.

    ``versions`` counts good answers per version (``"unknown"`` when the answer carried no version),
    ``failures`` counts server failures per error class, ``saturated`` the requests never sent.
    """

    start: float
    end: float
    scheduled: int = 0
    versions: dict[str, int] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)
    saturated: int = 0

    @property
    def answered(self) -> int:
        return sum(self.versions.values())

    def share(self, version: str) -> float:
        """Fraction of this bin's good answers that came from ``version`` (0.0 for an empty bin)."""
        return self.versions.get(version, 0) / self.answered if self.answered else 0.0

    def to_dict(self, origin: float = 0.0) -> dict[str, Any]:
        return {
            "start": round(self.start - origin, 4),
            "end": round(self.end - origin, 4),
            "scheduled": self.scheduled,
            "versions": dict(sorted(self.versions.items())),
            "failures": dict(sorted(self.failures.items())),
            "saturated": self.saturated,
        }


def version_share(
    samples: Iterable[Sample], bin_s: float = 0.5, start: float | None = None, end: float | None = None
) -> list[ShareBin]:
    """Counts per time bin, binned by scheduled time, for a chart or a table.

    Bins are ``bin_s`` wide from ``start`` (default: the first scheduled time). Without ``end`` the bins
    run until the one holding the last scheduled request; with ``end`` requests scheduled at or after it
    are left out and the last bin is cut at ``end``. Empty bins are kept, so gaps show.
    """
    if bin_s <= 0:
        raise ValueError("bin_s must be positive")
    samples = list(samples)
    if not samples:
        return []
    lo = min(s.scheduled for s in samples) if start is None else start
    if end is None:
        count = int((max(s.scheduled for s in samples) - lo) // bin_s) + 1
        hi = lo + count * bin_s
    else:
        if end <= lo:
            return []
        hi = end
        count = math.ceil((hi - lo) / bin_s)

    scheduled = [0] * count
    versions: list[Counter[str]] = [Counter() for _ in range(count)]
    failures: list[Counter[str]] = [Counter() for _ in range(count)]
    saturated = [0] * count
    for s in samples:
        if not lo <= s.scheduled < hi:
            continue
        i = min(int((s.scheduled - lo) // bin_s), count - 1)  # min: float rounding at the last edge
        scheduled[i] += 1
        if s.error is ErrorClass.SATURATED:
            saturated[i] += 1
        elif s.error is not None:
            failures[i][s.error.value] += 1
        elif _answered(s):
            versions[i][s.version or "unknown"] += 1
    return [
        ShareBin(
            start=lo + i * bin_s,
            end=min(lo + (i + 1) * bin_s, hi),
            scheduled=scheduled[i],
            versions=dict(versions[i]),
            failures=dict(failures[i]),
            saturated=saturated[i],
        )
        for i in range(count)
    ]


# ---------------------------------------------------------------------------------------------------
# Latency and the deployment's span.


def latency_percentiles(samples: Iterable[Sample], window: tuple[float, float]) -> tuple[float, float] | None:
    """(p50, p99) latency in milliseconds of the good answers scheduled in ``[window[0], window[1])``.

    Latency runs from the *scheduled* time to the finished time, not from the send time, so a request the
    probe sent late carries its wait (no coordinated omission). Percentiles are nearest-rank (always an
    observed value). Failed and saturated requests are left out: downtime is reported by the windows, not
    hidden in a tail. None when no good answer was scheduled in the window.
    """
    lo, hi = window
    latencies = sorted(
        _ms(s.finished - s.scheduled)
        for s in samples
        if _answered(s) and s.finished is not None and lo <= s.scheduled < hi
    )
    if not latencies:
        return None
    return _nearest_rank(latencies, 50), _nearest_rank(latencies, 99)


def deploy_span(events: Iterable[Event]) -> tuple[float, float] | None:
    """From the start of the first step to the end of the last one; None when no step ran."""
    events = list(events)
    if not events:
        return None
    return min(e.started for e in events), max(e.ended for e in events)


# ---------------------------------------------------------------------------------------------------
# The summary a run reports.


@dataclass(frozen=True)
class Analysis:
    """Everything a run reports about what clients saw. Times are in ms or s as named; unrounded."""

    requests_scheduled: int
    requests_sent: int  # saturated requests excluded: they were never sent
    requests_ok: int  # good answers received
    requests_failed: int  # server failures only
    failures_by_class: dict[str, int]  # ErrorClass value -> count, server failures only
    client_saturated: int
    late_sent: int  # sent, but later than the probe's lateness threshold
    late_ticks: int  # ticks not honoured on time: sent late or not sent at all (saturated)
    downtime_ms: float  # the longest downtime window, 0 when none
    total_downtime_ms: float
    downtime_windows: tuple[Window, ...]
    mixed_window: Window | None
    mixed_window_ms: float  # 0 when the versions never overlapped
    versions_seen: dict[str, int]  # version -> good answers
    flip_flops: int
    deploy_start: float | None
    deploy_end: float | None
    deploy_duration_s: float
    probe_rate_target: float
    probe_rate_achieved: float
    p50_before_ms: float | None
    p99_before_ms: float | None
    p50_during_ms: float | None
    p99_during_ms: float | None
    lowest_capacity: int | None = None  # fewest instances in service at any point of the deployment
    new_answers: int = 0  # answers from the new version ...
    blast_radius: int = 0  # ... and how many of them failed: the clients a bad release hurt
    rollback: Rollback | None = None
    clients: ClientFigures | None = None  # what each of the probe's clients saw (lab/analysis/clients.py)
    kinds: dict[str, KindFigures] = field(default_factory=dict)  # by kind of request: get, post, slow ...

    def to_dict(self, origin: float = 0.0) -> dict[str, Any]:
        """JSON-ready: ms and rates rounded to 0.1, times to 0.1 ms and relative to `origin`.
        The caller adds ``strategy``."""

        def ms(value: float | None) -> float | None:
            return None if value is None else round(value, 1)

        return {
            "requests_scheduled": self.requests_scheduled,
            "requests_sent": self.requests_sent,
            "requests_ok": self.requests_ok,
            "requests_failed": self.requests_failed,
            "failures_by_class": dict(sorted(self.failures_by_class.items())),
            "client_saturated": self.client_saturated,
            "late_sent": self.late_sent,
            "late_ticks": self.late_ticks,
            "downtime_ms": round(self.downtime_ms, 1),
            "total_downtime_ms": round(self.total_downtime_ms, 1),
            "downtime_windows": [w.to_dict(origin) for w in self.downtime_windows],
            "mixed_window_ms": round(self.mixed_window_ms, 1),
            "mixed_window": None if self.mixed_window is None else self.mixed_window.to_dict(origin),
            "versions_seen": dict(sorted(self.versions_seen.items())),
            "flip_flops": self.flip_flops,
            "deploy_duration_s": round(self.deploy_duration_s, 4),
            "probe_rate_target": round(self.probe_rate_target, 1),
            "probe_rate_achieved": round(self.probe_rate_achieved, 1),
            "lowest_capacity": self.lowest_capacity,
            "new_answers": self.new_answers,
            "blast_radius": self.blast_radius,
            "rollback": None if self.rollback is None else self.rollback.to_dict(origin),
            "clients": None if self.clients is None else self.clients.to_dict(origin),
            "kinds": {kind: figures.to_dict() for kind, figures in sorted(self.kinds.items())},
            "latency_ms": {
                "before": {"p50": ms(self.p50_before_ms), "p99": ms(self.p99_before_ms)},
                "during": {"p50": ms(self.p50_during_ms), "p99": ms(self.p99_during_ms)},
            },
        }


def achieved_rate(samples: Sequence[Sample], target_rate: float) -> float:
    """Requests sent per second over the schedule's span.

    The span runs from the first to the last scheduled time plus one tick (1 / target_rate): each
    scheduled request stands for one tick, so a probe that sent everything achieves exactly its target.
    """
    if not samples or target_rate <= 0:
        return 0.0
    first = min(s.scheduled for s in samples)
    last = max(s.scheduled for s in samples)
    return sum(1 for s in samples if _was_sent(s)) / (last - first + 1.0 / target_rate)


def summarize(
    samples: Iterable[Sample],
    events: Iterable[Event],
    *,
    target_rate: float,
    old: str | None = "v1",
    new: str | None = "v2",
    fleet_size: int | None = None,
    testers: int = 0,
) -> Analysis:
    """The run's analysis.

    Latency "before" covers good answers scheduled before the first step started; "during" those
    scheduled from the first step's start to the last step's end. Without events there is no "during"
    and everything counts as "before".
    """
    samples = list(samples)
    events = list(events)
    windows = downtime_windows(samples)
    answers, hurt = rollout.blast_radius(samples, lambda v: is_new(v, old, new))
    mixed = mixed_version_window(samples, old, new)
    span = deploy_span(events)
    saturated = sum(1 for s in samples if s.error is ErrorClass.SATURATED)

    before = latency_percentiles(samples, (-math.inf, span[0] if span else math.inf))
    during = latency_percentiles(samples, span) if span else None

    return Analysis(
        requests_scheduled=len(samples),
        requests_sent=sum(1 for s in samples if _was_sent(s)),
        requests_ok=sum(1 for s in samples if _answered(s)),
        requests_failed=sum(1 for s in samples if s.server_failure),
        failures_by_class=dict(Counter(s.error.value for s in samples if s.server_failure and s.error)),
        client_saturated=saturated,
        late_sent=sum(1 for s in samples if s.late and _was_sent(s)),
        late_ticks=sum(1 for s in samples if s.error is ErrorClass.SATURATED or (s.late and _was_sent(s))),
        downtime_ms=max((w.duration_ms for w in windows), default=0.0),
        total_downtime_ms=sum(w.duration_ms for w in windows),
        downtime_windows=tuple(windows),
        mixed_window=mixed,
        mixed_window_ms=mixed.duration_ms if mixed else 0.0,
        versions_seen=dict(Counter(s.version or "unknown" for s in samples if _answered(s))),
        flip_flops=client_flip_flops(samples, old, new),
        deploy_start=span[0] if span else None,
        deploy_end=span[1] if span else None,
        deploy_duration_s=span[1] - span[0] if span else 0.0,
        probe_rate_target=target_rate,
        probe_rate_achieved=achieved_rate(samples, target_rate),
        p50_before_ms=before[0] if before else None,
        p99_before_ms=before[1] if before else None,
        p50_during_ms=during[0] if during else None,
        p99_during_ms=during[1] if during else None,
        lowest_capacity=rollout.lowest_capacity(events, fleet_size) if fleet_size is not None else None,
        new_answers=answers,
        blast_radius=hurt,
        rollback=rollout.rollback(events),
        clients=client_figures(samples, old, new, testers),
        kinds=kind_figures(samples, events),
    )

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
from lab.analysis.rollout import Rollback
from lab.model import ErrorClass, Event, Sample

# ---------------------------------------------------------------------------------------------------
# Small helpers shared by the functions below.


def _was_sent(s: Sample) -> bool:
    return s.sent is not None and s.error is not ErrorClass.SATURATED


def _answered(s: Sample) -> bool:
    """A good answer that arrived (a request still in flight when the probe stopped is neither)."""
    return s.ok and s.sent is not None and s.finished is not None


def is_new(version: str | None, old: str | None, new: str | None) -> bool:
    """Whether an answer's version is the new one. `new` None: any version but `old` is new (`lab
    measure` knows only which version served before); with no `old` either, nothing is."""
    if version is None or version == "unknown":
        return False
    if new is not None:
        return version == new
    return old is not None and version != old


def new_version(samples: Iterable[Sample], old: str | None) -> str | None:
    """The version other than `old` that gave the most good answers; None when there is none."""
    if old is None:
        return None
    seen = Counter(s.version for s in samples if _answered(s) and is_new(s.version, old, None))
    return seen.most_common(1)[0][0] if seen else None


def _ms(seconds: float) -> float:
    return seconds * 1000.0


def _nearest_rank(sorted_values: Sequence[float], pct: int) -> float:
    """Nearest-rank percentile: the smallest observed value with at least pct % of values at or below it."""
    n = len(sorted_values)
    rank = max(1, -(-pct * n // 100))  # ceil(pct * n / 100) in integers, so p99 of 100 values is the 99th
    return sorted_values[rank - 1]


# ---------------------------------------------------------------------------------------------------
# Windows.


@dataclass(frozen=True)
class Window:
    """A span of time on the shared clock, with the number of server failures it holds."""

    start: float
    end: float
    failures: int = 0

    @property
    def duration_s(self) -> float:
        return self.end - self.start

    @property
    def duration_ms(self) -> float:
        return _ms(self.duration_s)

    def to_dict(self, origin: float = 0.0) -> dict[str, Any]:
        """`origin` is subtracted from the times, so a report can give seconds since the run began."""
        return {
            "start": round(self.start - origin, 4),
            "end": round(self.end - origin, 4),
            "duration_ms": round(self.duration_ms, 1),
            "failures": self.failures,
        }


def downtime_windows(samples: Iterable[Sample]) -> list[Window]:
    """The spans during which requests sent to the proxy failed.

    Definition (quoted by the README): take the requests that were actually sent, in the order they were
    sent. A downtime window is a maximal run of consecutive server failures (refused, reset, timeout, 5xx,
    other). It starts when the first failure of the run was sent and ends when the first successful
    request after the run was sent, the moment clients were served again. If the probe stops while the
    run is still failing, the window ends at the latest moment a failure of the run finished (its send
    time when it never finished). ``failures`` counts the failed requests in the window.

    So a window measures time in which *newly sent* requests failed: a slow timeout that finishes long
    after later requests succeeded does not stretch it, and a single failure between two successes makes
    a window one probe interval long. Saturated requests (never sent) are skipped, and requests still in
    flight with no error and no answer are ignored.
    """
    sent = sorted(
        (s for s in samples if _was_sent(s) and (s.server_failure or _answered(s))),
        key=lambda s: (s.sent, s.seq),
    )
    windows: list[Window] = []
    start: float | None = None
    last_seen = 0.0
    failures = 0
    for s in sent:
        assert s.sent is not None  # for mypy: _was_sent checked it
        if s.server_failure:
            if start is None:
                start, last_seen, failures = s.sent, s.sent, 0
            failures += 1
            last_seen = max(last_seen, s.finished if s.finished is not None else s.sent)
        elif start is not None:
            windows.append(Window(start, s.sent, failures))
            start = None
    if start is not None:
        windows.append(Window(start, last_seen, failures))
    return windows


def still_failing(samples: Iterable[Sample]) -> int:
    """How many of the last requests sent failed, in a row, up to the end of probing: 0 when the last one
    was answered. A downtime window still open when the probe stopped is cut short there."""
    sent = sorted(
        (s for s in samples if _was_sent(s) and (s.server_failure or _answered(s))),
        key=lambda s: (s.sent, s.seq),
    )
    count = 0
    for s in reversed(sent):
        if not s.server_failure:
            break
        count += 1
    return count


def mixed_version_window(
    samples: Iterable[Sample], old: str | None = "v1", new: str | None = "v2"
) -> Window | None:
    """From the first good new answer to the last good ``old`` answer after it, by finished time.

    None when the versions never overlap (the last ``old`` answer came before the first new one).
    ``failures`` counts the server failures sent within the window. ``new`` None: any version but ``old``.
    """
    samples = list(samples)
    good = [s for s in samples if _answered(s)]
    first_new = min(
        (s.finished for s in good if is_new(s.version, old, new) and s.finished is not None), default=None
    )
    if first_new is None or old is None:
        return None
    last_old = max(
        (s.finished for s in good if s.version == old and s.finished is not None and s.finished > first_new),
        default=None,
    )
    if last_old is None:
        return None
    failed = sum(
        1 for s in samples if s.server_failure and s.sent is not None and first_new <= s.sent <= last_old
    )
    return Window(first_new, last_old, failed)


def flip_flops(samples: Iterable[Sample], old: str | None = "v1", new: str | None = "v2") -> int:
    """How many times a client got ``old`` again after having got the new version.

    Good answers are ordered by finished time; answers of other versions are ignored; each transition
    from a new answer to an ``old`` one counts once (v1 v2 v1 v2 v1 gives 2, v1 v2 v2 v1 v1 gives 1).
    ``new`` None: any version but ``old``.
    """
    good = sorted(
        (s for s in samples if _answered(s) and (s.version == old or is_new(s.version, old, new))),
        key=lambda s: (s.finished, s.seq),
    )
    count = 0
    previous_new = False
    for s in good:
        if previous_new and s.version == old:
            count += 1
        previous_new = is_new(s.version, old, new)
    return count


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
        flip_flops=flip_flops(samples, old, new),
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
    )

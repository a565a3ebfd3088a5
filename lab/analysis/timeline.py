"""What the timeline chart draws, computed once from a run's samples, steps and capacity: pure, no drawing.

Times are seconds on the run's clock (the journal's: 0 is the start of the run). Requests are binned by
their *scheduled* time with `analysis.version_share`, so a bin holds what the clients due in it got.
Client saturation (ticks the probe could not send) is kept apart from server failures, as everywhere else.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from lab.analysis.summary import ShareBin, latency_percentiles, version_share
from lab.model import ErrorClass, Event, Sample

# Bin widths a reader can count in; the first that gives at most MAX_BINS bins is taken.
NICE_BINS_S = (0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0)
MAX_BINS = 80
OTHER = "other"  # any answer from neither the old nor the new version, or with no version header
_INSTANCE = re.compile(r"\bapp-([\w.]+)-\d+\b")  # Instance.name


@dataclass(frozen=True)
class TimeBin:
    """The requests scheduled in ``[start, end)``: answers by version, failures by class, latency."""

    start: float
    end: float
    versions: dict[str, int]  # old, new and OTHER: good answers
    failures: dict[str, int]  # ErrorClass value -> server failures
    saturated: int  # ticks the probe could not send: the probe's own, not the server's
    p50_ms: float | None  # of the good answers, from scheduled time to answer; None when none
    p99_ms: float | None

    @property
    def width_s(self) -> float:
        return self.end - self.start

    def rate(self, count: int) -> float:
        """A count in this bin as requests per second."""
        return count / self.width_s if self.width_s > 0 else 0.0


@dataclass(frozen=True)
class StepMark:
    index: int
    kind: str
    detail: str
    start: float
    end: float
    failed: bool  # a negative verdict (Start, Check, Judge) or an error

    @property
    def label(self) -> str:
        return f"{self.index} {short_label(self.kind, self.detail)}"


# What a client got in a bin, for its row of the clients panel.
CLIENT_STATES = ("old", "new", "both", "other", "failed")


@dataclass(frozen=True)
class ClientRow:
    client: int
    tester: bool
    cells: tuple[str | None, ...]  # per bin: one of CLIENT_STATES, None when it sent nothing then


@dataclass(frozen=True)
class Timeline:
    start: float  # the chart's time axis
    end: float
    bin_s: float
    bins: tuple[TimeBin, ...]
    capacity: tuple[tuple[float, int], ...]  # (time, instances in service) from start to end
    steps: tuple[StepMark, ...]
    old: str = "v1"
    new: str = "v2"
    clients: tuple[ClientRow, ...] = ()  # one row per client, testers first

    @property
    def failure_classes(self) -> list[str]:
        """Classes that occurred, in ErrorClass order, so colours and rows keep their places."""
        seen = {c for b in self.bins for c, n in b.failures.items() if n}
        order = [c.value for c in ErrorClass if c is not ErrorClass.SATURATED]
        return [c for c in order if c in seen] + sorted(seen - set(order))

    @property
    def saturated(self) -> int:
        return sum(b.saturated for b in self.bins)

    @property
    def has_other(self) -> bool:
        return any(b.versions.get(OTHER) for b in self.bins)


def short_label(kind: str, detail: str) -> str:
    """A step's label short enough for the chart: `route v1 90%, v2 10%` without the instance list."""
    if kind in ("Start", "Stop", "Check"):
        instances = _INSTANCE.findall(detail)
        versions = "+".join(sorted(set(instances)))
        return f"{kind.lower()} {len(instances)} {versions}" if instances else kind.lower()
    if kind in ("Judge", "Pause"):
        return detail.split(" (", 1)[0]  # the limits and reasons are in the steps table
    return detail.split(" over ", 1)[0]  # Route: the shares, not every instance name


def bin_width(duration_s: float) -> float:
    for width in NICE_BINS_S:
        if duration_s / width <= MAX_BINS:
            return width
    return NICE_BINS_S[-1]


def build(
    samples: Sequence[Sample],
    events: Sequence[Event],
    capacity: Sequence[tuple[float, int]],
    *,
    bin_s: float | None = None,
    old: str = "v1",
    new: str = "v2",
    testers: int = 0,
) -> Timeline:
    """The chart's data. `capacity` is the journal's: instances in service from the first step on."""
    steps = tuple(
        StepMark(e.index, e.kind, e.detail, e.started, e.ended, e.result is False or e.error is not None)
        for e in events
    )
    times = [s.scheduled for s in samples] + [m.start for m in steps] + [m.end for m in steps]
    if not times:
        return Timeline(0.0, 1.0, bin_s or NICE_BINS_S[0], (), (), steps, old, new)
    start = min(times)
    end = max(times)
    width = bin_s or bin_width(end - start)
    share = []
    if samples:
        first, last = min(s.scheduled for s in samples), max(s.scheduled for s in samples)
        # Bin edges half a tick off the schedule: a tick on an edge would fall on either side by float
        # rounding, and a steady rate would draw as jagged bars. The last bin ends half a tick after the
        # last tick, so a bin the probe stopped in is narrower at the same rate, not a drop in traffic.
        half = ((last - first) / (len(samples) - 1) if len(samples) > 1 else width) / 2
        share = version_share(samples, bin_s=width, start=first - half, end=last + half)
        if share and not share[-1].scheduled and share[-1].end - share[-1].start < half:
            share.pop()  # a sliver that float rounding left after the last tick: no rate to draw there
    grouped = _by_bin(samples, share)
    bins = tuple(_bin(b, grouped, old, new) for b in share)
    if bins:
        end = max(end, bins[-1].end)
    rows = _client_rows(grouped, share, old, new, testers)
    return Timeline(start, end, width, bins, _capacity(capacity, start, end), steps, old, new, rows)


def _client_state(mine: Sequence[Sample], old: str, new: str) -> str | None:
    """What one client got in one bin: a failure shows over anything else."""
    sent = [s for s in mine if s.sent is not None and s.error is not ErrorClass.SATURATED]
    if not sent:
        return None
    if any(s.server_failure for s in sent):
        return "failed"
    versions = {s.version for s in sent if s.ok}
    if old in versions and new in versions:
        return "both"
    if versions == {old}:
        return "old"
    if versions == {new}:
        return "new"
    return "other"


def _client_rows(
    grouped: dict[float, list[Sample]], share: list[ShareBin], old: str, new: str, testers: int
) -> tuple[ClientRow, ...]:
    clients = sorted({s.client for bucket in grouped.values() for s in bucket})
    if len(clients) < 2:  # one client is the requests panel already
        return ()
    cells: dict[int, list[str | None]] = {c: [] for c in clients}
    for b in share:
        by_client: dict[int, list[Sample]] = {}
        for s in grouped.get(b.start, []):
            by_client.setdefault(s.client, []).append(s)
        for c in clients:
            cells[c].append(_client_state(by_client.get(c, []), old, new))
    order = sorted(clients, key=lambda c: (c >= testers, c))  # testers on top
    return tuple(ClientRow(c, c < testers, tuple(cells[c])) for c in order)


def _by_bin(samples: Sequence[Sample], share: list[ShareBin]) -> dict[float, list[Sample]]:
    """The samples of each bin, keyed by the bin's start, so each bin's percentiles see only its own."""
    if not share:
        return {}
    lo, width = share[0].start, share[0].end - share[0].start
    grouped: dict[float, list[Sample]] = {b.start: [] for b in share}
    starts = [b.start for b in share]
    for s in samples:
        i = min(max(int((s.scheduled - lo) // width), 0), len(starts) - 1) if width > 0 else 0
        grouped[starts[i]].append(s)
    return grouped


def _bin(b: ShareBin, grouped: dict[float, list[Sample]], old: str, new: str) -> TimeBin:
    versions = {old: b.versions.get(old, 0), new: b.versions.get(new, 0)}
    versions[OTHER] = sum(n for v, n in b.versions.items() if v not in (old, new))
    # latency_percentiles is the summary's own definition; the window keeps a sample on a bin's edge
    # (float rounding) out of the neighbour's figure.
    latency = latency_percentiles(grouped.get(b.start, []), (b.start, b.end))
    return TimeBin(
        start=b.start,
        end=b.end,
        versions=versions,
        failures=dict(b.failures),
        saturated=b.saturated,
        p50_ms=latency[0] if latency else None,
        p99_ms=latency[1] if latency else None,
    )


def _capacity(points: Sequence[tuple[float, int]], start: float, end: float) -> tuple[tuple[float, int], ...]:
    """The step line from the chart's start to its end: the first value holds before the first step."""
    if not points:
        return ()
    ordered = sorted(points)
    line = [(min(start, ordered[0][0]), ordered[0][1]), *ordered]
    line.append((max(end, ordered[-1][0]), ordered[-1][1]))
    return tuple(line)

"""What each client saw, and what each kind of request went through: pure functions over samples.

The probe spreads its ticks over a population of clients, each with its own connections and id. One
connection is not a population: after a reload every kept-alive connection held by an old nginx worker is
answered by the old config once more, so one client meets that once and a hundred clients a hundred times.
So the figures here are counts of clients (how many saw a failure, both versions, a flip-flop) and the
worst any one of them saw, beside the fleet-wide figures of lab/analysis/summary.py.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lab.analysis.windows import downtime_windows, flip_flops, is_new
from lab.model import ErrorClass, Event, Sample


@dataclass(frozen=True)
class GroupFirstNew:
    """When a group of clients first got a good answer from a new version (None: never)."""

    clients: int
    first_new: float | None

    def to_dict(self, origin: float) -> dict[str, Any]:
        at = None if self.first_new is None else round(self.first_new - origin, 4)
        return {"count": self.clients, "first_new_s": at}


@dataclass(frozen=True)
class ClientFigures:
    count: int  # clients that sent at least one request
    saw_failure: int  # of them, how many got at least one server failure
    saw_both_versions: int  # got good answers from the old and from a new version
    flip_flopped: int  # got a new version, and later the old one again
    longest_outage_ms: float  # the longest any one client went without a good answer while asking
    worst_client: int | None  # whose outage that was
    testers: GroupFirstNew  # the clients sending `X-Canary: always` ...
    others: GroupFirstNew  # ... and everyone else

    def to_dict(self, origin: float = 0.0) -> dict[str, Any]:
        return {
            "count": self.count,
            "saw_failure": self.saw_failure,
            "saw_both_versions": self.saw_both_versions,
            "flip_flopped": self.flip_flopped,
            "longest_outage_ms": round(self.longest_outage_ms, 1),
            "worst_client": self.worst_client,
            "testers": self.testers.to_dict(origin),
            "others": self.others.to_dict(origin),
        }


def _good(s: Sample) -> bool:
    return s.ok and s.sent is not None and s.finished is not None


def by_client(samples: Iterable[Sample]) -> dict[int, list[Sample]]:
    grouped: dict[int, list[Sample]] = defaultdict(list)
    for s in samples:
        grouped[s.client].append(s)
    return dict(grouped)


def client_flip_flops(samples: Iterable[Sample], old: str | None, new: str | None) -> int:
    """How often a client got the old version again after a new one, summed over the clients: each
    client's own answers in order. (Answers of different clients interleaved say nothing of anyone's
    experience: two clients on different versions would flip at every request.)"""
    return sum(flip_flops(mine, old, new) for mine in by_client(samples).values())


def client_figures(
    samples: Iterable[Sample], old: str | None, new: str | None, testers: int = 0
) -> ClientFigures:
    """Counts over clients. A client's outage is a downtime window of its own requests (its first failure's
    send to its next good request's send), so at 32 clients and 200 req/s one failed request is a window
    of 160 ms: the time that client waited for its next chance. Saturated ticks (never sent) count for no
    client."""
    clients = by_client(s for s in samples if s.sent is not None and s.error is not ErrorClass.SATURATED)
    saw_failure = saw_both = flipped = 0
    longest, worst = 0.0, None
    first_new: dict[bool, float | None] = {True: None, False: None}
    counts = Counter(c < testers for c in clients)
    for client, mine in sorted(clients.items()):
        if any(s.server_failure for s in mine):
            saw_failure += 1
        good = [s for s in mine if _good(s)]
        if (
            old is not None
            and any(s.version == old for s in good)
            and any(is_new(s.version, old, new) for s in good)
        ):
            saw_both += 1
        if flip_flops(mine, old, new):
            flipped += 1
        for window in downtime_windows(mine):
            if window.duration_ms > longest:
                longest, worst = window.duration_ms, client
        news = [s.finished for s in good if is_new(s.version, old, new) and s.finished is not None]
        if news:
            group = client < testers
            earliest = min(news)
            current = first_new[group]
            first_new[group] = earliest if current is None else min(current, earliest)
    return ClientFigures(
        count=len(clients),
        saw_failure=saw_failure,
        saw_both_versions=saw_both,
        flip_flopped=flipped,
        longest_outage_ms=longest,
        worst_client=worst,
        testers=GroupFirstNew(counts[True], first_new[True]),
        others=GroupFirstNew(counts[False], first_new[False]),
    )


@dataclass(frozen=True)
class KindFigures:
    """One kind of request (get, post, slow, stream): how it fared."""

    sent: int
    ok: int
    failed: int
    failures_by_class: dict[str, int]
    cut_by_step: dict[str, int] = field(default_factory=dict)  # streams cut, by the step under way then

    def to_dict(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "ok": self.ok,
            "failed": self.failed,
            "failures_by_class": dict(sorted(self.failures_by_class.items())),
            "cut_by_step": dict(sorted(self.cut_by_step.items())),
        }


def step_at(events: Sequence[Event], t: float) -> str:
    """The step under way at `t` (its index), `before` the first step, or `after` the last one ended."""
    if not events or t < min(e.started for e in events):
        return "before"
    if t > max(e.ended for e in events):
        return "after"
    return str(max((e for e in events if e.started <= t), key=lambda e: e.started).index)


def kind_figures(samples: Iterable[Sample], events: Sequence[Event]) -> dict[str, KindFigures]:
    """Per kind of request; a cut stream is placed at the step under way when it was cut."""
    grouped: dict[str, list[Sample]] = defaultdict(list)
    for s in samples:
        if s.sent is not None and s.error is not ErrorClass.SATURATED:
            grouped[s.kind].append(s)
    figures = {}
    for kind, mine in sorted(grouped.items()):
        failed = [s for s in mine if s.server_failure]
        cuts = Counter(
            step_at(events, s.finished)
            for s in failed
            if s.error is ErrorClass.STREAM_CUT and s.finished is not None
        )
        figures[kind] = KindFigures(
            sent=len(mine),
            ok=sum(1 for s in mine if _good(s)),
            failed=len(failed),
            failures_by_class=dict(Counter(s.error.value for s in failed if s.error is not None)),
            cut_by_step=dict(cuts),
        )
    return figures

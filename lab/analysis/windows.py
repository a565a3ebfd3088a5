"""When clients were failing and when both versions answered: windows, flip-flops and version tests
over probe samples. Pure; the building blocks of lab/analysis/summary.py and lab/analysis/clients.py.

Every time is in seconds on the one monotonic clock shared by the probe and the runner. Client-side
saturation (the probe could not send on time) is never a server failure: it neither starts, ends, splits
nor extends a downtime window.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from lab.model import ErrorClass, Sample

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

"""The live view's figures, from the samples that have arrived so far: no clock, no terminal, no I/O.

The "last second" is the second of the probe's schedule that ended `lag_s` ago, not the one ending now:
the probe hands samples over about every 100 ms, so the newest tenth of a second is always partly
missing, and counting it would show a dip that is not there. Within that second every tick that was due
is accounted for: sent, not sent (client saturation), or not back yet (in flight, or not yet handed over).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from lab.model import ErrorClass, Sample

WINDOW_S = 1.0
LAG_S = 0.25


@dataclass(frozen=True)
class Second:
    """What the ticks due in one window of the schedule got, as far as the view knows."""

    start: float  # window on the monotonic clock, by scheduled time
    end: float
    span_s: float  # the part of the window after tick 0: shorter than the window in the probe's first second
    due: int
    sent: int
    unsent: int  # client saturation: the probe could not send them
    answers: dict[str, int] = field(default_factory=dict)  # good answers by version
    failed: dict[str, int] = field(default_factory=dict)  # server failures by class

    @property
    def not_back(self) -> int:
        """Due, but no sample yet: in flight (a slow answer, a timeout to come) or not handed over yet."""
        return self.due - self.sent - self.unsent

    @property
    def answered(self) -> int:
        return sum(self.answers.values())

    @property
    def rate(self) -> float:
        """Requests sent per second, not answers: a failed request counts. A tick still in flight is
        not known to be sent yet: it is in `not_back`, not here."""
        return self.sent / self.span_s

    def share(self, version: str) -> float | None:
        """Fraction of the good answers from `version`; None when there were none to divide."""
        return self.answers.get(version, 0) / self.answered if self.answered else None


@dataclass(frozen=True)
class Figures:
    target_rate: float
    last: Second | None  # None until a whole tick of the schedule lies inside the window
    failures: dict[str, int]  # server failures so far, by class
    unsent: int  # ticks not sent so far (client saturation): the probe's own, never a server failure
    late: int  # ticks sent later than the probe's lateness threshold so far
    received: int  # samples received so far

    @property
    def failed(self) -> int:
        return sum(self.failures.values())


class LiveStats:
    """Accumulates samples as they arrive (in completion order) and gives the figures at a given time.

    `figures(now)` expects `now` not to go backwards: samples older than its window are dropped.
    """

    def __init__(
        self, rate: float, probe_started: float, *, window_s: float = WINDOW_S, lag_s: float = LAG_S
    ) -> None:
        if not rate > 0 or window_s <= 0 or lag_s < 0:
            raise ValueError(f"invalid live stats: rate {rate}, window {window_s}, lag {lag_s}")
        self.rate, self.t0, self.window_s, self.lag_s = rate, probe_started, window_s, lag_s
        self._failures: Counter[str] = Counter()
        self._unsent = self._late = self._received = 0
        self._max_seq = -1
        self._recent: list[Sample] = []

    def add(self, samples: Iterable[Sample]) -> None:
        for s in samples:
            self._received += 1
            self._max_seq = max(self._max_seq, s.seq)
            if s.error is ErrorClass.SATURATED:
                self._unsent += 1
            elif s.error is not None:
                self._failures[s.error.value] += 1
            if s.late:
                self._late += 1
            self._recent.append(s)

    def figures(self, now: float, *, stopped_at: float | None = None) -> Figures:
        """The figures at `now`; once the probe was told to stop (`stopped_at`), the last second is the
        schedule's last one: ticks after the stop were never due."""
        return Figures(
            target_rate=self.rate,
            last=self._last_second(now, stopped_at),
            failures=dict(self._failures),
            unsent=self._unsent,
            late=self._late,
            received=self._received,
        )

    def _last_second(self, now: float, stopped_at: float | None) -> Second | None:
        end = now - self.lag_s
        if stopped_at is not None:  # the schedule ended with the last tick seen, one tick after it was due
            end = min(end, stopped_at, self.t0 + (self._max_seq + 1) / self.rate)
        start = end - self.window_s
        first = max(0, math.ceil((start - self.t0) * self.rate))
        last = math.ceil((end - self.t0) * self.rate) - 1  # due strictly before `end`
        self._recent = [s for s in self._recent if s.seq >= first]
        span = end - max(start, self.t0)
        if last < first or span <= 0:
            return None
        sent = unsent = 0
        answers: Counter[str] = Counter()
        failed: Counter[str] = Counter()
        for s in self._recent:
            if s.seq > last:
                continue
            if s.error is ErrorClass.SATURATED or s.sent is None:
                unsent += 1
                continue
            sent += 1
            if s.error is not None:
                failed[s.error.value] += 1
            elif s.finished is not None:
                answers[s.version or "unknown"] += 1
        return Second(start, end, span, last - first + 1, sent, unsent, dict(answers), dict(failed))

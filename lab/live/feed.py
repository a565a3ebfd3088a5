"""The runner's one feed of probe samples, and a consistent snapshot of where the run is for a listener.

The probe runs in its own processes and hands samples to reader threads in this one; `SampleFeed` pulls
them into one list, from a background thread every 100 ms while the probe runs and from the Judge when it
needs them now, under one lock. The runner also tells the feed its phase, the step under way and the
route the proxy serves, so a snapshot never pairs the samples of one moment with the step of another.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from lab.model import Check, Judge, Route, Sample, Start
from lab.strategies.base import Plan
from lab.targets.fleet.plan import Topology, walk

DRAIN_EVERY_S = 0.1
PHASES = ("setup", "baseline", "plan", "settle", "cleanup")  # then the run's status: completed ...


class Source(Protocol):
    def new_samples(self) -> list[Sample]: ...


@dataclass(frozen=True)
class Outlook:
    """How many steps the plan will take if every verdict still to come passes."""

    total: int
    assumed: int  # verdicts (Start, Check, Judge) still to come, assumed to pass: 0 means `total` is exact


def outlook(plan: Plan, start: Topology, verdicts: Sequence[bool]) -> Outlook:
    """Walk the plan again, answering its first verdicts as the run did and every later one with a pass.

    A plan is a function of its verdicts, so after a failed verdict this is the rollback's own length.
    """
    given = list(verdicts)
    assumed = 0

    def verdict(step: object) -> bool:
        nonlocal assumed
        if given:
            return given.pop(0)
        assumed += 1
        return True

    return Outlook(len(walk(plan, start, verdict)), assumed)


@dataclass(frozen=True)
class Progress:
    phase: str  # one of PHASES, then the run's status once it is over
    index: int | None  # the step under way, or the last one run; None before the first
    detail: str  # describe(step)
    running: bool  # the step at `index` has not finished
    done: int  # steps finished
    outlook: Outlook | None  # None when the plan could not be walked
    failed: tuple[int, ...]  # steps whose verdict came back negative


@dataclass(frozen=True)
class Snapshot:
    at: float  # when it was taken (frozen once the run is over), monotonic clock
    run_started: float
    probe_started: float | None  # when tick 0 was due; None before the probe runs
    probe_stopped: float | None  # when the probe was told to stop
    rate: float  # the probe's target, requests per second
    samples: list[Sample]  # arrived since the `since` the snapshot was asked for
    cursor: int  # pass as `since` next time
    route: Route | None  # what the proxy routes now
    progress: Progress


class SampleFeed:
    def __init__(
        self,
        rate: float,
        run_started: float,
        *,
        plan: Callable[[], tuple[Plan, Topology]] | None = None,
        clock: Callable[[], float] = time.monotonic,
        every_s: float = DRAIN_EVERY_S,
    ) -> None:
        self.rate, self.run_started = rate, run_started
        self._plan, self._clock, self._every_s = plan, clock, every_s
        self._lock = threading.Lock()
        self._samples: list[Sample] = []
        self._source: Source | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: str | None = None  # why the background drain stopped early, if it did
        self._probe_started: float | None = None
        self._probe_stopped: float | None = None
        self._finished_at: float | None = None
        self._route: Route | None = None
        self._phase = "setup"
        self._index: int | None = None
        self._detail = ""
        self._running = False
        self._done = 0
        self._verdicts: list[bool] = []
        self._failed: list[int] = []
        self._outlook: Outlook | None = None
        self._update_outlook()  # from the start: "0 of ~7 steps done" already while v1 comes up

    # -- samples ---------------------------------------------------------------------------------------
    def attach(self, source: Source, probe_started: float | None) -> None:
        """Start draining `source` in the background."""
        with self._lock:
            self._source, self._probe_started = source, probe_started
        self._stop.clear()
        self._thread = threading.Thread(target=self._drain_loop, name="sample-feed", daemon=True)
        self._thread.start()

    def stopping(self) -> None:
        """The probe is being told to stop: no tick is due after this."""
        with self._lock:
            self._probe_stopped = self._clock()

    def detach(self) -> None:
        """Stop the background drain, then take what the source still holds (after a probe's stop(),
        every sample it measured)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._source is not None:
            self.drain()

    def _drain_loop(self) -> None:
        while not self._stop.wait(self._every_s):
            try:
                self.drain()
            except Exception as exc:  # the Judge drains too and raises there; here, stop quietly
                self.error = f"{type(exc).__name__}: {exc}"
                return

    def drain(self) -> list[Sample]:
        """Pull the samples the source received since the last drain; returns them."""
        with self._lock:
            if self._source is None:
                return []
            batch = self._source.new_samples()
            self._samples.extend(batch)
            return batch

    def select(self, keep: Callable[[Sample], bool]) -> list[Sample]:
        with self._lock:
            return [s for s in self._samples if keep(s)]

    # -- where the run is ----------------------------------------------------------------------------
    def set_phase(self, phase: str) -> None:
        with self._lock:
            self._phase = phase

    def finish(self, status: str) -> None:
        """The run is over: the phase becomes its status, and the snapshot's clock stops."""
        with self._lock:
            self._phase, self._finished_at, self._running = status, self._clock(), False

    def set_route(self, route: Route) -> None:
        with self._lock:
            self._route = route

    def step_started(self, index: int, detail: str) -> None:
        with self._lock:
            self._index, self._detail, self._running = index, detail, True

    def step_ended(self, index: int, kind: str, result: bool | None) -> None:
        with self._lock:
            self._running = False
            self._done += 1
            verdict = kind in (Start.__name__, Check.__name__, Judge.__name__)
            if verdict:
                self._verdicts.append(bool(result))
                if not result:
                    self._failed.append(index)
        if verdict:
            self._update_outlook()

    def _update_outlook(self) -> None:
        if self._plan is None:
            return
        with self._lock:
            verdicts = list(self._verdicts)
        try:
            plan, start = self._plan()
            seen = outlook(plan, start, verdicts)
        except Exception:  # a plan the runner will refuse too: say nothing rather than a wrong total
            seen = None
        with self._lock:
            self._outlook = seen

    def snapshot(self, since: int = 0) -> Snapshot:
        with self._lock:
            return Snapshot(
                at=self._finished_at if self._finished_at is not None else self._clock(),
                run_started=self.run_started,
                probe_started=self._probe_started,
                probe_stopped=self._probe_stopped,
                rate=self.rate,
                samples=self._samples[since:],
                cursor=len(self._samples),
                route=self._route,
                progress=Progress(
                    self._phase,
                    self._index,
                    self._detail,
                    self._running,
                    self._done,
                    self._outlook,
                    tuple(self._failed),
                ),
            )

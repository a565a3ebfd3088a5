"""What the pipeline asks of a target, and what a target may use of the run while it deploys.

A target is what a run measures: the lab's own fleet moved by a strategy (`lab run`), or the user's
service moved by their own deploy command (`lab measure`). The pipeline owns the probe and the clock; a
target sets up what is probed, deploys while the probe runs, and takes down what it set up.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import httpx

from lab.errors import LabError
from lab.model import Event, Sample

if TYPE_CHECKING:
    from lab.engines.base import Engine
    from lab.live.feed import SampleFeed
    from lab.options import RunOptions
    from lab.record import RunRecord
    from lab.strategies.base import Plan
    from lab.targets.fleet.plan import Topology

EventHook = Callable[[str, Event | None], None]  # a progress line, and the step it closes if any


def no_hook(line: str, event: Event | None) -> None:
    return None


def note_once(record: RunRecord, hook: EventHook, note: str) -> None:
    """A note in the journal and on the terminal, once per run."""
    if note not in record.notes:
        record.notes.append(note)
        hook(f"note: {note}", None)


def wait_serving(http: httpx.Client, url: str, what: str, timeout_s: float) -> None:
    """Until the proxy answers through an upstream: only an answer that went through an upstream carries
    X-Lab-Upstream (a config of your own, or an older one, may answer by itself)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            answer = http.get(url)
            if answer.status_code == 200 and answer.headers.get("X-Lab-Upstream"):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise LabError(f"the proxy at {url} did not serve {what} within {timeout_s:g} s")


def take_down(engine: Engine, http: httpx.Client, run: RunContext, *, keep: bool) -> None:
    """A target's teardown on one of the lab's engines: everything the run made removed, or with `keep`
    left running and the reaper let go; the target's HTTP client closed either way."""
    try:
        if keep:
            engine.release()
        else:
            run.record.removed = engine.cleanup()
    finally:
        http.close()


class Probe(Protocol):
    @property
    def error(self) -> str | None: ...

    started_at: float | None  # when tick 0 was due

    def start(self) -> None: ...
    def new_samples(self) -> list[Sample]: ...
    def stop(self) -> list[Sample]: ...


class RunContext(Protocol):
    """The run as a target sees it: the record it adds steps to, the live feed, the running probe."""

    options: RunOptions
    record: RunRecord
    feed: SampleFeed
    probe: Probe | None
    hook: EventHook


class Target(Protocol):
    name: str  # what the run is called: the strategy, or "measure"
    # The version that served before and the one deployed, for the analysis: known up front for the
    # lab's fleet, found in the baseline by `lab measure` (None: any version but `old` is new).
    old: str | None
    new: str | None
    capacity: int | None  # instances serving at the start, for the lowest-capacity figure; None: unknown
    outlook: Callable[[], tuple[Plan, Topology]] | None  # the plan, for the live view's step count

    def setup(self, run: RunContext) -> str:
        """Bring up what is probed; return the URL the probe sends to. A LabError fails the run."""

    def attach(self, probe: Probe) -> Probe:
        """The probe as the run should read it (the fleet attributes answers to instances)."""

    def after_baseline(self, run: RunContext) -> None:
        """The baseline is measured; a target may check it (a URL that never answered)."""

    def deploy(self, run: RunContext) -> str:
        """Deploy while the probe runs; return the run's status (completed, rolled_back ...)."""

    def teardown(self, run: RunContext, *, keep: bool) -> None:
        """Take down what `setup` and `deploy` made (unless `keep`); never raises."""

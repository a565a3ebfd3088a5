"""The runner's sample feed: draining, snapshots, and the plan's progress, without Docker or a probe."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from lab import strategies
from lab.live.feed import Outlook, SampleFeed, outlook
from lab.model import Route, Sample, fleet
from lab.targets.fleet.plan import Topology

OLD, NEW = fleet("v1", 2), fleet("v2", 2)


def canary() -> tuple[strategies.base.Plan, Topology]:
    return strategies.get("canary").plan(OLD, NEW), Topology(frozenset(OLD), Route.even(OLD))


class Source:
    """A probe's new_samples(): hands out what was pushed since the last call."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pending: list[Sample] = []
        self.calls = 0

    def push(self, *seqs: int) -> None:
        with self.lock:
            self.pending += [Sample(i, float(i), float(i), float(i) + 0.01, 200, "v1") for i in seqs]

    def new_samples(self) -> list[Sample]:
        with self.lock:
            self.calls += 1
            batch, self.pending = self.pending, []
            return batch


def wait_until(condition: Callable[[], bool], timeout_s: float = 2.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_background_drain_and_snapshots_since_a_cursor() -> None:
    source, feed = Source(), SampleFeed(100.0, 0.0, every_s=0.01)
    feed.attach(source, probe_started=5.0)
    try:
        source.push(0, 1, 2)
        wait_until(lambda: feed.snapshot().cursor == 3)
        first = feed.snapshot()
        assert [s.seq for s in first.samples] == [0, 1, 2] and first.probe_started == 5.0
        source.push(3)
        wait_until(lambda: feed.snapshot().cursor == 4)
        assert [s.seq for s in feed.snapshot(since=first.cursor).samples] == [3]
    finally:
        source.push(4, 5)  # still in the probe when it stops: detach takes them
        feed.detach()
    assert feed.snapshot().cursor == 6
    calls = source.calls
    time.sleep(0.05)
    assert source.calls == calls  # the background drain has stopped


def test_the_judge_drains_on_demand_and_selects_under_the_lock() -> None:
    source, feed = Source(), SampleFeed(100.0, 0.0, every_s=60.0)  # the background drain never fires
    feed.attach(source, probe_started=0.0)
    try:
        source.push(*range(10))
        assert [s.seq for s in feed.drain()] == list(range(10))
        assert [s.seq for s in feed.select(lambda s: 3 <= s.seq <= 5)] == [3, 4, 5]
        assert feed.drain() == []
    finally:
        feed.detach()


def test_a_failing_source_stops_the_background_drain_without_raising() -> None:
    class Broken:
        def new_samples(self) -> list[Sample]:
            raise OSError("pipe closed")

    feed = SampleFeed(100.0, 0.0, every_s=0.01)
    feed.attach(Broken(), probe_started=0.0)
    wait_until(lambda: feed.error is not None)
    assert feed.error == "OSError: pipe closed"
    feed._source = None  # the final drain would raise too; here only the thread is under test
    feed.detach()


def test_outlook_is_exact_once_no_verdict_is_left_to_assume() -> None:
    assert outlook(*canary(), []) == Outlook(total=11, assumed=4)  # a start and three judges to come
    assert outlook(*canary(), [True, True, True, True]).assumed == 0


def test_outlook_after_a_failed_verdict_is_the_rollbacks_own_length() -> None:
    from lab.targets.fleet.plan import walk

    seen = outlook(*canary(), [True, False])  # healthy start, the first judge fails
    answers = iter([True, False])
    rollback = walk(*canary(), lambda step: next(answers, True))
    assert seen.total == len(rollback) < 11
    assert seen.assumed == sum(1 for p in rollback if p.result is not None) - 2


def test_progress_follows_the_steps_and_the_failed_verdicts() -> None:
    feed = SampleFeed(100.0, 0.0, plan=canary)
    progress = feed.snapshot().progress
    assert progress.phase == "setup" and progress.outlook == Outlook(11, 4)  # known before the plan runs
    feed.set_phase("plan")
    feed.step_started(0, "start app-v2-1, app-v2-2 and wait until healthy")
    progress = feed.snapshot().progress
    assert (progress.index, progress.running, progress.done) == (0, True, 0)
    feed.step_ended(0, "Start", True)
    for index, kind in [(1, "Route"), (2, "Pause")]:
        feed.step_started(index, kind)
        feed.step_ended(index, kind, None)
    feed.step_started(3, "judge v2")
    feed.step_ended(3, "Judge", False)
    progress = feed.snapshot().progress
    assert (progress.index, progress.running, progress.done, progress.failed) == (3, False, 4, (3,))
    assert progress.outlook is not None and progress.outlook.total < 11
    route = Route.even(OLD)
    feed.set_route(route)
    assert feed.snapshot().route == route


def test_finish_freezes_the_snapshots_clock() -> None:
    now = [10.0]
    feed = SampleFeed(100.0, 0.0, clock=lambda: now[0])
    feed.finish("completed")
    now[0] = 50.0
    snap = feed.snapshot()
    assert snap.at == 10.0 and snap.progress.phase == "completed"


def test_an_impossible_plan_has_no_outlook_rather_than_a_wrong_one() -> None:
    def broken() -> tuple[strategies.base.Plan, Topology]:
        def plan() -> strategies.base.Plan:
            yield Route.even(NEW)  # routes to instances that were never started

        return plan(), Topology(frozenset(OLD), Route.even(OLD))

    feed = SampleFeed(100.0, 0.0, plan=broken)
    assert feed.snapshot().progress.outlook is None

"""The live view's text and frames, rendered into a string: no terminal, no Docker."""

from __future__ import annotations

import dataclasses
import re
import time
from io import StringIO

import pytest
from rich.console import Console

from lab.live.feed import Outlook, Progress, Snapshot
from lab.live.stats import Figures, LiveStats
from lab.live.view import LiveView, choose_mode, render, share_bar, status_line
from lab.model import ErrorClass, Route, Sample, fleet

T0, RATE = 100.0, 200.0
HALF = Route.split({fleet("v1", 2): 50, fleet("v2", 2): 50})


def ok(seq: int, version: str) -> Sample:
    t = T0 + seq / RATE
    return Sample(seq, t, t, t + 0.003, 200, version, f"app-{version}-1")


def bad(seq: int, error: ErrorClass) -> Sample:
    t = T0 + seq / RATE
    return Sample(seq, t, None if error is ErrorClass.SATURATED else t, t + 0.001, error=error)


def progress(**changes: object) -> Progress:
    base = Progress(
        "plan",
        1,
        "route v1 50%, v2 50% over app-v1-1, app-v1-2, app-v2-1, app-v2-2",
        True,
        1,
        Outlook(7, 1),
        (),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def snapshot(samples: list[Sample], at: float, **changes: object) -> Snapshot:
    snap = Snapshot(at, T0 - 4.0, T0, None, RATE, samples, len(samples), HALF, progress())
    return dataclasses.replace(snap, **changes)  # type: ignore[arg-type]


def figures(samples: list[Sample], at: float) -> Figures:
    stats = LiveStats(RATE, T0, lag_s=0.0)
    stats.add(samples)
    return stats.figures(at)


def text(renderable: object) -> str:
    console = Console(file=StringIO(), width=100)
    console.print(renderable)
    return console.file.getvalue()  # type: ignore[attr-defined]


def second_of(versions: list[str], start: int = 0) -> list[Sample]:
    return [ok(start + i, v) for i, v in enumerate(versions)]


def test_frame_shows_step_weights_share_failures_rate_and_ticks() -> None:
    samples = second_of(["v1"] * 60 + ["v2"] * 140)  # the first second: 30% v1
    samples += [bad(200, ErrorClass.HTTP_5XX), bad(201, ErrorClass.REFUSED), bad(202, ErrorClass.SATURATED)]
    samples += second_of(["v2"] * 197, start=203)
    frame = text(render(snapshot(samples, T0 + 2.0), figures(samples, T0 + 2.0), "blue-green"))
    # The header wraps at the console's width rather than being cut: the whole step stays readable.
    assert frame.startswith("blue-green · step 1 (2 of ~7): route v1 50%, v2 50% over app-v1-1, app-v1-2,")
    assert re.search(r"^steps +━{6}─{34} 1 of ~7 done", frame, re.MULTILINE)
    assert "routing now   v1 50% v2 50%  (2 x v1 + 2 x v2 instances)" in frame
    assert re.search(r"^last second +▒{40} v2 100% of 197 good answers", frame, re.MULTILINE)
    assert "failed so far 2 (http_5xx 1, refused 1); last second 2 (http_5xx 1, refused 1)" in frame
    assert "probe rate    sent 199.0 req/s of 200 req/s" in frame  # 199 sent, 1 not: the probe's own
    assert "late 0 · unsent 1" in frame and "client saturation" in frame
    assert "elapsed       6.0 s (probing for 2.0 s)" in frame


def test_share_bar_splits_by_answers_and_says_when_there_were_none() -> None:
    one = figures(second_of(["v1"] * 50 + ["v2"] * 150), T0 + 1.0).last
    assert text(share_bar(one)).strip() == "█" * 10 + "▒" * 30
    refused = [bad(i, ErrorClass.REFUSED) for i in range(200)]
    fig = figures(refused, T0 + 1.0)
    frame = text(render(snapshot(refused, T0 + 1.0), fig))
    assert re.search(r"^last second +─{40} no good answers in the last second", frame, re.MULTILINE)
    assert "v1 0%" not in frame and "v2 0%" not in frame
    assert "answers none in the last second" in status_line(snapshot(refused, T0 + 1.0), fig)


def test_status_line_is_one_plain_line_with_units() -> None:
    samples = second_of(["v1"] * 80 + ["v2"] * 120) + [bad(200, ErrorClass.HTTP_5XX)]
    samples += [bad(i, ErrorClass.HTTP_5XX) for i in (201, 202)]
    snap = snapshot(samples, T0 + 8.0)
    line = status_line(snap, figures(samples, T0 + 1.0))
    assert line == (
        "t=12.0 s  step 1 (2/~7)  route v1 50% v2 50%  answers v1 40% v2 60% of 200  "
        "failed 3 (http_5xx 3)  sent 200.0 req/s of 200 req/s  late 0"
    )
    assert "\n" not in line


def test_the_step_count_is_exact_only_when_no_verdict_is_assumed_and_failed_verdicts_show() -> None:
    exact = progress(index=6, detail="stop app-v1-1, app-v1-2", done=6, outlook=Outlook(7, 0))
    assert "step 6 (7 of 7): stop app-v1-1" in text(render(snapshot([], T0, progress=exact), None))
    rollback = progress(
        index=4, detail="stop app-v2-1", running=False, done=5, outlook=Outlook(5, 0), failed=(3,)
    )
    frame = text(render(snapshot([], T0, progress=rollback), None))
    assert "step 4 done (5 of 5): stop app-v2-1" in frame and "verdict failed at step 3" in frame
    unknown = progress(outlook=None)
    frame = text(render(snapshot([], T0, progress=unknown), None))
    assert "step 1 (2): route" in frame and "1 done (the plan's length is unknown)" in frame
    assert "verdict failed at step 3" in status_line(snapshot([], T0, progress=rollback), None)


@pytest.mark.parametrize(
    ("phase", "shown"),
    [
        ("setup", "setting up: starting the v1 fleet and the proxy"),
        ("baseline", "baseline: probing before the first step"),
        ("settle", "settling: probing after the last step"),
        ("cleanup", "stopping the probe and removing the containers"),
        ("rolled_back", "run rolled back"),
    ],
)
def test_phases_outside_the_plan_say_what_the_run_does(phase: str, shown: str) -> None:
    assert f"blue-green · {shown}" in text(
        render(snapshot([], T0, progress=progress(phase=phase)), None, "blue-green")
    )


def test_before_the_probe_starts_nothing_is_made_up() -> None:
    snap = snapshot(
        [], T0 - 2.0, probe_started=None, route=None, progress=progress(phase="setup", index=None)
    )
    frame = text(render(snap, None))
    assert re.search(r"^probe +not started yet", frame, re.MULTILINE)
    assert re.search(r"^routing now +nothing yet", frame, re.MULTILINE)
    assert "req/s" not in frame and "%" not in frame


def test_mode_follows_json_the_option_and_the_terminal() -> None:
    terminal = Console(file=StringIO(), force_terminal=True)
    assert choose_mode(terminal, quiet=False, live=True) == "live"
    assert choose_mode(terminal, quiet=False, live=False) == "plain"
    assert choose_mode(terminal, quiet=True, live=True) == "off"
    assert choose_mode(Console(file=StringIO()), quiet=False, live=True) == "plain"
    dumb = Console(file=StringIO(), force_terminal=True, _environ={"TERM": "dumb"})
    assert choose_mode(dumb, quiet=False, live=True) == "plain"


class Feed:
    """A feed's snapshot(since) over a list the test changes."""

    def __init__(self, samples: list[Sample], phase: str) -> None:
        self.samples, self.phase = samples, phase

    def snapshot(self, since: int) -> Snapshot:
        at = T0 + 1.0
        return snapshot(
            self.samples[since:], at, cursor=len(self.samples), progress=progress(phase=self.phase)
        )


def test_plain_mode_prints_status_lines_only_while_probing() -> None:
    feed, screen = Feed(second_of(["v1"] * 200), "setup"), StringIO()
    with LiveView(feed.snapshot, Console(file=screen, width=100), mode="plain", plain_every_s=0.02):
        time.sleep(0.1)
        assert screen.getvalue() == ""  # nothing measured yet: no line
        feed.phase = "plan"
        time.sleep(0.1)
    lines = screen.getvalue().splitlines()
    assert lines and all(line.startswith("t=") and "answers v1 100% of " in line for line in lines)
    count = len(lines)
    time.sleep(0.05)
    assert len(screen.getvalue().splitlines()) == count  # stopped with the block


def test_live_mode_stops_on_ctrl_c_and_leaves_the_last_frame() -> None:
    feed, screen = Feed(second_of(["v2"] * 200), "plan"), StringIO()
    console = Console(file=screen, force_terminal=True, width=100, color_system=None)
    with pytest.raises(KeyboardInterrupt), LiveView(feed.snapshot, console, mode="live", title="canary"):
        feed.phase = "interrupted"
        raise KeyboardInterrupt
    drawn = screen.getvalue()
    assert "canary · run interrupted" in drawn  # the last frame, drawn on the way out
    assert drawn.endswith("\x1b[?25h")  # the cursor is back


def test_off_draws_nothing() -> None:
    screen = StringIO()
    with LiveView(Feed([], "plan").snapshot, Console(file=screen, force_terminal=True), mode="off"):
        time.sleep(0.05)
    assert screen.getvalue() == ""
    with pytest.raises(ValueError):
        LiveView(Feed([], "plan").snapshot, Console(file=screen), mode="fancy")

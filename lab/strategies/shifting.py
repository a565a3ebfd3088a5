"""The moves that traffic-shifting strategies share: a full new fleet beside the old one, traffic moved over
in steps, a verdict after each, and a way back.

Red/black, blue/green, canary and linear differ only in the steps they take and what they wait for in
between, so each is a composition of `full_fleet` (and `shift`, with ``yield from``), not a copy.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Literal

from lab.model import Check, Instance, Judge, Pause, Route, Start, Step, Stop
from lab.strategies.base import Plan

# A part of a plan that ends with a verdict: True when every judgement on the way passed.
Shift = Generator[Step, bool | None, bool]


def judge_of(new: tuple[Instance, ...], max_error_rate: float, max_p99_ms: float | None) -> Judge:
    return Judge(new[0].version, max_error_rate, max_p99_ms)


def increasing(percents: Sequence[int], name: str = "percents") -> tuple[int, ...]:
    """`percents`, checked to go up: a step back would move traffic away from the release it judges."""
    steps = tuple(percents)
    if not steps or any(b <= a for a, b in zip(steps, steps[1:], strict=False)):
        raise ValueError(
            f"parameter {name}={','.join(map(str, steps))} must be one or more rising percentages"
        )
    return steps


RouteBy = Literal["random", "client"]


def shift(
    old: tuple[Instance, ...],
    new: tuple[Instance, ...],
    percents: Sequence[int],
    *,
    bake_s: float,
    judge: Judge | None,
    why: str,
    route_by: RouteBy = "random",
) -> Shift:
    """Give `new` each percentage of the traffic in turn (the rest stays on `old`), wait, then judge. A
    tester's request (`X-Canary: always`) reaches `new` at every share. `route_by="client"`: each
    client's id decides its version, so a client on `new` stays there as the share grows."""
    for pct in percents:
        yield Route.split({old: 100 - pct, new: pct}, by=route_by, canary=new)
        yield Pause(bake_s, f"{why}, {new[0].version} at {pct}%")
        if judge is not None and not (yield judge):
            return False
    return True


def abandon(old: tuple[Instance, ...], started: tuple[Instance, ...]) -> Plan:
    """Roll back while every old instance still runs: all traffic to them, then remove what was started."""
    yield Route.even(old)
    yield Stop(started)


def full_fleet(
    old: tuple[Instance, ...],
    new: tuple[Instance, ...],
    percents: Sequence[int] = (),
    *,
    bake_s: float = 0.0,
    judge: Judge | None = None,
    why: str = "bake",
    window_s: float | None = None,
    route_by: RouteBy = "random",
    preview_s: float = 0.0,
) -> Plan:
    """Start the whole new fleet beside the old one, shift traffic through `percents`, then all of it.

    With `window_s`, the old fleet is kept for that long after the last switch and the new one is
    checked (and judged) once more before the old one goes: blue/green's rollback window. Without it
    the old fleet is stopped as soon as nothing routes to it. With `preview_s`, the new fleet first serves
    only testers (`X-Canary: always`) for that long, while every other client stays on the old one.
    """
    if not (yield Start(new)):
        # The old fleet never stopped serving: removing the new one is the whole rollback.
        yield Stop(new)
        return
    if preview_s > 0:
        yield Route.even(old, canary=new)
        yield Pause(preview_s, f"{new[0].version} in preview: testers only (X-Canary: always)")
    if not (yield from shift(old, new, percents, bake_s=bake_s, judge=judge, why=why, route_by=route_by)):
        yield from abandon(old, new)
        return
    if not percents or percents[-1] != 100:
        yield Route.even(new)
    if window_s is not None:
        yield Pause(window_s, "blue kept for rollback")
        healthy = yield Check(new)
        if not healthy or (judge is not None and not (yield judge)):
            # The new fleet went bad while the old one was still there: that is what the window is for.
            yield from abandon(old, new)
            return
    yield Stop(old)

"""Blue/green: start a full green (v2) fleet beside blue (v1), switch all traffic at once, keep blue for
a rollback window, then remove it.

The switch is one proxy reload. Clients on kept-alive connections can go on reaching blue through the
old nginx workers for a moment after fresh connections reach green: that is the mixed-version window
the lab measures.
"""

from __future__ import annotations

from lab.model import Check, Instance, Pause, Route, Start, Stop
from lab.strategies.base import Plan


def blue_green(
    old: tuple[Instance, ...], new: tuple[Instance, ...], *, rollback_window_s: float = 2.0
) -> Plan:
    healthy = yield Start(new)
    if not healthy:
        # Blue never stopped serving: removing green is the whole rollback.
        yield Stop(new)
        return
    yield Route.even(new)
    yield Pause(rollback_window_s, "blue kept for rollback")
    if not (yield Check(new)):
        # Green went bad while blue was still there: switch back, which is what the window is for.
        yield Route.even(old)
        yield Stop(new)
        return
    yield Stop(old)

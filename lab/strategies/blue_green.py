"""Blue/green: start a full green (v2) fleet beside blue (v1), let both serve for a while, switch all
traffic to green, keep blue for a rollback window, then remove it.

Both fleets serve half the traffic for `overlap_s` before the switch (0 leaves that out): blue/green
keeps the old fleet serving beside the new one, and that overlap is what sets it apart from red/black
in the measured mixed-version window. The switch itself is one proxy reload; clients on kept-alive
connections can go on reaching blue through the old nginx workers for a moment after it. Blue stays up
`rollback_window_s` after the switch, green is checked again, and only then is blue removed.

With `preview_s`, green first serves testers only for that long: requests carrying `X-Canary: always`
(`lab run --testers K` makes K of the probe's clients such testers) reach green, everyone else blue. That
is blue/green's promise of trying the new version in the real environment before the switch.
"""

from __future__ import annotations

from lab.model import Instance
from lab.strategies.base import Plan
from lab.strategies.shifting import full_fleet


def blue_green(
    old: tuple[Instance, ...],
    new: tuple[Instance, ...],
    *,
    overlap_s: float = 2.0,
    rollback_window_s: float = 2.0,
    preview_s: float = 0.0,
) -> Plan:
    both = (50,) if overlap_s > 0 else ()
    return full_fleet(
        old,
        new,
        both,
        bake_s=overlap_s,
        why="blue and green both serve",
        window_s=rollback_window_s,
        preview_s=preview_s,
    )

"""Blue/green with canary traffic shifting (CodeDeploy's Canary10Percent5Minutes and its kind): start and
health-check the whole green fleet, give it `percents` of the traffic for `bake_s` each (judged after
each), then all of it; keep blue for `rollback_window_s`, check and judge green, then remove blue.

CodeDeploy's canary moves traffic in two increments (10%, then the rest), hence `percents=(10,)`; the
plain `canary` strategy walks more steps and stops v1 as soon as v2 has all the traffic.
"""

from __future__ import annotations

from typing import Literal

from lab.model import Instance
from lab.strategies.base import Plan
from lab.strategies.shifting import full_fleet, increasing, judge_of


def blue_green_canary(
    old: tuple[Instance, ...],
    new: tuple[Instance, ...],
    *,
    percents: tuple[int, ...] = (10,),
    bake_s: float = 3.0,
    rollback_window_s: float = 2.0,
    max_error_rate: float = 0.01,
    max_p99_ms: float | None = None,
    route_by: Literal["random", "client"] = "random",
    preview_s: float = 0.0,
) -> Plan:
    judge = judge_of(new, max_error_rate, max_p99_ms)
    return full_fleet(
        old,
        new,
        increasing(percents),
        bake_s=bake_s,
        judge=judge,
        why="canary bake",
        window_s=rollback_window_s,
        route_by=route_by,
        preview_s=preview_s,
    )

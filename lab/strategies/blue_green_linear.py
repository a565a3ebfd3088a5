"""Blue/green with linear traffic shifting (CodeDeploy's Linear10PercentEvery1Minute and its kind): start
and health-check the whole green fleet, move `step_percent` more of the traffic to it every
`interval_s` (judged after each), then all of it; keep blue for `rollback_window_s`, check and judge
green, then remove blue.
"""

from __future__ import annotations

from typing import Literal

from lab.model import Instance
from lab.strategies.base import Plan
from lab.strategies.linear import linear_steps
from lab.strategies.shifting import full_fleet, judge_of


def blue_green_linear(
    old: tuple[Instance, ...],
    new: tuple[Instance, ...],
    *,
    step_percent: int = 10,
    interval_s: float = 1.0,
    rollback_window_s: float = 2.0,
    max_error_rate: float = 0.01,
    max_p99_ms: float | None = None,
    route_by: Literal["random", "client"] = "random",
    preview_s: float = 0.0,
) -> Plan:
    judge = judge_of(new, max_error_rate, max_p99_ms)
    steps = linear_steps(step_percent)
    return full_fleet(
        old,
        new,
        steps,
        bake_s=interval_s,
        judge=judge,
        why="interval",
        window_s=rollback_window_s,
        route_by=route_by,
        preview_s=preview_s,
    )

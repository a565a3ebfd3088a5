"""Linear: move `step_percent` more of the traffic to v2 every `interval_s`, judging v2 after each
interval, until all of it is on v2; roll back to v1 at the first bad verdict.

As CodeDeploy's Linear10PercentEvery1Minute does, the last move to 100% follows the last interval
without a wait of its own (10%, 20% ... 90%, then 100%). The whole v2 fleet is started first, so every
step is exactly its percentage.
"""

from __future__ import annotations

from typing import Literal

from lab.model import Instance
from lab.strategies.base import Plan
from lab.strategies.shifting import full_fleet, judge_of


def linear_steps(step_percent: int) -> tuple[int, ...]:
    """The shares v2 holds for an interval each: step, 2 x step ... below 100."""
    if step_percent <= 0:
        raise ValueError(f"parameter step_percent={step_percent} must be above 0")
    return tuple(range(step_percent, 100, step_percent))


def linear(
    old: tuple[Instance, ...],
    new: tuple[Instance, ...],
    *,
    step_percent: int = 10,
    interval_s: float = 1.0,
    max_error_rate: float = 0.01,
    max_p99_ms: float | None = None,
    route_by: Literal["random", "client"] = "random",
) -> Plan:
    judge = judge_of(new, max_error_rate, max_p99_ms)
    steps = linear_steps(step_percent)
    return full_fleet(old, new, steps, bake_s=interval_s, judge=judge, why="interval", route_by=route_by)

"""Canary: give v2 a small part of the traffic, judge v2's own error rate and latency from what the probe
saw, and promote it step by step, or roll back to v1 at the first bad verdict.

A bad release then reaches only the canary's share of clients for one bake time: that is its blast
radius. `by="weight"` starts the whole v2 fleet and splits traffic by proxy weights, so each step gets
exactly its percentage. `by="instances"` is the canary of a load balancer without weights: v2 instances
replace v1 instances in the rotation one by one, each step's share being the instance count its
percentage rounds up to (10% of 4 instances is 1, so 25%); the replaced v1 instances keep running out of
the rotation, so a rollback is one reload. When `percents` stops short of 100, the last step promotes
v2 to all traffic without a bake; v1 is stopped only after that.

`route_by="client"` gives the share out by client instead of by request: each client's id decides its
version (nginx `split_clients` on its cookie), so a client that moved to v2 stays there as the share
grows, and a rollback moves every such client back once. A tester's request (`X-Canary: always`)
reaches v2 at any share.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from lab.model import Instance, Judge, Pause, Route, Start, Stop
from lab.strategies.base import Plan
from lab.strategies.shifting import abandon, full_fleet, increasing, judge_of


def canary(
    old: tuple[Instance, ...],
    new: tuple[Instance, ...],
    *,
    percents: tuple[int, ...] = (10, 50, 100),
    by: Literal["weight", "instances"] = "weight",
    bake_s: float = 3.0,
    max_error_rate: float = 0.01,
    max_p99_ms: float | None = None,
    route_by: Literal["random", "client"] = "random",
) -> Plan:
    steps = increasing(percents)
    judge = judge_of(new, max_error_rate, max_p99_ms)
    if by == "weight":
        return full_fleet(old, new, steps, bake_s=bake_s, judge=judge, why="canary bake", route_by=route_by)
    if by == "instances":
        if route_by != "random":
            raise ValueError("parameter route_by=client needs by=weight: by=instances routes by instance")
        return _by_instances(old, new, steps, bake_s=bake_s, judge=judge)
    raise ValueError(f"parameter by={by!r} must be weight or instances")


def _by_instances(
    old: tuple[Instance, ...],
    new: tuple[Instance, ...],
    percents: Sequence[int],
    *,
    bake_s: float,
    judge: Judge,
) -> Plan:
    size = len(new)
    serving = 0  # v2 instances in the rotation, on the slots of the v1 instances they stand in for
    for pct in percents:
        count = min(size, max(1, -(-pct * size // 100)))  # rounded up: a canary has at least one
        if count == serving:
            continue  # the same share as the step before: nothing new to judge
        if not (yield Start(new[serving:count])):
            yield from abandon(old, new[:count])
            return
        serving = count
        yield Route.even(old[count:] + new[:count])
        yield Pause(bake_s, f"canary bake, {count} of {size} instances on {new[0].version}")
        if not (yield judge):
            yield from abandon(old, new[:count])
            return
    if serving < size:
        if not (yield Start(new[serving:])):
            yield from abandon(old, new)
            return
        yield Route.even(new)
    yield Stop(old)

"""The registry of strategies: a new strategy is one file and one line here."""

from __future__ import annotations

from lab.strategies import presets as p
from lab.strategies.base import Plan, Strategy
from lab.strategies.blue_green import blue_green
from lab.strategies.blue_green_all_at_once import blue_green_all_at_once
from lab.strategies.blue_green_canary import blue_green_canary
from lab.strategies.blue_green_linear import blue_green_linear
from lab.strategies.canary import canary
from lab.strategies.in_place import in_place
from lab.strategies.linear import linear
from lab.strategies.red_black import red_black
from lab.strategies.rolling import rolling
from lab.strategies.rolling_batch import rolling_batch
from lab.strategies.swarm_rolling import swarm_rolling

_STRATEGIES = (
    Strategy("in-place", "stop every v1 instance, start v2 on the same slots (all at once)", in_place),
    Strategy("rolling", "replace a batch at a time on the same slots; capacity drops by a batch", rolling),
    Strategy(
        "rolling-batch", "start an extra v2 batch first, then roll; capacity never drops", rolling_batch
    ),
    Strategy("red-black", "start a full v2 fleet, switch all traffic at once, stop v1 at once", red_black),
    Strategy(
        "blue-green",
        "start a full v2 fleet, serve from both for a while, switch, keep v1 for rollback",
        blue_green,
    ),
    Strategy("canary", "give v2 a growing share, judge it after each bake, promote or roll back", canary),
    Strategy("linear", "move a fixed share to v2 every interval, judging v2 after each", linear),
    Strategy(
        "blue-green-all-at-once",
        "blue/green: all traffic to the full v2 fleet at once, judged in the rollback window",
        blue_green_all_at_once,
    ),
    Strategy(
        "blue-green-canary",
        "blue/green: a canary share to the full v2 fleet, then all, v1 kept for rollback",
        blue_green_canary,
    ),
    Strategy(
        "blue-green-linear",
        "blue/green: a fixed share more to the full v2 fleet every interval, v1 kept for rollback",
        blue_green_linear,
    ),
)
# Named configurations people know, each a strategy above with fixed parameters; every duration is
# multiplied by their one parameter, time_scale (0.01 by default: minutes become seconds).
_PRESETS = (
    Strategy(
        "codedeploy-canary10-5min",
        "CodeDeploy Canary10Percent5Minutes: blue-green-canary, 10% for 5 min, then all",
        p.codedeploy_canary10_5min,
    ),
    Strategy(
        "codedeploy-linear10-1min",
        "CodeDeploy Linear10PercentEvery1Minute: blue-green-linear, 10% more every minute",
        p.codedeploy_linear10_1min,
    ),
    Strategy(
        "codedeploy-all-at-once", "CodeDeploy AllAtOnce: blue-green-all-at-once", p.codedeploy_all_at_once
    ),
    Strategy("eb-all-at-once", "Elastic Beanstalk AllAtOnce: in-place", p.eb_all_at_once),
    Strategy("eb-rolling", "Elastic Beanstalk Rolling: rolling, 25% batches, drained", p.eb_rolling),
    Strategy(
        "eb-rolling-batch",
        "Elastic Beanstalk RollingWithAdditionalBatch: rolling-batch, 25% batches, drained",
        p.eb_rolling_batch,
    ),
    Strategy(
        "eb-immutable",
        "Elastic Beanstalk Immutable: blue-green, both fleets serve, then v1 goes",
        p.eb_immutable,
    ),
    Strategy(
        "eb-traffic-splitting",
        "Elastic Beanstalk TrafficSplitting: canary, 10% for 5 min, then all",
        p.eb_traffic_splitting,
    ),
)

# The platform's own update, which the lab sets up and watches instead of planning (runs_on names where).
_PLATFORM = (
    Strategy(
        "swarm-rolling",
        "Docker Swarm's own rolling update of one service (service update), watched; --engine swarm",
        swarm_rolling,
        runs_on="swarm",
    ),
)

# Plans of the lab's: what `lab plan` walks and the contract tests check.
REGISTRY: dict[str, Strategy] = {s.name: s for s in (*_STRATEGIES, *_PRESETS)}
PRESETS: tuple[str, ...] = tuple(s.name for s in _PRESETS)
PLATFORM: dict[str, Strategy] = {s.name: s for s in _PLATFORM}
EVERY: dict[str, Strategy] = {**REGISTRY, **PLATFORM}


class UnknownStrategy(LookupError):
    pass


def get(name: str) -> Strategy:
    try:
        return EVERY[name]
    except KeyError:
        known = ", ".join(EVERY)
        raise UnknownStrategy(f"unknown strategy {name!r} (known: {known})") from None


__all__ = ["EVERY", "PLATFORM", "PRESETS", "REGISTRY", "Plan", "Strategy", "UnknownStrategy", "get"]

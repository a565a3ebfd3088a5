"""Presets: the deployment configurations people know by name (CodeDeploy's, Elastic Beanstalk's), each a
lab strategy with fixed parameters and one knob, `time_scale`, that multiplies every duration.

The durations are the real ones, in seconds; the default time scale of 0.01 turns minutes into a
workshop's seconds (CodeDeploy's 5-minute canary bakes for 3 s). Durations a policy leaves to its user
(CodeDeploy's wait before it terminates the original fleet) are the lab's choice, stated here.
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from typing import Any

from lab.model import Instance
from lab.strategies.base import MAX_WAIT_S, Batch, Plan, PlanFactory
from lab.strategies.blue_green import blue_green
from lab.strategies.blue_green_all_at_once import blue_green_all_at_once
from lab.strategies.blue_green_canary import blue_green_canary
from lab.strategies.blue_green_linear import blue_green_linear
from lab.strategies.canary import canary
from lab.strategies.in_place import in_place
from lab.strategies.rolling import rolling
from lab.strategies.rolling_batch import rolling_batch

TIME_SCALE = 0.01
MINUTE = 60.0
# CodeDeploy waits a time of your choice (0 minutes to 2 days) before it terminates the original fleet
# of a blue/green deployment: the lab's presets wait 5 minutes.
ORIGINAL_FLEET_WAIT = 5 * MINUTE
# Elastic Beanstalk takes instances off the load balancer before it stops them; an ALB target group
# waits 300 s (its default deregistration delay) for requests in flight.
DEREGISTRATION_DELAY = 300.0
EB_BATCH = Batch(Fraction(25), percent=True)  # the lab's choice: EB takes a count or a percentage


def preset(factory: PlanFactory, seconds: Mapping[str, float], **fixed: Any) -> PlanFactory:
    """A plan factory whose only parameter is `time_scale`: `seconds` are scaled by it, `fixed` are not."""

    def plan(old: tuple[Instance, ...], new: tuple[Instance, ...], *, time_scale: float = TIME_SCALE) -> Plan:
        if time_scale <= 0:
            raise ValueError(f"parameter time_scale={time_scale:g} must be above 0")
        longest = max(seconds.values(), default=0.0) * time_scale
        if longest > MAX_WAIT_S:
            raise ValueError(
                f"parameter time_scale={time_scale:g} makes a wait of {longest:g} s: at most {MAX_WAIT_S:g} s"
            )
        return factory(old, new, **fixed, **{key: s * time_scale for key, s in seconds.items()})

    return plan


codedeploy_canary10_5min = preset(
    blue_green_canary, {"bake_s": 5 * MINUTE, "rollback_window_s": ORIGINAL_FLEET_WAIT}, percents=(10,)
)
codedeploy_linear10_1min = preset(
    blue_green_linear, {"interval_s": MINUTE, "rollback_window_s": ORIGINAL_FLEET_WAIT}, step_percent=10
)
codedeploy_all_at_once = preset(blue_green_all_at_once, {"rollback_window_s": ORIGINAL_FLEET_WAIT})
eb_all_at_once = preset(in_place, {})  # nothing to scale: accepted for a uniform command line
eb_rolling = preset(rolling, {"drain_s": DEREGISTRATION_DELAY}, batch=EB_BATCH)
eb_rolling_batch = preset(rolling_batch, {"drain_s": DEREGISTRATION_DELAY}, batch=EB_BATCH)
# Immutable: a full new fleet in a temporary Auto Scaling group serves beside the old one behind the
# same load balancer (even by instance count), then the old instances are deregistered and terminated.
# How long both serve is not a setting: the lab says a minute.
eb_immutable = preset(blue_green, {"overlap_s": MINUTE, "rollback_window_s": DEREGISTRATION_DELAY})
# Traffic splitting: a full new fleet gets NewVersionPercent (10) of the traffic for EvaluationTime
# (5 minutes), then all of it, and the old instances are terminated.
eb_traffic_splitting = preset(canary, {"bake_s": 5 * MINUTE}, percents=(10,))

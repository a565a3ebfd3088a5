"""Which target a run of the lab's own fleet is: a plan walked by the lab, or a platform's own update."""

from __future__ import annotations

from lab import strategies
from lab.engines.base import Engine
from lab.options import RunOptions
from lab.targets.base import Target
from lab.targets.fleet.target import FleetTarget
from lab.targets.swarm_update import SwarmUpdateTarget


def fleet_target(options: RunOptions, engine: Engine) -> Target:
    if strategies.get(options.strategy).runs_on == "swarm":
        return SwarmUpdateTarget(options, engine)
    return FleetTarget(options, engine)

"""Swarm's own rolling update, measured: not a plan of the lab's, but the settings of `docker service
update` that Swarm carries out by itself while the lab only watches and probes.

One service of N replicas runs v1; the lab asks Swarm to move it to v2 with these settings, polls the
service's UpdateStatus and its tasks, and records every change as a step on the probe's clock. The
defaults are Swarm's own (`docker service create --help`), so `lab run swarm-rolling --engine swarm` is
what a team gets when it sets nothing; the parameters are what its users argue about: order (stop-first
or start-first), a healthcheck or none, a short or a long stop grace period.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from lab.model import Instance


@dataclass(frozen=True)
class SwarmUpdate:
    """How Swarm is to update the service (its UpdateConfig and RollbackConfig, and its task's spec)."""

    order: str
    parallelism: int
    delay_s: float
    failure_action: str
    monitor_s: float
    max_failure_ratio: float
    healthcheck: bool
    stop_grace_s: float
    timeout_s: float
    health_path: str | None = None  # the path the healthcheck asks; None: the app's own health path
    health_retries: int = 3
    health_interval_s: float = 0.5
    health_start_s: float = 30.0

    def describe(self) -> str:
        health = "no healthcheck"
        if self.healthcheck:
            path = f" {self.health_path}" if self.health_path else ""
            health = (
                f"a healthcheck{path} every {self.health_interval_s:g} s ({self.health_retries} failure(s) "
                f"is unhealthy, after a start period of {self.health_start_s:g} s)"
            )
        return (
            f"{self.order}, {self.parallelism} at a time, delay {self.delay_s:g} s, on failure "
            f"{self.failure_action} (monitor {self.monitor_s:g} s, max failure ratio "
            f"{self.max_failure_ratio:g}), {health}, stop grace {self.stop_grace_s:g} s"
        )


def swarm_rolling(
    old: tuple[Instance, ...],
    new: tuple[Instance, ...],
    *,
    order: Literal["stop-first", "start-first"] = "stop-first",
    parallelism: int = 1,
    delay_s: float = 0.0,
    failure_action: Literal["pause", "continue", "rollback"] = "pause",
    monitor_s: float = 5.0,
    max_failure_ratio: float = 0.0,
    healthcheck: bool = True,
    stop_grace_s: float = 10.0,
    timeout_s: float = 180.0,
    health_path: str | None = None,
    health_retries: int = 3,
    health_interval_s: float = 0.5,
    health_start_s: float = 30.0,
) -> SwarmUpdate:
    if parallelism < 1:
        raise ValueError(f"parameter parallelism={parallelism} must be at least 1 (0 would mean all at once)")
    if not 0 <= max_failure_ratio <= 1:
        raise ValueError(f"parameter max_failure_ratio={max_failure_ratio:g} is a fraction from 0 to 1")
    if timeout_s <= 0:
        raise ValueError(f"parameter timeout_s={timeout_s:g} must be above 0")
    if health_path is not None and not re.fullmatch(r"/[\w./~%?=&-]*", health_path):
        raise ValueError(f"parameter health_path={health_path} must be a URL path such as / or /healthz")
    if health_retries < 1:
        raise ValueError(f"parameter health_retries={health_retries} must be at least 1")
    if health_interval_s < 0.001:  # Docker's floor for a healthcheck interval is 1 ms
        raise ValueError(f"parameter health_interval_s={health_interval_s:g} must be at least 0.001")
    return SwarmUpdate(
        order,
        parallelism,
        delay_s,
        failure_action,
        monitor_s,
        max_failure_ratio,
        healthcheck,
        stop_grace_s,
        timeout_s,
        health_path,
        health_retries,
        health_interval_s,
        health_start_s,
    )

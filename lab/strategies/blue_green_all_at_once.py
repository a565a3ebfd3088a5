"""Blue/green with all-at-once traffic shifting (CodeDeploy's AllAtOnce on a blue/green deployment):
start and health-check the whole green fleet, move all traffic to it at once, keep blue for
`rollback_window_s`, then check and judge green before blue is removed.

Unlike `blue-green` there is no overlap before the switch; unlike `red-black` blue stays for a window,
and green's own error rate and latency in that window decide whether traffic goes back to blue.
"""

from __future__ import annotations

from lab.model import Instance
from lab.strategies.base import Plan
from lab.strategies.shifting import full_fleet, judge_of


def blue_green_all_at_once(
    old: tuple[Instance, ...],
    new: tuple[Instance, ...],
    *,
    rollback_window_s: float = 2.0,
    max_error_rate: float = 0.01,
    max_p99_ms: float | None = None,
) -> Plan:
    judge = judge_of(new, max_error_rate, max_p99_ms)
    return full_fleet(old, new, judge=judge, window_s=rollback_window_s)

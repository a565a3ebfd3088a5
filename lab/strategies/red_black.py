"""Red/black: start a full new fleet, health-check it, switch all traffic in one reload, and stop the old
fleet at once.

Netflix's name for blue/green without the overlap and without the rollback window: the old fleet is
disabled the moment the switch is made, so v1 and v2 answer together only for as long as the proxy
reload takes, and going back means starting v1 again.
"""

from __future__ import annotations

from lab.model import Instance
from lab.strategies.base import Plan
from lab.strategies.shifting import full_fleet


def red_black(old: tuple[Instance, ...], new: tuple[Instance, ...]) -> Plan:
    return full_fleet(old, new)

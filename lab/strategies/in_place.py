"""In-place (all at once): every instance is stopped and replaced by v2 on the same slot.

Nothing serves between the stop and the moment v2 is up and routed: this is the downtime that the
other strategies exist to avoid. The proxy keeps pointing at the stopped v1 hosts until v2 is healthy,
as a load balancer with a static target list would.
"""

from __future__ import annotations

from lab.model import Instance, Route, Start, Stop
from lab.strategies.base import Plan


def in_place(old: tuple[Instance, ...], new: tuple[Instance, ...]) -> Plan:
    yield Stop(old)
    healthy = yield Start(new)
    if healthy:
        yield Route.even(new)
        return
    # v2 never came up: put v1 back on its slots, which is all an in-place deployment can do.
    yield Stop(new)
    yield Start(old)
    yield Route.even(old)
